// Several asks for one secret at once (one trigger sent to every replica,
// or two people): the job joins the ask the store names, so that they all
// converge on one rotation, and looks again right before its put, where a
// replica that kept the same ask a moment later may have taken it over.

package rotator

import (
	"context"
	"fmt"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// joinLater says that, right before its put, a job found another ask for
// the secret kept in the store since it started (a replica that accepted
// the same ask a moment later wrote its intent over this one's): the job
// gives up its own credential and joins that ask.
type joinLater struct {
	joined Joined
	info   secretstore.Secret
}

func (j *joinLater) Error() string {
	return fmt.Sprintf("another ask (%s) for the secret is the one kept in the store", j.joined.Trigger.ID)
}

// join makes the job run under the joined ask, following it first when
// another replica writes it. It returns the listing to go on from.
func (e *Engine) join(ctx context.Context, job *Job, j Joined, info secretstore.Secret) (secretstore.Secret, error) {
	if j.Trigger.ID != job.Trigger.ID {
		e.log.Info("joining the rotation another ask started for the same secret", "secret", job.Secret.Name,
			"cause", job.Trigger.ID, "joined", j.Trigger.ID)
		job.Trigger = j.Trigger
	}
	if !j.Follow {
		return info, nil
	}
	return e.follow(ctx, *job, info)
}

// checkBeforePut looks at the store right before a put where the listing
// cannot tell: when it showed no AWSCURRENT (a secret never written by a
// rotation, or one a stale re-put stripped), and for a trigger's job, which
// may have been joined by a later ask since it started. One Describe; a
// scheduled slot with AWSCURRENT listed spends none.
func (e *Engine) checkBeforePut(ctx context.Context, job Job, vid string, hasCur bool) error {
	joins := job.Join != nil && !job.resumeOnly
	if hasCur && !joins {
		return nil
	}
	d, err := e.store.Describe(ctx, job.Secret.Name)
	if err != nil {
		return stepErr(job.Secret.Name, "describe", err)
	}
	if joins {
		if j, ok := job.Join(d); ok && j.Trigger.ID != job.Trigger.ID && j.Trigger.validate() == nil {
			return &joinLater{joined: j, info: d}
		}
	}
	if _, there := d.Version(vid); there {
		return errStale
	}
	if p, ok := d.VersionWithStage(secretstore.StagePending); ok && !p.Has(secretstore.StageCurrent) {
		return errStale // another rotation is in flight: finish it rather than race it
	}
	if _, nowCur := d.VersionWithStage(secretstore.StageCurrent); nowCur && !hasCur {
		return errStale
	}
	return nil
}
