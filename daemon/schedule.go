// Scheduled rotations: one plan per policy with secrets, the firing of a
// slot, when a policy rotates next, and the per-pass overdue check.

package daemon

import (
	"context"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/rotator/schedule"
)

// plans makes one schedule per policy that has secrets.
func (d *Daemon) plans() ([]schedule.Plan, error) {
	var plans []schedule.Plan
	for _, name := range d.policies.Names() {
		p, _ := d.policies.Get(name)
		if p.Schedule == nil {
			continue
		}
		plan := schedule.Plan{Name: name, Schedule: p.Schedule}
		if !p.Window.IsZero() {
			plan.Window = policyWindow{p}
		}
		plans = append(plans, plan)
	}
	return plans, nil
}

type policyWindow struct{ p policies.Policy }

func (w policyWindow) Contains(t time.Time) bool       { return w.p.InWindow(t) }
func (w policyWindow) NextStart(t time.Time) time.Time { return w.p.NextWindowStart(t) }

// fireSlot rotates every secret under the plan's policy for the slot.
func (d *Daemon) fireSlot(ctx context.Context, f schedule.Firing) {
	entries := d.catalog.Select(func(e inventory.Entry) bool { return !e.Missing && e.Managed.Policy == f.Plan })
	if len(entries) == 0 {
		return
	}
	slot := f.Slot.Format(time.RFC3339)
	if !d.Holding() {
		d.log.Debug("scheduled rotations due on the lease holder, not here", "policy", f.Plan, "slot", slot)
		return
	}
	d.log.Info("scheduled rotations due", "policy", f.Plan, "slot", slot, "secrets", len(entries))
	trig := rotator.Trigger{Kind: events.CauseScheduled, ID: "slot:" + slot, Source: events.SourceSchedule, Actor: "scheduler", At: f.Slot}
	d.submitAll(entries, trig)
}

// nextRotation is when the policy's secrets rotate next: the running
// scheduler's next firing (an @every schedule counts from when it started),
// else the policy's next slot moved into its rotation window.
func (d *Daemon) nextRotation(policy string, now time.Time) (time.Time, bool) {
	if s := d.sched.Load(); s != nil {
		if t, ok := s.NextFiring(policy); ok {
			return t, true
		}
	}
	p, ok := d.policies.Get(policy)
	if !ok || p.Schedule == nil {
		return time.Time{}, false
	}
	next := p.NextRun(now)
	if !p.Window.IsZero() && !p.InWindow(next) {
		next = p.NextWindowStart(next)
	}
	return next, true
}

// logScheduleCheck writes one line per pass with the count of overdue
// secrets; the deployment's dead-man's-switch alarm reads it (CloudWatch
// cannot alarm over windows as long as a rotation schedule).
func (d *Daemon) logScheduleCheck(ctx context.Context) {
	now := d.clock.Now()
	overdue, inFlight := 0, 0
	for _, e := range d.catalog.All() {
		if e.Missing {
			continue
		}
		cur, hasCur := e.Stored.VersionWithStage(secretstore.StageCurrent)
		if pend, ok := e.Stored.VersionWithStage(secretstore.StagePending); ok && (!hasCur || pend.ID != cur.ID) {
			inFlight++
		}
		p, ok := d.policies.Get(e.Managed.Policy)
		if since, known := e.CurrentSince(); ok && known && p.MaxAge > 0 && now.Sub(since) > p.MaxAge {
			overdue++
		}
	}
	d.log.InfoContext(ctx, "schedule checked", "secrets", len(d.catalog.All()), "overdue", overdue, "in_flight", inFlight)
}
