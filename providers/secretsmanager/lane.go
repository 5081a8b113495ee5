package secretsmanager

import (
	"context"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// lane is one client-side quota (reads or writes of one account and
// region) with an emergency lane: while an urgent call waits for its turn,
// routine calls do not take new turns, so an emergency waits at most for
// the turns already handed out (one per worker), not for a batch's queue.
type lane struct {
	lim    *rate.Limiter
	urgent atomic.Int64 // urgent calls waiting for or taking their turn
}

func newLane(r float64, burst int) *lane {
	return &lane{lim: rate.NewLimiter(rate.Limit(r), burst)}
}

// routineYield is how often a routine call looks again while urgent ones
// wait: short beside a turn at tens of calls a second.
const routineYield = 5 * time.Millisecond

// wait takes a turn, urgent calls first. Real time, as the limiter's.
func (l *lane) wait(ctx context.Context) error {
	if secretstore.Urgent(ctx) {
		l.urgent.Add(1)
		defer l.urgent.Add(-1)
		return l.lim.Wait(ctx)
	}
	if l.urgent.Load() > 0 {
		t := time.NewTicker(routineYield)
		defer t.Stop()
		for l.urgent.Load() > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return l.lim.Wait(ctx)
}
