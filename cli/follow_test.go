package cli

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/httpapi"
)

// follow stops when every secret has ended or is being retried, although
// the trigger itself is still running (an emergency is retried until done).
func TestFollowStopsOnceEverySecretHasSettled(t *testing.T) {
	statuses := []httpapi.TriggerStatus{
		{State: "running", Total: 2, Secrets: []httpapi.SecretProgress{{Secret: "a", State: "running"}, {Secret: "b", State: "running"}}},
		{State: "running", Total: 2, Done: 1, Secrets: []httpapi.SecretProgress{{Secret: "a", State: httpapi.StateSucceeded}, {Secret: "b", State: "running"}}},
		{State: "running", Total: 2, Done: 1, Secrets: []httpapi.SecretProgress{{Secret: "a", State: httpapi.StateSucceeded}, {Secret: "b", State: "running", Error: "create: 503"}}},
	}
	calls := 0
	get := func(context.Context) (httpapi.TriggerStatus, error) {
		st := statuses[min(calls, len(statuses)-1)]
		calls++
		return st, nil
	}
	var seen []int
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final, err := follow(ctx, get, time.Millisecond, func(p httpapi.TriggerStatus) { seen = append(seen, p.Ended()) })
	if err != nil {
		t.Fatal(err)
	}
	if calls != 3 || final.Secrets[1].Error == "" {
		t.Fatalf("stopped after %d reads at %+v, want the third (b failed and is retried)", calls, final)
	}
	if retried(final) != 1 {
		t.Fatalf("retried = %d, want 1", retried(final))
	}
	if len(seen) != 2 || seen[0] != 0 || seen[1] != 1 {
		t.Fatalf("progress saw ended counts %v, want [0 1] (once per change)", seen)
	}
}
