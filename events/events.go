// Package events is the one seam every lifecycle step reports on. The engine,
// the triggers and the policy scans emit Events; notifications (notify/) and
// the audit trail (audit/) subscribe. An Event carries ids and last-4s only,
// never a secret value.
package events

import (
	"context"
	"sync"
	"time"
)

// Step is what part of the lifecycle an event reports.
type Step string

const (
	StepTrigger   Step = "trigger"   // a rotation was asked for (accepted or refused)
	StepCreate    Step = "create"    // new credential at LakiConnect + AWSPENDING version
	StepTest      Step = "test"      // the pending credential proved to work
	StepPromote   Step = "promote"   // AWSCURRENT moved, old credential's end scheduled
	StepRetire    Step = "retire"    // old credential watched during grace, then confirmed ended
	StepRotation  Step = "rotation"  // a whole rotation, start to end
	StepSweep     Step = "sweep"     // orphan sweep
	StepViolation Step = "violation" // a policy check failed
	StepAlert     Step = "alert"     // something people must look at (401/403 spike, old key still in use)
	StepAuth      Step = "auth"      // a refused request to the daemon's own API or receivers
	StepAudit     Step = "audit"     // the audit trail itself: a sink failed or recovered, a torn tail was repaired
)

// Outcome is how the step ended.
type Outcome string

const (
	OutcomeStarted   Outcome = "started"
	OutcomeSucceeded Outcome = "succeeded"
	OutcomeFailed    Outcome = "failed"
	OutcomeWarning   Outcome = "warning"
	OutcomeRefused   Outcome = "refused"
	OutcomeSkipped   Outcome = "skipped"
)

// Cause is why a rotation runs.
type Cause string

const (
	CauseScheduled  Cause = "scheduled"
	CauseCompromise Cause = "compromise"
	CausePersonnel  Cause = "personnel"
	CauseManual     Cause = "manual"
)

// Emergency reports whether the cause is one that jumps the queue.
func (c Cause) Emergency() bool { return c == CauseCompromise || c == CausePersonnel }

// Source is where a trigger came from.
type Source string

const (
	SourceSchedule   Source = "schedule"
	SourceCLI        Source = "cli"
	SourceHTTP       Source = "http"
	SourceSlack      Source = "slack"
	SourceLakiEvent  Source = "lakiconnect_event"
	SourcePolicyScan Source = "policy_scan"
	SourceStartup    Source = "startup"
)

// Severity ranks events for routing.
type Severity string

const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Event is one thing that happened to one managed secret (or to the daemon).
type Event struct {
	Time              time.Time     `json:"time"`
	Step              Step          `json:"step"`
	Outcome           Outcome       `json:"outcome"`
	Severity          Severity      `json:"severity"`
	Secret            string        `json:"secret,omitempty"` // managed secret's name
	Kind              string        `json:"kind,omitempty"`   // api_key, webhook_secret, management_key
	Environment       string        `json:"environment,omitempty"`
	MasterMerchantID  string        `json:"master_merchant_id,omitempty"`
	Cause             Cause         `json:"cause,omitempty"`
	Source            Source        `json:"source,omitempty"`
	Actor             string        `json:"actor,omitempty"`        // who asked, as authenticated: "token:<name>", "cert:<name>", a Slack user id, "lakiconnect:<event id>", "scheduler"
	OnBehalfOf        string        `json:"on_behalf_of,omitempty"` // a person the request named (a claim, not who authenticated)
	Reason            string        `json:"reason,omitempty"`
	TriggerID         string        `json:"trigger_id,omitempty"` // groups the events of one trigger (an emergency's thread)
	VersionID         string        `json:"version_id,omitempty"`
	PreviousVersionID string        `json:"previous_version_id,omitempty"`
	KeyID             string        `json:"key_id,omitempty"` // LakiConnect key or webhook secret id (not a secret)
	PreviousKeyID     string        `json:"previous_key_id,omitempty"`
	KeyLast4          string        `json:"key_last4,omitempty"` // last 4 of the secret, as LakiConnect's secret_last4
	Attempt           int           `json:"attempt,omitempty"`
	Duration          time.Duration `json:"duration_ns,omitempty"`
	Error             string        `json:"error,omitempty"`
	// Details holds named facts specific to the step (violation reason codes, counts).
	Details map[string]string `json:"details,omitempty"`
}

// Sink receives events. Emit must not block the caller for long and must not
// fail the step that emitted: sinks handle their own errors.
type Sink interface {
	Emit(ctx context.Context, e Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, e Event)

func (f SinkFunc) Emit(ctx context.Context, e Event) { f(ctx, e) }

// Bus fans events out to every subscribed sink, in order.
type Bus struct {
	mu    sync.RWMutex
	sinks []Sink
}

// Subscribe adds a sink.
func (b *Bus) Subscribe(s Sink) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sinks = append(b.sinks, s)
}

func (b *Bus) Emit(ctx context.Context, e Event) {
	b.mu.RLock()
	sinks := b.sinks
	b.mu.RUnlock()
	for _, s := range sinks {
		s.Emit(ctx, e)
	}
}

// Recorder keeps every event it receives; for tests and the CLI's summaries.
type Recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *Recorder) Emit(_ context.Context, e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Events returns a copy of what was recorded.
func (r *Recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}
