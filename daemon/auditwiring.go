package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/audit/anchor"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/events"
)

// auditRetryEvery is how often a failing audit sink is retried, so that
// freeing disk space recovers the audit with no restart and no new event.
const auditRetryEvery = 5 * time.Second

// wireAudit subscribes the audit writer to the bus and makes it the
// daemon's rotation gate, the "audit" readiness check and the source of
// the audit metrics and of a critical alert when the audit stops.
func (s *Service) wireAudit(ctx context.Context, cfg *config.Config, o BuildOptions, bus *events.Bus, sinks []audit.Sink) error {
	if len(sinks) == 0 {
		return nil
	}
	if err := s.buildAnchor(ctx, cfg, o); err != nil {
		return err
	}
	am, err := s.Metrics.NewAudit()
	if err != nil {
		return err
	}
	w := audit.NewWriter(o.Clock, o.Logger, sinks...)
	w.Observe(audit.Observer{
		WriteFailed: func(error) { am.WriteFailures.Inc() },
		WritableChanged: func(writable bool, err error) {
			if writable {
				am.Writable.Set(1)
				return
			}
			am.Writable.Set(0)
			// Raised on its own goroutine: the writer is inside a bus
			// delivery, and the alert goes to the same bus (its record
			// is queued with the others).
			go bus.Emit(context.Background(), events.Event{
				Time: o.Clock.Now(), Step: events.StepAlert, Outcome: events.OutcomeWarning, Severity: events.SeverityCritical,
				Reason:  "no audit sink can write: scheduled and manual rotations are paused, compromise rotations run unrecorded until a sink recovers",
				Error:   errString(err),
				Details: map[string]string{"reason": "audit_unwritable"},
			})
		},
	})
	bus.Subscribe(w)
	s.audit = w
	s.Daemon.SetAuditGate(w)
	return nil
}

// buildAnchor sets up shipping to the audit bucket with signed digests;
// the last digest is written when the service closes, after the last record.
func (s *Service) buildAnchor(ctx context.Context, cfg *config.Config, o BuildOptions) error {
	a := cfg.Audit.Anchor
	if a == nil {
		return nil
	}
	s3c, kmsc, err := anchor.NewClients(ctx, anchor.AWSConfig{Region: a.Region, Endpoint: a.Endpoint, Credentials: o.AWSCredentials})
	if err != nil {
		return fmt.Errorf("audit.anchor: %w", err)
	}
	sh := &anchor.Shipper{
		File: cfg.Audit.File, Bucket: anchor.S3Bucket{Client: s3c, Name: a.Bucket}, Prefix: anchor.NormalizePrefix(a.Prefix),
		Signer: anchor.KMSSigner{Client: kmsc, Key: a.KMSKeyID}, Interval: a.Interval.Std(), Clock: o.Clock, Logger: o.Logger,
	}
	s.anchor = sh
	s.closers = append(s.closers, func(ctx context.Context) error {
		if !s.anchorRunning.Load() {
			return nil // never started (a failed build, a one-shot command): the next daemon ships the records
		}
		if err := sh.Tick(ctx); err != nil {
			return fmt.Errorf("audit.anchor: the shutdown digest was not written: %w", err)
		}
		return nil
	})
	return nil
}

// startAuditLoops retries failing audit sinks and writes digests until ctx ends.
func (s *Service) startAuditLoops(ctx context.Context, wg *sync.WaitGroup) {
	if s.audit != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.audit.Run(ctx, auditRetryEvery) }()
	}
	if s.anchor != nil {
		s.anchorRunning.Store(true)
		wg.Add(1)
		go func() { defer wg.Done(); s.anchor.Run(ctx) }()
	}
}

// AuditWriter is the service's audit writer (nil without audit sinks).
func (s *Service) AuditWriter() *audit.Writer { return s.audit }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
