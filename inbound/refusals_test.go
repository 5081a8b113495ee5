package inbound_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
)

type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) CountRefusal(door, code string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[door+"/"+code]++
}

// One record per door, source and code a minute, then one summary with the
// count; every refusal counted; many sources share one "other" bucket.
func TestRefusalsAreSummarisedAndBounded(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	rec := &events.Recorder{}
	cnt := &counter{n: map[string]int{}}
	r := inbound.NewRefusals(inbound.RefusalsOptions{Events: rec, Counter: cnt, Clock: clk, MaxSources: 3})
	long := strings.Repeat("x", 10_000)
	for range 500 {
		r.Refuse(ctx, inbound.Refusal{Door: events.SourceHTTP, Remote: "192.0.2.7:5555", Code: "missing_token", Reason: "missing bearer token " + long, Status: 401})
	}
	if n := len(rec.Events()); n != 1 {
		t.Fatalf("%d records for 500 refusals within the minute, want 1", n)
	}
	first := rec.Events()[0]
	if first.Details["count"] != "1" || first.Details["source"] != "192.0.2.7" || len(first.Reason) > 210 {
		t.Errorf("first record: count %s, remote %s, reason %d bytes", first.Details["count"], first.Details["source"], len(first.Reason))
	}
	clk.Advance(time.Minute)
	r.Refuse(ctx, inbound.Refusal{Door: events.SourceHTTP, Remote: "192.0.2.7:5556", Code: "missing_token", Reason: "missing bearer token", Status: 401})
	evs := rec.Events()
	if len(evs) != 3 || evs[1].Details["count"] != "499" || !strings.HasPrefix(evs[1].Reason, "499 more refused like this") {
		t.Fatalf("after the minute: %d records, summary %+v; want the summary of 499 and a new first", len(evs), evs[1])
	}

	// 100 sources: 3 tracked (one already), the rest share "other".
	for i := range 100 {
		r.Refuse(ctx, inbound.Refusal{Door: events.SourceLakiEvent, Remote: fmt.Sprintf("198.51.100.%d:1", i), Code: "bad_signature", Reason: "forged", Status: 401})
	}
	r.Flush(ctx)
	remotes := map[string]bool{}
	total := 0
	for _, e := range rec.Events() {
		if e.Source == events.SourceLakiEvent {
			remotes[e.Details["source"]] = true
			var n int
			fmt.Sscan(e.Details["count"], &n)
			total += n
		}
	}
	if len(remotes) > 3 || !remotes["other"] {
		t.Errorf("sources recorded: %v; want at most 3, with \"other\"", remotes)
	}
	if total != 100 {
		t.Errorf("records count %d forged requests, want 100", total)
	}
	if cnt.n["http/missing_token"] != 501 || cnt.n["lakiconnect_event/bad_signature"] != 100 {
		t.Errorf("counted %v; want every refusal", cnt.n)
	}
}
