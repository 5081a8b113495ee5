// races.go holds what a writer does because others (a replica, a second
// rotation of the same secret) may write the same secret at once: follow
// their rotation, wait out a replayed create, promote over a moved label,
// end a credential that lost the race.

package rotator

import (
	"context"
	"errors"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Following a rotation another replica writes: how often to look, how many
// times, before taking over (the other replica may have died).
const (
	followEvery = 500 * time.Millisecond
	followPolls = 40
)

// follow waits while another replica writes the cause's rotation: two
// writers of one version race (a late put of a version the other already
// promoted strips AWSCURRENT on moto), one writer does not. It returns the
// listing once the version is current, or after the bound: then this
// replica writes (idempotently) what is left.
func (e *Engine) follow(ctx context.Context, job Job, info secretstore.Secret) (secretstore.Secret, error) {
	vid := VersionOf(job.Secret, info, job.Trigger.ID)
	for range followPolls {
		if v, ok := info.Version(vid); ok && v.Has(secretstore.StageCurrent) {
			return info, nil
		}
		select {
		case <-ctx.Done():
			return info, stepErr(job.Secret.Name, "follow", ctx.Err())
		case <-stopOf(ctx):
			return info, stepErr(job.Secret.Name, "follow", ErrClosed)
		case <-e.clk.After(followEvery):
		}
		d, err := e.store.Describe(ctx, job.Secret.Name)
		if err != nil {
			return info, stepErr(job.Secret.Name, "describe", err)
		}
		info = d
	}
	e.log.Warn("the replica writing this rotation did not finish it; taking over", "secret", job.Secret.Name, "cause", job.Trigger.ID)
	return info, nil
}

// settle is what a rotation whose create was replayed does before its put.
// LakiConnect's idempotency elects one owner per create: only the first
// request gets the first answer, every later one a replay. The owner puts
// at once. A replica that got the replay must not: its put could still be on
// the wire when the owner promotes the version, and a put of an existing
// version strips AWSCURRENT on moto (a no-op on AWS). No check before the
// put closes that window, so the replayed one waits a settle time longer than
// one put can take, then looks: a version that exists (pending or current)
// is the owner's, and the pass resumes it without any put (errStale: the
// attempt describes again); a version still absent has no live owner (it
// crashed before its put, or it was this process), and this one adopts the
// credential with the put.
//
// In the worker pool the job goes back to the queue for the wait (a
// worker is not held); its next run starts with a fresh Describe, which is
// the look that follows the wait.
func (e *Engine) settle(ctx context.Context, job Job, vid string) error {
	name := job.Secret.Name
	e.log.Info("the create was a replay; waiting for its owner's put before writing", "secret", name, "version", vid, "wait", e.cfg.ReplaySettle)
	if inPool(ctx) {
		return &requeue{after: e.cfg.ReplaySettle}
	}
	select {
	case <-ctx.Done():
		return stepErr(name, "settle", ctx.Err())
	case <-stopOf(ctx):
		return stepErr(name, "settle", ErrClosed)
	case <-e.clk.After(e.cfg.ReplaySettle):
	}
	d, err := e.store.Describe(ctx, name)
	if err != nil {
		return stepErr(name, "describe", err)
	}
	if _, ok := d.Version(vid); ok {
		return errStale
	}
	return nil
}

// promote moves AWSCURRENT to vid. If the move fails it looks at what
// stands: vid already current (another replica promoted it: byOther), or
// another version became current since the listing while vid still holds
// AWSPENDING (vid is then the newer rotation: it is promoted from that
// version, whose id from returns). It never moves AWSCURRENT off a version
// that is newer than vid.
func (e *Engine) promote(ctx context.Context, job Job, vid, fromID, oldKey, newKey string) (from string, byOther bool, err error) {
	name := job.Secret.Name
	ev := e.baseEvent(job)
	ev.VersionID, ev.PreviousVersionID, ev.KeyID, ev.PreviousKeyID = vid, fromID, newKey, oldKey
	start := e.clk.Now()
	from = fromID
	if fromID == vid {
		// Never move AWSCURRENT onto the version that holds it: AWS does
		// not document that case, and moto then strips AWSPREVIOUS from
		// the old version (see MOTO.md). It is done already.
		return from, true, nil
	}
	err = e.store.MoveStage(ctx, name, secretstore.StageCurrent, vid, fromID)
	if err != nil {
		d, derr := e.store.Describe(ctx, name)
		if derr == nil {
			mine, ok := d.Version(vid)
			holder, held := d.VersionWithStage(secretstore.StageCurrent)
			switch {
			case ok && mine.Has(secretstore.StageCurrent):
				return from, true, nil
			case ok && mine.Has(secretstore.StagePending) && (!held || holder.ID != fromID):
				from = ""
				if held {
					from = holder.ID
				}
				err = e.store.MoveStage(ctx, name, secretstore.StageCurrent, vid, from)
			}
		}
	}
	ev.Duration = e.clk.Now().Sub(start)
	ev.PreviousVersionID = from
	if err != nil {
		err = stepErr(name, "promote", err)
		e.emit(ctx, ev, events.StepPromote, events.OutcomeFailed, err)
		return from, false, err
	}
	e.emit(ctx, ev, events.StepPromote, events.OutcomeSucceeded, nil)
	return from, false, nil
}

// discard ends a credential this rotation created but did not store,
// because its rotation lost a race (another version became the one in
// flight or current). Nobody ever read it.
func (e *Engine) discard(ctx context.Context, job Job, vid string, c secretstore.Credential) {
	ms := job.Secret
	iss, err := e.issuer(ctx, ms)
	if err == nil {
		if c.Type == secretstore.TypeWebhookSecret {
			_, err = iss.ExpireWebhookSecret(ctx, IdempotencyKey(ms.Name, vid, "discard-"+c.SecretID), ms.EndpointID, c.SecretID, nil)
		} else {
			_, err = iss.RevokeAPIKey(ctx, IdempotencyKey(ms.Name, vid, "discard-"+c.KeyID), c.KeyID)
		}
		if isNotFound(err) {
			err = nil
		}
		if errors.Is(err, laki.ErrKeyRevoked) {
			err = nil
		}
	}
	ev := e.baseEvent(job)
	ev.VersionID, ev.KeyID, ev.KeyLast4 = vid, c.ID(), c.Secret.Last4()
	ev.Details = map[string]string{"action": "end_unused_credential"}
	if err != nil {
		// The sweep ends it later: it carries the rotator's metadata.
		e.emit(ctx, ev, events.StepCreate, events.OutcomeWarning, stepErr(ms.Name, "end unused credential", err))
		return
	}
	e.emit(ctx, ev, events.StepCreate, events.OutcomeSkipped, nil)
}
