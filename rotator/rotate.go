// One rotation from the caller's side: checking the job, running its
// attempts with backoff, and the failures kept in tags across restarts.

package rotator

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Rotate runs one rotation of one secret; see RotateJob.
func (e *Engine) Rotate(ctx context.Context, ms inventory.ManagedSecret, pol RotationPolicy, cause Trigger) (Result, error) {
	return e.RotateJob(ctx, Job{Secret: ms, Policy: pol, Trigger: cause})
}

func validateJob(j Job) error {
	if err := j.Secret.Validate(); err != nil {
		return err
	}
	if err := j.Trigger.validate(); err != nil {
		return fmt.Errorf("managed secret %q: %w", j.Secret.Name, err)
	}
	if j.Secret.Kind != inventory.KindWebhookSecret {
		if len(j.Policy.Scopes) == 0 {
			return fmt.Errorf("managed secret %q: policy %q lists no scopes for the new key", j.Secret.Name, j.Secret.Policy)
		}
		for _, s := range j.Policy.Scopes {
			if !s.Valid() {
				return fmt.Errorf("managed secret %q: policy %q: scope %q is not a LakiConnect scope", j.Secret.Name, j.Secret.Policy, s)
			}
		}
	}
	return nil
}

// RotateJob runs one rotation to its end, or resumes the one in flight,
// retrying failed attempts with capped exponential backoff (Config.Attempts
// in this call; the failure count, last failure and next attempt time are
// kept in the secret's tags so that a restart finds them). AWSCURRENT is only
// ever moved to a credential that passed its test.
func (e *Engine) RotateJob(ctx context.Context, job Job) (Result, error) {
	if err := validateJob(job); err != nil {
		return Result{}, &StepError{Secret: job.Secret.Name, Step: "validate", Err: err, Permanent: true}
	}
	if job.Trigger.At.IsZero() {
		job.Trigger.At = e.clk.Now().UTC().Truncate(time.Hour)
	}
	if PriorityOf(job) == PriorityEmergency {
		// Its store calls go ahead of a batch's in the quota's queue.
		ctx = secretstore.WithUrgent(ctx)
	}
	name := job.Secret.Name
	unlock, err := e.lockSecret(ctx, name)
	if err != nil {
		return Result{}, stepErr(name, "lock", err)
	}
	defer unlock()

	start := e.clk.Now()
	info := job.Known
	if c := job.carry; c != nil {
		// Requeued after a wait: started already; look at the store afresh.
		start, info = c.started, nil
	}
	base := e.baseEvent(job)
	if job.carry == nil {
		e.emit(ctx, base, events.StepRotation, events.OutcomeStarted, nil)
	}
	priorFailures := -1
	for attempt := 1; ; attempt++ {
		var err error
		var res Result
		if info == nil {
			var d secretstore.Secret
			d, err = e.store.Describe(ctx, name)
			if err == nil {
				info = &d
			}
			err = stepErr(name, "describe", err)
		}
		if priorFailures < 0 && info != nil {
			priorFailures, _ = strconv.Atoi(info.Tags[TagFailedAttempts])
		}
		if err == nil {
			res, err = e.attempt(ctx, job, *info)
		}
		if err == nil {
			res.Attempts = attempt
			if priorFailures > 0 || (attempt > 1) {
				e.clearFailures(ctx, name)
			}
			ev := base
			ev.VersionID, ev.PreviousVersionID = res.VersionID, res.PreviousVersionID
			ev.KeyID, ev.PreviousKeyID, ev.KeyLast4 = res.KeyID, res.PreviousKeyID, res.KeyLast4
			ev.Attempt, ev.Duration = attempt, e.clk.Now().Sub(start)
			ev.Details = map[string]string{"outcome": string(res.Outcome)}
			if res.JoinedTrigger.ID != "" {
				ev.Details["joined"] = res.JoinedTrigger.ID // answered by the rotation of that ask
			}
			if (res.Outcome == AlreadyDone && !job.Announce) || res.Outcome == Superseded {
				// Done by another replica (or before a restart): it was
				// announced by whoever promoted it; say it once.
				e.emit(ctx, ev, events.StepRotation, events.OutcomeSkipped, nil)
				return res, nil
			}
			e.emit(ctx, ev, events.StepRotation, events.OutcomeSucceeded, nil)
			return res, nil
		}
		if rq, ok := err.(*requeue); ok {
			rq.job.carry.started = start
			return res, rq // the pool runs it again after the wait
		}
		if errors.Is(err, ErrAborted) || ctx.Err() != nil {
			return res, err
		}
		if errors.Is(err, laki.ErrUnauthorized) {
			// Perhaps a replica rotated the management key: read it again.
			if inv, ok := e.cfg.Issuers.(KeyInvalidator); ok {
				inv.InvalidateManagementKey(job.Secret.Environment, job.Secret.MasterMerchantID)
			}
		}
		priorFailures = max(priorFailures, 0) + 1
		more := attempt < e.cfg.Attempts && retryable(err)
		next := e.clk.Now().Add(e.cfg.Backoff.Delay(priorFailures))
		failing := res.VersionID
		if failing == "" {
			failing = VersionID(refOf(job.Secret, info), job.Trigger.ID)
		}
		e.recordFailure(ctx, name, failing, priorFailures, err, next)
		ev := base
		if res.VersionID != "" || info != nil { // the rotation that failed, as its create step names it
			ev.VersionID = failing
		}
		ev.Attempt, ev.Duration = attempt, e.clk.Now().Sub(start)
		sev := events.SeverityWarning
		if priorFailures >= e.cfg.MaxFailures || !more {
			sev = events.SeverityCritical
		}
		ev.Severity = sev
		ev.Details = map[string]string{"failures": strconv.Itoa(priorFailures), "retry": strconv.FormatBool(more)}
		e.emit(ctx, ev, events.StepRotation, events.OutcomeFailed, err)
		if !more {
			return res, err
		}
		select {
		case <-e.clk.After(e.cfg.Backoff.Delay(attempt)):
		case <-ctx.Done():
			return res, stepErr(name, "backoff", ctx.Err())
		case <-stopOf(ctx):
			// Shutting down: no further attempt here; the failure count is
			// in the tags and a restart picks the rotation up.
			return res, stepErr(name, "backoff", ErrClosed)
		}
		info = nil // the store may have moved on: look again
	}
}

func refOf(ms inventory.ManagedSecret, info *secretstore.Secret) string {
	if info != nil && info.ARN != "" {
		return info.ARN
	}
	if ms.ARN != "" {
		return ms.ARN
	}
	return ms.Name
}

func (e *Engine) recordFailure(ctx context.Context, name, versionID string, failures int, err error, next time.Time) {
	tags := map[string]string{
		TagFailedAttempts: strconv.Itoa(failures),
		TagLastFailure:    sanitize(err.Error()),
		TagNextAttempt:    next.UTC().Format(time.RFC3339),
		TagFailingVersion: versionID,
	}
	if terr := e.store.Tag(ctx, name, tags); terr != nil {
		e.log.Warn("recording rotation failure in tags failed", "secret", name, "error", terr)
	}
}

func (e *Engine) clearFailures(ctx context.Context, name string) {
	tags := map[string]string{TagFailedAttempts: "0", TagLastFailure: "", TagNextAttempt: "", TagFailingVersion: ""}
	if err := e.store.Tag(ctx, name, tags); err != nil {
		e.log.Warn("clearing rotation failure tags failed", "secret", name, "error", err)
	}
}

func (e *Engine) hook(name string, step Boundary) error {
	if e.cfg.Hooks.AfterStep == nil {
		return nil
	}
	if err := e.cfg.Hooks.AfterStep(name, step); err != nil {
		return fmt.Errorf("%w after %s of %q: %w", ErrAborted, step, name, err)
	}
	return nil
}

func (e *Engine) revokeFirst(job Job) bool {
	return job.Trigger.Kind == events.CauseCompromise &&
		(job.Policy.RevokeFirstOnCompromise || job.Trigger.RevokeFirst) &&
		job.Secret.Kind == inventory.KindAPIKey
}
