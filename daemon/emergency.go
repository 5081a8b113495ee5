package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/rotator"
)

var errEmergencyOpenAtStart = errors.New("found not done when the daemon started")

// Defaults for emergencies that do not finish at once.
const (
	DefaultEscalateAfter = 5 * time.Minute
	emergencyRetryBase   = 5 * time.Second
	emergencyRetryMax    = 2 * time.Minute
)

// retryEmergency reports whether a failed emergency job is tried again:
// until it is done, as long as another try can help (LakiConnect or the
// store unreachable, throttling), except when the daemon is stopping (a
// restart picks the intent up from the store) or the engine stopped it as a
// crash would. A failure no retry can fix (a refused scope, the key limit)
// fails loudly; its intent stays open, so a restart tries once more.
func (d *Daemon) retryEmergency(o rotator.JobOutcome) bool {
	if !o.Job.Trigger.Kind.Emergency() || o.Err == nil {
		return false
	}
	if errors.Is(o.Err, rotator.ErrAborted) || errors.Is(o.Err, rotator.ErrClosed) {
		return false
	}
	var se *rotator.StepError
	if errors.As(o.Err, &se) && se.Permanent {
		return false
	}
	select {
	case <-d.quit:
		return false
	default:
		return true
	}
}

// again runs a failed emergency job once more after a capped exponential
// backoff (the n-th retry), and raises an escalating critical alert each
// time the emergency has been open for another EscalateAfter, 2×, 4×...
// since it was asked for. The intent is in the store, so a restart or a
// replica carries on where this process stops; the alert times come from the
// intent's time, so they survive too.
func (d *Daemon) again(o rotator.JobOutcome, n int, each func(rotator.JobOutcome, int)) {
	wait := emergencyRetryBase << min(n, 10)
	wait = min(wait, emergencyRetryMax)
	d.goBackground(func(ctx context.Context) {
		select {
		case <-d.quit:
			return
		case <-d.clock.After(wait):
		}
		job := o.Job
		d.escalate(ctx, job, o.Err)
		if e, ok := d.catalog.Get(job.Secret.Name); ok {
			known := e.Stored
			job.Known = &known
		}
		d.runJobs(ctx, []rotator.Job{job}, func(o rotator.JobOutcome) { each(o, n+1) })
	})
}

// escalate alerts when the emergency has been open past the next threshold.
func (d *Daemon) escalate(ctx context.Context, job rotator.Job, err error) {
	open := d.clock.Now().Sub(job.Trigger.At)
	if open < d.escalateAfter {
		return
	}
	key := job.Trigger.ID + "\x00" + job.Secret.Name
	d.mu.Lock()
	level := d.escalated[key]
	due := d.escalateAfter << min(level, 20)
	if open < due {
		d.mu.Unlock()
		return
	}
	d.escalated[key] = level + 1
	d.mu.Unlock()
	msg := fmt.Sprintf("the %s rotation of %s asked for %s ago is still not done: %v", job.Trigger.Kind, job.Secret.Name, open.Round(time.Second), err)
	d.bus.Emit(ctx, events.Event{
		Time: d.clock.Now(), Step: events.StepAlert, Outcome: events.OutcomeFailed, Severity: events.SeverityCritical,
		Secret: job.Secret.Name, Kind: string(job.Secret.Kind), Environment: string(job.Secret.Environment),
		MasterMerchantID: job.Secret.MasterMerchantID, Cause: job.Trigger.Kind, Source: job.Trigger.Source,
		Actor: job.Trigger.Actor, TriggerID: job.Trigger.ID, Reason: msg,
		Details: map[string]string{"reason": "emergency_not_done", "escalation": fmt.Sprint(level + 1), "open_for": open.Round(time.Second).String()},
	})
}
