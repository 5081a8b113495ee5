package httpapi

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
)

// ReadinessCheck is one condition of /readyz (store reachable, LakiConnect
// answering this process's calls). Check should answer from what the
// process already knows when it can, and call out only when it cannot.
type ReadinessCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// Readiness computes readiness in the background, every interval, so that
// /readyz costs nothing outside however often it is called, and a slow
// dependency slows the computation, never the answer.
type Readiness struct {
	checks  []ReadinessCheck
	every   time.Duration
	timeout time.Duration
	clock   clock.Clock

	mu       sync.Mutex
	computed bool
	failures map[string]string
	at       time.Time
}

// NewReadiness returns readiness over checks, computed every interval.
// Until the first computation ends, the process is not ready.
func NewReadiness(checks []ReadinessCheck, every time.Duration, clk clock.Clock) *Readiness {
	if clk == nil {
		clk = clock.Real{}
	}
	if every <= 0 {
		every = 15 * time.Second
	}
	// A slow answer is still an answer: the bound is generous, since the
	// computation runs in the background and /readyz never waits for it.
	return &Readiness{checks: checks, every: every, timeout: 30 * time.Second, clock: clk}
}

// Run computes readiness now and then every interval until ctx ends.
func (r *Readiness) Run(ctx context.Context) {
	for {
		r.Compute(ctx)
		select {
		case <-ctx.Done():
			return
		case <-r.clock.After(r.every):
		}
	}
}

// Compute runs every check at once, each bounded by the timeout, and keeps
// the result.
func (r *Readiness) Compute(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	failures := map[string]string{}
	for _, c := range r.checks {
		wg.Go(func() {
			if err := c.Check(ctx); err != nil {
				mu.Lock()
				failures[c.Name] = err.Error()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.mu.Lock()
	r.computed, r.failures, r.at = true, failures, r.clock.Now()
	r.mu.Unlock()
}

// State is the last computed readiness: whether ready, what failed (for
// authenticated callers only: it names merchants and errors), and when.
func (r *Readiness) State() (ready bool, failures map[string]string, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.computed {
		return false, map[string]string{"readiness": "not computed yet"}, time.Time{}
	}
	return len(r.failures) == 0, maps.Clone(r.failures), r.at
}

// readyz answers ready or not ready to anyone; the details (which check,
// which error, when) only to an authenticated caller.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ready, failures, at := true, map[string]string{}, time.Time{}
	if s.o.Ready != nil {
		ready, failures, at = s.o.Ready.State()
	}
	status, word := http.StatusOK, "ready"
	if !ready {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	body := map[string]any{"status": word}
	if r.Header.Get("Authorization") != "" || (r.TLS != nil && len(r.TLS.VerifiedChains) > 0) {
		if _, ref := s.authenticate(r); ref == nil {
			body["failures"] = failures
			if !at.IsZero() {
				body["checked_at"] = at.UTC()
			}
		}
	}
	writeJSON(w, status, body)
}
