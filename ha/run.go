package ha

import (
	"context"
	"time"
)

// Run contends for the lease and renews it until ctx ends, then releases
// it. While this replica holds it, lead runs with a context that ends as
// soon as the holding ends by this replica's clock (a failed renewal, a
// pause past the margin, or ctx). lead is started again at every new hold.
func (l *Lease) Run(ctx context.Context, lead func(ctx context.Context, token int64)) {
	var (
		cancelLead context.CancelFunc
		leadDone   chan struct{}
		leadToken  int64
	)
	stopLead := func() {
		if cancelLead != nil {
			cancelLead()
			<-leadDone
			cancelLead, leadDone, leadToken = nil, nil, 0
		}
	}
	defer func() {
		stopLead()
		rctx, done := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer done()
		if err := l.Release(rctx); err != nil {
			l.o.Logger.Warn("lease not released; another replica takes it after its TTL", "err", err)
		}
	}()
	for {
		token, held := l.Held()
		if held {
			l.mu.Lock()
			left := l.validUntil.Sub(l.o.Clock.Now())
			l.mu.Unlock()
			rctx, done := context.WithTimeout(ctx, max(left, time.Second))
			err := l.Renew(rctx)
			done()
			if err != nil && ctx.Err() == nil {
				l.o.Logger.Warn("lease renewal failed", "lease", l.o.Name, "err", err)
			}
		} else if _, err := l.TryAcquire(ctx); err != nil && ctx.Err() == nil {
			l.o.Logger.Warn("lease check failed", "lease", l.o.Name, "err", err)
		}
		token, held = l.Held()
		if leadToken != 0 && (!held || token != leadToken) {
			l.o.Logger.Warn("lease lost: starting no more scheduled work", "lease", l.o.Name, "token", leadToken)
			stopLead()
		}
		if held && cancelLead == nil {
			lctx, cancel := context.WithCancel(ctx)
			cancelLead, leadDone, leadToken = cancel, make(chan struct{}), token
			go func(done chan struct{}) { defer close(done); lead(lctx, token) }(leadDone)
		}
		wait := l.o.Renew
		l.mu.Lock()
		if held {
			// Wake by the end of the holding too, so a renewal that hangs
			// past it still ends the lead in time.
			wait = min(wait, l.validUntil.Sub(l.o.Clock.Now()))
		} else {
			wait = min(wait, l.o.Poll)
		}
		if !held && l.seen != "" {
			// Look again right when the lease seen may be taken: a killed
			// holder's work is taken over Wait after its last renewal was
			// seen, so within one TTL of that renewal.
			if due := l.seenAt.Add(l.seenWait).Sub(l.o.Clock.Now()); due > 0 {
				wait = min(wait, due+10*time.Millisecond)
			}
		}
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-l.o.Clock.After(wait):
		}
	}
}
