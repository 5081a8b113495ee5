package daemon

import (
	"context"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/events"
)

// auditRetryEvery is how often a failing audit sink is retried, so that
// freeing disk space recovers the audit with no restart and no new event.
const auditRetryEvery = 5 * time.Second

// wireAudit subscribes the audit writer to the bus and makes it the
// daemon's rotation gate, the "audit" readiness check and the source of
// the audit metrics and of a critical alert when the audit stops.
func (s *Service) wireAudit(o BuildOptions, bus *events.Bus, sinks []audit.Sink) error {
	if len(sinks) == 0 {
		return nil
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

// startAuditLoops retries failing audit sinks until ctx ends.
func (s *Service) startAuditLoops(ctx context.Context, wg *sync.WaitGroup) {
	if s.audit == nil {
		return
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.audit.Run(ctx, auditRetryEvery) }()
}

// AuditWriter is the service's audit writer (nil without audit sinks).
func (s *Service) AuditWriter() *audit.Writer { return s.audit }

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
