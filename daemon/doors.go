package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// The daemon is the API's controller: its one trigger path and the inventory.
var _ httpapi.Controller = (*Daemon)(nil)

// signingSecretsTTL is how long the security webhook's signing secrets are
// held before they are read again; a rotation of that secret drops them at once.
const signingSecretsTTL = 5 * time.Minute

// recentCalls remembers, per environment, when this process last had an
// answer from LakiConnect that shows it can work there (any status below
// 500 except 401/403: the host answers and the key is accepted). Readiness
// reads it instead of calling LakiConnect again.
type recentCalls struct {
	clock clock.Clock
	mu    sync.Mutex
	ok    map[laki.Environment]time.Time
}

func newRecentCalls(c clock.Clock) *recentCalls {
	return &recentCalls{clock: c, ok: map[laki.Environment]time.Time{}}
}

func (r *recentCalls) observe(env laki.Environment, status int, err error) {
	if err != nil && status == 0 || status >= 500 || status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests {
		return
	}
	r.mu.Lock()
	r.ok[env] = r.clock.Now()
	r.mu.Unlock()
}

// since reports whether env answered well at or after t.
func (r *recentCalls) since(env laki.Environment, t time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	last, ok := r.ok[env]
	return ok && !last.Before(t)
}

// readiness is what /readyz computes every interval: each environment's
// store answers a one-page list, and LakiConnect has answered this
// process's own calls within the interval, or else answers one /whoami per
// master merchant. So readiness costs at most one LakiConnect call per
// merchant per interval, whatever the number of /readyz calls, and a
// process busy rotating is ready without probing.
func (s *Service) readiness(cfg *config.Config, merchants *lakiconnect.Merchants, calls *recentCalls, every time.Duration) []httpapi.ReadinessCheck {
	var checks []httpapi.ReadinessCheck
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		store := s.Envs[env].Store
		checks = append(checks, httpapi.ReadinessCheck{Name: "store:" + string(env), Check: func(ctx context.Context) error {
			stop := errors.New("enough")
			err := store.List(ctx, []secretstore.TagFilter{{Key: inventory.TagManaged}}, func(secretstore.Secret) error { return stop })
			if errors.Is(err, stop) {
				return nil
			}
			return err
		}})
		for _, m := range ec.LakiConnect.MasterMerchants {
			checks = append(checks, httpapi.ReadinessCheck{Name: "lakiconnect:" + string(env) + ":" + m.ID, Check: func(ctx context.Context) error {
				if calls.since(env, calls.clock.Now().Add(-every)) {
					return nil
				}
				c, err := merchants.Client(env, m.ID)
				if err != nil {
					return err
				}
				_, err = c.WhoAmI(ctx)
				return err
			}})
		}
	}
	if s.audit != nil {
		checks = append(checks, httpapi.ReadinessCheck{Name: "audit", Check: s.audit.Check})
	}
	return checks
}

// serveMetrics serves /metrics on its own listener until ctx ends, when
// http.metrics.listen asks for one.
func (s *Service) serveMetrics(ctx context.Context) (<-chan struct{}, error) {
	done := make(chan struct{})
	if s.metricsHandler == nil {
		close(done)
		return done, nil
	}
	ln, err := net.Listen("tcp", s.cfg.HTTP.Metrics.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.metrics.listen: %w", err)
	}
	srv := &http.Server{Handler: s.metricsHandler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdown); err != nil {
			s.log.Warn("metrics listener shutdown cut short", "err", err)
		}
	}()
	return done, nil
}

// clientCerts maps http.tls.clients to the API's allow-list.
func clientCerts(cs []config.ClientCertConfig) []httpapi.ClientCert {
	out := make([]httpapi.ClientCert, 0, len(cs))
	for _, c := range cs {
		out = append(out, httpapi.ClientCert{Name: c.Name, CommonName: c.CommonName, SAN: c.SAN})
	}
	return out
}
