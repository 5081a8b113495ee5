// Observation: lifecycle events as log lines, the log notifier, and call
// labels for metrics (the client reports route templates such as
// /api_keys/{key_id}, so labels stay few without collapsing ids here).

package daemon

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/notify"
)

// eventLogger writes every lifecycle event as one structured log line; the
// Terraform alarms filter on these fields.
type eventLogger struct{ log *slog.Logger }

func (l eventLogger) Emit(ctx context.Context, e events.Event) {
	// Errors are failures; critical but successful (an emergency accepted,
	// an alert raised) is a warning, so error-level log alarms count failures.
	level := slog.LevelInfo
	switch {
	case e.Outcome == events.OutcomeFailed:
		level = slog.LevelError
	case e.Severity == events.SeverityCritical || e.Outcome == events.OutcomeRefused || e.Outcome == events.OutcomeWarning:
		level = slog.LevelWarn
	}
	attrs := []any{"step", e.Step, "outcome", e.Outcome, "severity", e.Severity}
	for _, kv := range [][2]string{
		{"secret", e.Secret}, {"kind", e.Kind}, {"environment", e.Environment}, {"cause", string(e.Cause)},
		{"source", string(e.Source)}, {"actor", e.Actor}, {"on_behalf_of", e.OnBehalfOf}, {"trigger_id", e.TriggerID}, {"version_id", e.VersionID},
		{"key_id", e.KeyID}, {"previous_key_id", e.PreviousKeyID}, {"reason", e.Reason}, {"error", e.Error},
	} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if r := e.Details["reason"]; r != "" {
		attrs = append(attrs, "reason_code", r)
	}
	l.log.Log(ctx, level, "lifecycle event", attrs...)
}

// logNotifier is the "log" receiver kind: notifications as log lines.
type logNotifier struct{ log *slog.Logger }

func (l logNotifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	attrs := []any{"title", n.Title, "secret", n.Secret, "environment", n.Environment, "severity", n.Severity}
	if n.Mention != "" {
		attrs = append(attrs, "mention", n.Mention)
	}
	if n.Summary != "" {
		attrs = append(attrs, "summary", n.Summary)
	}
	if n.NextSteps != "" {
		attrs = append(attrs, "next_steps", n.NextSteps)
	}
	l.log.InfoContext(ctx, "notification", attrs...)
	return false, nil
}

func callStatus(status int, err error) string {
	if err != nil && status == 0 {
		return "error"
	}
	return fmt.Sprint(status)
}
