package lakiconnect

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// DefaultRateBurst is the burst of the per-key rate limit when Config sets
// a limit and no burst.
const DefaultRateBurst = 20

// keyLimits spaces the requests of each calling key so that a large batch
// stays under LakiConnect's per-key rate limit instead of meeting 429s: the
// one place the rotator limits its pace towards LakiConnect. A client and
// every WithAPIKey copy share it, so all calls with one key share one bucket.
type keyLimits struct {
	limit rate.Limit
	burst int
	clock clock.Clock

	mu    sync.Mutex
	byKey map[[sha256.Size]byte]*keyLimit
}

type keyLimit struct {
	lim  *rate.Limiter
	last time.Time
}

func newKeyLimits(perSecond float64, burst int, clk clock.Clock) *keyLimits {
	if perSecond <= 0 {
		return nil
	}
	if burst <= 0 {
		burst = DefaultRateBurst
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &keyLimits{limit: rate.Limit(perSecond), burst: burst, clock: clk, byKey: map[[sha256.Size]byte]*keyLimit{}}
}

// wait returns when the key may send its next request, or with ctx's error.
func (k *keyLimits) wait(ctx context.Context, key secret.Value) error {
	if k == nil {
		return nil
	}
	id := sha256.Sum256([]byte(key.Reveal())) // the key itself is never kept
	now := k.clock.Now()
	k.mu.Lock()
	kl, ok := k.byKey[id]
	if !ok {
		k.forgetIdleLocked(now)
		kl = &keyLimit{lim: rate.NewLimiter(k.limit, k.burst)}
		k.byKey[id] = kl
	}
	kl.last = now
	r := kl.lim.ReserveN(now, 1)
	k.mu.Unlock()
	if !r.OK() {
		return fmt.Errorf("lakiconnect: rate limit %g/s with burst %d allows no request", float64(k.limit), k.burst)
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	select {
	case <-k.clock.After(d):
		return nil
	case <-ctx.Done():
		r.CancelAt(k.clock.Now())
		return ctx.Err()
	}
}

// forgetIdleLocked drops the buckets of keys idle long enough to be full
// again: they hold nothing, and retired keys must not pile up.
func (k *keyLimits) forgetIdleLocked(now time.Time) {
	refill := time.Duration(float64(k.burst) / float64(k.limit) * float64(time.Second))
	for id, kl := range k.byKey {
		if now.Sub(kl.last) > refill {
			delete(k.byKey, id)
		}
	}
}
