package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/rotator"
)

// AuditGate is the audit trail as the daemon sees it: fail closed (as Vault
// does) while no audit sink can write.
type AuditGate interface {
	Writable() bool
	// WaitWritable returns once the audit is writable again, or ctx's error.
	WaitWritable(ctx context.Context) error
}

// ErrAuditPaused is a rotation's error when it was never started because
// the audit could not be written until the daemon stopped.
var ErrAuditPaused = errors.New("not started: the audit trail cannot be written (rotations other than compromise are paused)")

// auditGate holds the daemon's gate and the signal that ends paused waits
// on shutdown.
type auditGate struct {
	gate     AuditGate
	stop     chan struct{}
	stopOnce sync.Once

	mu      sync.Mutex
	waiting map[string]bool // secrets with a scheduled rotation paused
}

// holdScheduled keeps one paused scheduled rotation per secret: slots that
// fire during a long outage do not pile up into back-to-back rotations
// when the audit recovers. It returns the jobs to keep and a release func.
func (g *auditGate) holdScheduled(jobs []rotator.Job) (keep, dropped []rotator.Job, release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting == nil {
		g.waiting = map[string]bool{}
	}
	var held []string
	for _, j := range jobs {
		if j.Trigger.Kind != events.CauseScheduled {
			keep = append(keep, j)
			continue
		}
		if g.waiting[j.Secret.Name] {
			dropped = append(dropped, j)
			continue
		}
		g.waiting[j.Secret.Name] = true
		held = append(held, j.Secret.Name)
		keep = append(keep, j)
	}
	var once sync.Once
	return keep, dropped, func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			for _, n := range held {
				delete(g.waiting, n)
			}
		})
	}
}

// SetAuditGate makes rotations wait for the audit: without one, nothing
// is gated (no audit configured).
func (d *Daemon) SetAuditGate(g AuditGate) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.audit.gate = g
}

// stopPausedRotations ends the waits of paused rotations: they report
// ErrAuditPaused rather than hold shutdown.
func (d *Daemon) stopPausedRotations() {
	d.audit.stopOnce.Do(func() { close(d.audit.stop) })
}

// runJobs runs jobs through the audit gate. While the audit cannot be written,
// compromise rotations run at once (ending an exposed key outweighs the
// record; their records are queued and written when a sink recovers), each
// with a critical alert, and the other jobs wait until the audit is
// writable, or report ErrAuditPaused if the daemon stops first.
func (d *Daemon) runJobs(ctx context.Context, jobs []rotator.Job, each func(rotator.JobOutcome)) {
	d.mu.Lock()
	g := d.audit.gate
	d.mu.Unlock()
	if g == nil || g.Writable() {
		d.runJobsNow(ctx, jobs, each)
		return
	}
	var urgent, paused []rotator.Job
	for _, j := range jobs {
		if j.Trigger.Kind == events.CauseCompromise {
			urgent = append(urgent, j)
		} else {
			paused = append(paused, j)
		}
	}
	var wg sync.WaitGroup
	if len(urgent) > 0 {
		for _, j := range urgent {
			d.bus.Emit(ctx, events.Event{
				Time: d.clock.Now(), Step: events.StepAlert, Outcome: events.OutcomeWarning, Severity: events.SeverityCritical,
				Secret: j.Secret.Name, Environment: string(j.Secret.Environment), Cause: j.Trigger.Kind, Source: j.Trigger.Source,
				Actor: j.Trigger.Actor, TriggerID: j.Trigger.ID,
				Reason:  "compromise rotation runs while the audit trail cannot be written; its records are queued and written when an audit sink recovers",
				Details: map[string]string{"reason": "audit_unavailable"},
			})
		}
		wg.Go(func() { d.runJobsNow(ctx, urgent, each) })
	}
	defer wg.Wait()
	if len(paused) == 0 {
		return
	}
	paused, dropped, release := d.audit.holdScheduled(paused)
	defer release()
	for _, j := range dropped {
		o := rotator.JobOutcome{Job: j, Err: fmt.Errorf("secret %q: %w; an earlier scheduled rotation is already waiting", j.Secret.Name, ErrAuditPaused)}
		d.log.Warn("scheduled rotation dropped", "secret", j.Secret.Name, "err", o.Err)
		if each != nil {
			each(o)
		}
	}
	if len(paused) == 0 {
		return
	}
	d.bus.Emit(ctx, events.Event{
		Time: d.clock.Now(), Step: events.StepAudit, Outcome: events.OutcomeWarning, Severity: events.SeverityWarning,
		Cause: paused[0].Trigger.Kind, Source: paused[0].Trigger.Source, TriggerID: paused[0].Trigger.ID,
		Reason:  "rotations paused until the audit trail can be written",
		Details: map[string]string{"reason": "rotations_paused", "secrets": strconv.Itoa(len(paused))},
	})
	d.log.Warn("rotations paused: the audit trail cannot be written", "secrets", len(paused), "cause", paused[0].Trigger.Kind)
	wait, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-d.audit.stop:
			cancel()
		case <-wait.Done():
		}
	}()
	if err := g.WaitWritable(wait); err != nil {
		for _, j := range paused {
			o := rotator.JobOutcome{Job: j, Err: fmt.Errorf("secret %q: %w", j.Secret.Name, ErrAuditPaused)}
			d.log.Error("rotation not started", "secret", j.Secret.Name, "err", o.Err)
			if each != nil {
				each(o)
			}
		}
		return
	}
	d.log.Info("audit writable again: paused rotations start", "secrets", len(paused))
	release() // before the gate is checked again: these are no longer waiting
	d.runJobs(ctx, paused, each)
}
