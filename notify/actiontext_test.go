package notify

import (
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/events"
)

// A warning with no error of its own says in words what its action code
// means, instead of an empty error.
func TestActionCodesAreExplained(t *testing.T) {
	n := FromEvent(events.Event{Step: events.StepCreate, Outcome: events.OutcomeWarning, Secret: "shop/webhook",
		Details: map[string]string{"action": "end_stale_webhook_secret", "previous_status": "expiring"}})
	if n.Error != "" || !strings.Contains(n.Reason, "most live signing secrets") {
		t.Errorf("reason %q, error %q", n.Reason, n.Error)
	}
	// A reason of the event's own wins.
	n = FromEvent(events.Event{Step: events.StepRetire, Outcome: events.OutcomeWarning, Reason: "used 2m ago",
		Details: map[string]string{"action": "old_key_still_used"}})
	if n.Reason != "used 2m ago" {
		t.Errorf("reason %q", n.Reason)
	}
}
