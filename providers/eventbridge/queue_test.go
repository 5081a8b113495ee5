package eventbridge_test

import (
	"context"
	"testing"
	"time"

	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/providers/eventbridge"
)

// stuckAPI never answers until released: EventBridge hanging.
type stuckAPI struct{ release chan struct{} }

func (s stuckAPI) PutEvents(ctx context.Context, _ *eb.PutEventsInput, _ ...func(*eb.Options)) (*eb.PutEventsOutput, error) {
	select {
	case <-s.release:
		return &eb.PutEventsOutput{}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// With EventBridge hanging, Emit still returns at once: the entries beyond
// the queue are dropped and counted, never waited for.
func TestEmitNeverBlocksARotation(t *testing.T) {
	api := stuckAPI{release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	pub, err := eventbridge.New(eventbridge.Config{APIs: map[string]eventbridge.API{"sandbox": api},
		Buses: map[string]string{"sandbox": "b"}, QueueSize: 10, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ev := events.Event{Step: events.StepPromote, Outcome: events.OutcomeSucceeded, Secret: "s", Environment: "sandbox", Time: time.Now()}
	start := time.Now()
	for range 100 {
		pub.Emit(context.Background(), ev)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("100 Emit calls took %s with EventBridge hanging", d)
	}
	// Other environments and steps consumers need not hear about are not queued at all.
	pub.Emit(context.Background(), events.Event{Step: events.StepPromote, Outcome: events.OutcomeSucceeded, Environment: "production"})
	pub.Emit(context.Background(), events.Event{Step: events.StepTest, Outcome: events.OutcomeSucceeded, Environment: "sandbox"})
	close(api.release)
	if err := pub.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	mfs, _ := reg.Gather()
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	// One in the worker's hands, ten queued, the rest dropped.
	if got["published"]+got["dropped"] != 100 || got["dropped"] < 89 || got["published"] < 10 {
		t.Fatalf("counters %v; want 100 entries published or dropped, at least 89 dropped", got)
	}
}
