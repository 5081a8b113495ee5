// Sharing one deployment among replicas: the lease holder runs scheduled
// work, every replica runs triggers (package ha has the lease itself).

package daemon

import (
	"context"
	"sync"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/rotator"
)

// Leadership is the lease replicas share (ha.Lease). Without one, a daemon
// runs everything itself.
type Leadership interface {
	// Run contends for the lease until ctx ends; lead runs while this
	// replica holds it, with a context that ends when the holding does.
	Run(ctx context.Context, lead func(ctx context.Context, token int64))
	// Held says whether this replica may start work as the holder now.
	Held() (token int64, ok bool)
	// Fence fails when token is no longer the lease's: another replica took it.
	Fence(ctx context.Context, token int64) error
}

// leadState is what the daemon knows of its holding.
type leadState struct {
	mu  sync.Mutex
	ctx context.Context // the holding's context; nil while not holding
}

func (s *leadState) set(ctx context.Context) {
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
}

func (s *leadState) clear() {
	s.mu.Lock()
	s.ctx = nil
	s.mu.Unlock()
}

func (s *leadState) get() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctx
}

// asHolder says whether this replica should start scheduled work (a slot,
// a sweep, a scan, a retire pass) now, and under which context: ctx itself
// without a lease; with one, the holding's context, after the fencing
// check. A replica that lost the lease, even one that has not noticed yet
// (paused), is refused by the check and starts nothing.
func (d *Daemon) asHolder(ctx context.Context, what string) (context.Context, bool) {
	if d.lead == nil {
		return ctx, true
	}
	hctx := d.leading.get()
	token, ok := d.lead.Held()
	if hctx == nil || !ok || hctx.Err() != nil {
		d.log.Debug("not the lease holder: another replica does this", "work", what)
		return nil, false
	}
	if err := d.lead.Fence(hctx, token); err != nil {
		d.log.Warn("fencing check refused: starting nothing", "work", what, "token", token, "err", err)
		return nil, false
	}
	return hctx, true
}

// runLease contends for the lease until ctx ends. On each new holding the
// replica re-lists the catalog and runs the start-up pass's scheduled part:
// the slots, rotations in flight and overdue secrets a killed holder left.
func (d *Daemon) runLease(ctx context.Context) {
	d.lead.Run(ctx, func(hctx context.Context, token int64) {
		d.log.Info("lease held: this replica runs scheduled slots, sweeps and scans", "token", token)
		d.leading.set(hctx)
		defer d.leading.clear()
		select {
		case <-d.quit:
			return
		default:
		}
		if err := d.catalog.Refresh(hctx, d.clock.Now()); err != nil {
			d.log.Error("catalog refresh on taking the lease failed; keeping the last one", "err", err)
		}
		d.StartupPass(hctx)
		<-hctx.Done()
		d.log.Info("lease holding ended: no new scheduled work starts here", "token", token)
	})
}

// scheduledCause is work only the holder starts.
func scheduledCause(c rotator.Trigger) bool { return c.Kind == events.CauseScheduled }

// Holding says whether this replica runs scheduled work now: always
// without a lease; with one, while it holds it.
func (d *Daemon) Holding() bool {
	if d.lead == nil {
		return true
	}
	_, ok := d.lead.Held()
	return ok && d.leading.get() != nil
}
