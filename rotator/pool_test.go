package rotator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

// An emergency submitted while a scheduled batch is queued runs before the
// rest of the batch.
func TestEmergencyJumpsTheQueue(t *testing.T) {
	h := newHarness(t)
	var batch []rotator.Job
	for i := range 12 {
		ms := h.seedKey(fmt.Sprintf("svc/b%02d", i), inventory.KindAPIKey, laki.Sandbox, apiScopes)
		batch = append(batch, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("slot")})
	}
	urgent := h.seedKey("svc/urgent", inventory.KindAPIKey, laki.Sandbox, apiScopes)

	var mu sync.Mutex
	var order []string
	release := make(chan struct{})
	started := make(chan struct{})
	first := true
	e := h.engine(func(c *rotator.Config) {
		c.Workers = 1
		c.Hooks.AfterStep = func(name string, s rotator.Boundary) error {
			if s != rotator.AfterCreate {
				return nil
			}
			mu.Lock()
			order = append(order, name)
			wait := first
			first = false
			mu.Unlock()
			if wait {
				close(started)
				<-release // hold the only worker until the emergency is queued
			}
			return nil
		}
	})
	done := make(chan []rotator.JobOutcome)
	go func() { done <- e.RunBatch(context.Background(), batch, nil) }()
	<-started
	ch := e.Submit(context.Background(), rotator.Job{Secret: urgent, Policy: basePolicy(),
		Trigger: rotator.Trigger{Kind: events.CauseCompromise, ID: "evt_1"}})
	close(release)
	if o := <-ch; o.Err != nil {
		t.Fatal(o.Err)
	}
	for _, o := range <-done {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
	}
	if order[1] != urgent.Name {
		t.Fatalf("order %v: the emergency did not run next", order)
	}
}

// The LakiConnect rate limit is kept per management key (in the client for
// the merchant's key) on the injected clock: with 1 request/s and no burst
// to spare, a rotation's calls are spaced one clock second apart.
func TestRateLimitSpacesCallsOnTheClock(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/limited", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	start := h.fx.Clock.Now()
	before := len(h.fx.Sim.Requests())
	advanceWhileWaiting(t, h.fx.Clock, 100*time.Millisecond)
	e := h.engine(func(c *rotator.Config) {
		c.Issuers = h.source(h.fixtureKeys(), func(c *lakiconnect.Config) { c.RateLimit, c.RateBurst, c.Clock = 1, 1, h.fx.Clock })
	})
	if _, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("s")); err != nil {
		t.Fatal(err)
	}
	calls := len(h.fx.Sim.Requests()) - before
	if waited := h.fx.Clock.Now().Sub(start); waited < time.Duration(calls-1)*time.Second-time.Millisecond {
		t.Fatalf("%d LakiConnect calls within %s of clock time: not limited to 1/s", calls, waited)
	}
}
