package notify

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/lakirotator/lakirotator/events"
)

// Each kind of event says what it is in its own words; emergencies say
// what was exposed, what was done and what the reader must do.
func TestEachEventTypeHasItsOwnWords(t *testing.T) {
	exposed := "key key_EXPOSED01 exposed (public_repository)"
	base := events.Event{Secret: "prod/pay", Environment: "production", KeyID: "key_NEW00000001", PreviousKeyID: "key_EXPOSED01"}
	with := func(f func(*events.Event)) events.Event { e := base; f(&e); return e }
	cases := []struct {
		name                 string
		e                    events.Event
		title, summary, next string
	}{
		{"compromise accepted", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Cause, e.Reason = events.StepTrigger, events.OutcomeSucceeded, events.CauseCompromise, exposed
		}),
			"Credential exposed: rotating prod/pay now",
			"Key key_EXPOSED01 exposed (public_repository). The rotator is replacing it with no grace period: the exposed credential stops working as soon as its replacement is current.",
			"Watch this thread for the outcome. Consumers that read the secret only at start-up must be restarted once it succeeds. Find out how the credential was exposed."},
		{"personnel accepted", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Cause, e.Reason, e.Secret = events.StepTrigger, events.OutcomeSucceeded, events.CausePersonnel, "alice left", ""
			e.Details = map[string]string{"owner": "alice", "secrets": "3"}
		}),
			"Personnel change: rotating 3 secrets of alice",
			"Alice left. Every credential they could have seen is being replaced; the old ones end after the policy's short grace.",
			"Watch this thread for the outcome, and make sure consumers pick up the new values before the grace ends."},
		{"compromise succeeded", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Cause, e.Reason = events.StepRotation, events.OutcomeSucceeded, events.CauseCompromise, exposed
		}),
			"Compromise rotation succeeded: prod/pay",
			"Key key_EXPOSED01 exposed (public_repository). Now key …0001 is in AWSCURRENT and key …ED01, the exposed one, ends at once (no grace).",
			"Make sure every consumer uses the new value (restart those that cache it), then find out how the old one was exposed."},
		{"compromise failed", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Cause, e.Reason = events.StepRotation, events.OutcomeFailed, events.CauseCompromise, exposed
		}),
			"Compromise rotation failed: prod/pay",
			"Key key_EXPOSED01 exposed (public_repository). The exposed credential was not replaced and may still work at LakiConnect.",
			"Act now: if the exposed key still works, revoke it at LakiConnect by hand (its consumers fail until the rotation succeeds). Fix the cause in the error, then trigger the compromise rotation again."},
		{"scheduled succeeded", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Cause = events.StepRotation, events.OutcomeSucceeded, events.CauseScheduled
		}),
			"Rotation succeeded: prod/pay", "Now key …0001 is in AWSCURRENT; key …ED01 ends after the policy's grace.", ""},
		{"scheduled failed, retrying", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Cause, e.Details = events.StepRotation, events.OutcomeFailed, events.CauseScheduled, map[string]string{"retry": "true"}
		}),
			"Rotation failed: prod/pay",
			"AWSCURRENT still holds the old credential, so consumers are not affected. The rotator tries again after a backoff.",
			"Check the error and the daemon's log, then trigger the rotation again."},
		{"401 watch", with(func(e *events.Event) {
			e.Step, e.Outcome, e.Reason = events.StepAlert, events.OutcomeWarning, "unauthorized_on_retired_key"
			e.Details = map[string]string{"reason": "unauthorized_on_retired_key"}
		}),
			"Retired key still presented: prod/pay", "", "A consumer still uses the retired key: move it to AWSCURRENT."},
	}
	titles := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := FromEvent(c.e)
			assert.Equal(t, c.title, n.Title)
			assert.Equal(t, c.summary, n.Summary)
			assert.Equal(t, c.next, n.NextSteps)
			assert.NotContains(t, n.Title, "accepted")
			assert.False(t, titles[n.Title], "title %q used twice", n.Title)
			titles[n.Title] = true
		})
	}
}
