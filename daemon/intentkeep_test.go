package daemon_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// gatedTags holds each Tag call until a second one is in flight (or a
// while has passed), and counts how many were in flight at once.
type gatedTags struct {
	secretstore.Store
	mu       sync.Mutex
	inFlight int
	most     int
	second   chan struct{}
	once     sync.Once
}

func (g *gatedTags) Tag(ctx context.Context, name string, tags map[string]string) error {
	g.mu.Lock()
	g.inFlight++
	g.most = max(g.most, g.inFlight)
	if g.inFlight >= 2 {
		g.once.Do(func() { close(g.second) })
	}
	g.mu.Unlock()
	select {
	case <-g.second:
	case <-time.After(2 * time.Second):
	}
	defer func() { g.mu.Lock(); g.inFlight--; g.mu.Unlock() }()
	return g.Store.Tag(ctx, name, tags)
}

// A trigger over many secrets keeps its intents side by side, not one
// after another: each write may wait in the account's write limiter
// behind a batch, and the trigger is answered only once all are kept.
func TestTriggerKeepsItsIntentsSideBySide(t *testing.T) {
	w := newWorld(t, worldOptions{})
	gate := &gatedTags{second: make(chan struct{})}
	w.wrapStore = func(s secretstore.Store) secretstore.Store { gate.Store = s; return gate }
	svc := w.build(rotator.Hooks{})
	ctx := context.Background()
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Daemon.Trigger(ctx, trigger.Request{Owner: "alice", Cause: events.CausePersonnel, Actor: "hr-bot", Reason: "alice left", Source: events.SourceHTTP})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	gate.mu.Lock()
	most := gate.most
	gate.mu.Unlock()
	if st.Total != 2 || most < 2 {
		t.Errorf("alice's trigger over %d secrets kept at most %d intent at once; want both side by side", st.Total, most)
	}
	for _, name := range []string{secCheckout, secWebhook} {
		s, err := w.store.Describe(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if s.Tags[daemon.TagIntent] == "" {
			t.Errorf("%s: no intent kept before the trigger was answered", name)
		}
	}
	_ = svc.Shutdown(ctx)
}
