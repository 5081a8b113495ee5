package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/dashboard"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/policies"
)

// dashboardSource is what the dashboard reads: the daemon's inventory, the
// audit file it writes, and the loaded policies.
type dashboardSource struct {
	d         *Daemon
	auditFile string
	pols      *policies.Set
}

func (s dashboardSource) Inventory(ctx context.Context) (httpapi.Inventory, error) {
	return s.d.Inventory(ctx)
}

func (s dashboardSource) AuditRecords(context.Context) ([]audit.Record, error) {
	if s.auditFile == "" {
		return nil, nil
	}
	f, err := os.Open(s.auditFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audit.file: %w", err)
	}
	defer f.Close()
	return audit.ReadRecords(f)
}

func (s dashboardSource) PolicyMaxAge(name string) (time.Duration, bool) {
	p, ok := s.pols.Get(name)
	if !ok {
		return 0, false
	}
	return p.MaxAge, true
}

// buildDashboard makes the read-only /ui/ handler, authenticating as the API does.
func (s *Service) buildDashboard(cfg *config.Config, o BuildOptions, tokens httpapi.TokenMatcher) (*dashboard.Handler, error) {
	return dashboard.New(dashboard.Options{
		Source: dashboardSource{d: s.Daemon, auditFile: cfg.Audit.File, pols: s.Policies},
		Tokens: tokens, ClientCAs: cfg.HTTP.TLS.ClientCAs(), Now: o.Clock.Now, Logger: o.Logger,
	})
}
