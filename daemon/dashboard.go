package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/dashboard"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/inbound"
)

// dashboardBackend is what the dashboard reads: the daemon's inventory, the
// audit file it writes, and each secret's key id and scopes against policy
// (ReportInventory, which reads every secret's value, so kept for a minute
// that polling browsers do not read the whole store each time).
type dashboardBackend struct {
	svc       *Service
	auditFile string

	mu     sync.Mutex
	states []audit.SecretState
	at     time.Time

	// The audit file's records, parsed again only when the file changes.
	recMu   sync.Mutex
	records []audit.Record
	recSize int64
	recMod  time.Time
}

// statesTTL is how long the secrets' read states are shown before a re-read.
const statesTTL = time.Minute

func (s *dashboardBackend) SecretStates(ctx context.Context) ([]audit.SecretState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.svc.Daemon.clock.Now()
	if s.states != nil && now.Sub(s.at) < statesTTL && !now.Before(s.at) {
		return s.states, nil
	}
	st, err := s.svc.ReportInventory(ctx)
	if err != nil {
		return nil, err
	}
	s.states, s.at = st, now
	return st, nil
}

func (s *dashboardBackend) Inventory(ctx context.Context) (httpapi.Inventory, error) {
	return s.svc.Daemon.Inventory(ctx)
}

func (s *dashboardBackend) AuditRecords(context.Context) ([]audit.Record, error) {
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
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("audit.file: %w", err)
	}
	s.recMu.Lock()
	defer s.recMu.Unlock()
	if s.records != nil && fi.Size() == s.recSize && fi.ModTime().Equal(s.recMod) {
		return s.records, nil
	}
	recs, err := audit.ReadRecords(f)
	if err != nil {
		return nil, err
	}
	s.records, s.recSize, s.recMod = recs, fi.Size(), fi.ModTime()
	return recs, nil
}

// buildDashboard makes the read-only /ui/ handler, authenticating as the API does.
func (s *Service) buildDashboard(cfg *config.Config, o BuildOptions, tokens httpapi.TokenMatcher) (*dashboard.Handler, error) {
	return dashboard.New(dashboard.Options{
		Backend: &dashboardBackend{svc: s, auditFile: cfg.Audit.File},
		Tokens:  tokens, ClientCAs: cfg.HTTP.TLS.ClientCAs(), Now: o.Clock.Now, Logger: o.Logger, Events: dashboardRefusals{s.refusals},
	})
}

// dashboardRefusals hands the dashboard's refused credentials to the doors'
// bounded summary (one record per source and reason a minute, every one
// counted), like the API's: a flood of bad tokens on /ui/ costs a few
// records, and no path is kept.
type dashboardRefusals struct{ r *inbound.Refusals }

func (d dashboardRefusals) Emit(ctx context.Context, e events.Event) {
	if e.Step != events.StepAuth || e.Outcome != events.OutcomeRefused {
		return
	}
	d.r.Refuse(ctx, inbound.Refusal{
		Door: events.SourceHTTP, Remote: e.Details["remote"], Code: "dashboard_credential_refused",
		Reason: e.Reason, Status: http.StatusUnauthorized,
	})
}
