package lakiconnect

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/internal/clock"
)

// DefaultRateBurst is the burst of the rate limit when Config sets a limit
// and no burst.
const DefaultRateBurst = 20

// pace spaces the requests of one management key's calls so that a large
// batch stays under LakiConnect's per-key rate limit instead of meeting
// 429s: the one place the rotator limits its pace towards LakiConnect. A
// client and its WithAPIKey copies share one (the calls that prove a new
// key are made on the management key's behalf); each merchant's client of
// Merchants has its own.
type pace struct {
	lim   *rate.Limiter
	clock clock.Clock
}

// paceConfig is what a new pace is made of.
type paceConfig struct {
	perSecond float64
	burst     int
	clock     clock.Clock
}

func (p paceConfig) newPace() *pace {
	if p.perSecond <= 0 {
		return nil
	}
	burst, clk := p.burst, p.clock
	if burst <= 0 {
		burst = DefaultRateBurst
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &pace{lim: rate.NewLimiter(rate.Limit(p.perSecond), burst), clock: clk}
}

// wait returns when the next request may go, or with ctx's error.
func (p *pace) wait(ctx context.Context) error {
	if p == nil {
		return nil
	}
	now := p.clock.Now()
	r := p.lim.ReserveN(now, 1)
	if !r.OK() {
		return fmt.Errorf("lakiconnect: rate limit %g/s with burst %d allows no request", float64(p.lim.Limit()), p.lim.Burst())
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	select {
	case <-p.clock.After(d):
		return nil
	case <-ctx.Done():
		r.CancelAt(p.clock.Now())
		return ctx.Err()
	}
}
