// Package notify tells people what the rotator did. A Notifier delivers one
// Notification to one channel (Slack, a terminal); the Dispatcher subscribes
// to the event bus, routes each event by environment and severity,
// suppresses repeats, batches routine successes into a digest and retries
// failed deliveries, so that each Notifier stays one small method. A
// notification failure never blocks or fails a rotation.
package notify

import (
	"context"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
)

// Notifier delivers one notification. retry says whether the failure is
// worth another attempt (rate limit, server error, network) or not (bad
// token, unknown channel).
type Notifier interface {
	Notify(ctx context.Context, n Notification) (retry bool, err error)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(ctx context.Context, n Notification) (bool, error)

func (f NotifierFunc) Notify(ctx context.Context, n Notification) (bool, error) { return f(ctx, n) }

// Notification is what people are told about one event (or, for a digest,
// about several). It holds ids shortened to their last 4 and no secret value.
type Notification struct {
	Time             time.Time
	Title            string
	Severity         events.Severity
	Step             events.Step
	Outcome          events.Outcome
	Secret           string
	Kind             string
	Environment      string
	MasterMerchantID string
	// KeyID and PreviousKeyID are the LakiConnect key ids, shortened to "…abcd".
	KeyID         string
	PreviousKeyID string
	KeyLast4      string // last 4 of the credential value, as LakiConnect shows it
	Cause         events.Cause
	Source        events.Source
	Actor         string
	Reason        string
	Duration      time.Duration
	Error         string
	// Summary says in a sentence or two what happened and what was done;
	// NextSteps what the reader must do, if anything.
	Summary   string
	NextSteps string
	TriggerID string // groups one trigger's notifications (a Slack thread)
	Mention   string // who to page, as Slack markup made from the routes: "<!subteam^S01> <@U02>"
	// Digest holds the batched notifications when this one is a digest.
	Digest []Notification
}

// Emergency reports whether the notification belongs to an emergency rotation.
func (n Notification) Emergency() bool { return n.Cause.Emergency() }

// FromEvent builds the notification for e.
func FromEvent(e events.Event) Notification {
	t := describe(e)
	n := Notification{
		Time: e.Time, Title: t.title, Severity: e.Severity, Step: e.Step, Outcome: e.Outcome,
		Secret: e.Secret, Kind: e.Kind, Environment: e.Environment, MasterMerchantID: e.MasterMerchantID,
		KeyID: laki.ShortID(e.KeyID), PreviousKeyID: laki.ShortID(e.PreviousKeyID), KeyLast4: e.KeyLast4,
		Cause: e.Cause, Source: e.Source, Actor: e.Actor, Reason: e.Reason,
		Duration: e.Duration, Error: e.Error, Summary: t.summary, NextSteps: t.next, TriggerID: e.TriggerID,
	}
	if n.Reason == "" {
		n.Reason = actionText[e.Details["action"]]
	}
	return n
}

// actionText says in words what an event's details.action code means, for
// events that carry no reason of their own (a warning with no error).
var actionText = map[string]string{
	"end_stale_webhook_secret": "the endpoint already held the most live signing secrets LakiConnect allows; an old one (from an earlier rotation, still in its grace) was ended so that the new one could be created",
	"confirm_ended":            "the old credential is confirmed ended at LakiConnect",
	"old_key_still_used":       "consumers still used the old credential close to the end of its grace",
	"revoke_first":             "the exposed key was revoked before its replacement existed (the policy prefers an outage to an attacker's access)",
	"revoke_orphan":            "a key the rotator made that no stored version references was revoked",
	"report_unreferenced_key":  "a key no stored version references, not made by the rotator: reported, not touched",
	"abandon_rotation":         "the rotation was abandoned after too many failures",
}
