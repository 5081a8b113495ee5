// A job that must wait in the middle of a rotation (a replayed create
// waits out its owner's put) goes back to the pool's queue for that long
// instead of holding a worker: the pool keeps its secret reserved and what
// the job had made, and runs it again once the wait is over.

package rotator

import (
	"fmt"
	"time"
)

// requeue is the error of a job that waits before it goes on.
type requeue struct {
	after time.Duration
	job   Job // the job (its own trigger), carrying what it made and joined
}

func (r *requeue) Error() string {
	return fmt.Sprintf("rotation of %q waits %s before it goes on", r.job.Secret.Name, r.after)
}

// carried is what a requeued job takes into its next run.
type carried struct {
	made    *made     // the credential it created (replayed, its wait done)
	joined  Trigger   // the trigger it runs under: its own, or the ask it joined
	started time.Time // when the rotation started (its "started" event is sent once)
}
