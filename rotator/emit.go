// The events a rotation reports on the events seam.

package rotator

import (
	"context"
	"log/slog"

	"github.com/lakirotator/lakirotator/events"
)

func (e *Engine) baseEvent(job Job) events.Event {
	ev := events.Event{
		Secret: job.Secret.Name, Kind: string(job.Secret.Kind), Environment: string(job.Secret.Environment),
		MasterMerchantID: job.Secret.MasterMerchantID, Cause: job.Trigger.Kind, Source: job.Trigger.Source,
		Actor: job.Trigger.Actor, OnBehalfOf: job.Trigger.OnBehalfOf, Reason: job.Trigger.Reason,
	}
	if job.Trigger.Kind != events.CauseScheduled {
		ev.TriggerID = job.Trigger.ID
	}
	return ev
}

// emit stamps and sends an event; err, when set, is recorded as the event's
// error (errors carry no secrets).
func (e *Engine) emit(ctx context.Context, ev events.Event, step events.Step, outcome events.Outcome, err error) {
	ev.Time = e.clk.Now()
	ev.Step, ev.Outcome = step, outcome
	if ev.Severity == "" {
		switch outcome {
		case events.OutcomeFailed:
			ev.Severity = events.SeverityWarning
		case events.OutcomeWarning:
			ev.Severity = events.SeverityWarning
		default:
			ev.Severity = events.SeverityInfo
		}
	}
	if err != nil {
		ev.Error = err.Error()
	}
	e.sink.Emit(ctx, ev)
	level := slog.LevelInfo
	if outcome == events.OutcomeFailed || outcome == events.OutcomeWarning {
		level = slog.LevelWarn
	}
	e.log.Log(ctx, level, "rotation step", "secret", ev.Secret, "step", ev.Step, "outcome", ev.Outcome,
		"version", ev.VersionID, "key", ev.KeyID, "cause", ev.Cause, "error", ev.Error)
}
