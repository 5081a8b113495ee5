// From catalog entries to engine jobs and back: queueing under a trigger,
// running each environment's batch, recording what rotated in the catalog.

package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// submitAll queues rotations in the background, logging what could not be
// queued. With a lease, scheduled work runs only on the holder, under its
// holding: losing the lease stops what has not started.
func (d *Daemon) submitAll(entries []inventory.Entry, trig rotator.Trigger) {
	run := d.goBackground
	if scheduledCause(trig) && d.lead != nil {
		hctx, ok := d.asHolder(context.Background(), "scheduled rotations "+trig.ID)
		if !ok {
			return
		}
		run = func(f func(ctx context.Context)) { d.goBackground(func(context.Context) { f(hctx) }) }
	}
	var jobs []rotator.Job
	for _, e := range entries {
		job, err := d.jobFor(e, trig)
		if err != nil {
			d.log.Error("rotation not queued", "secret", e.Managed.Name, "err", err)
			continue
		}
		jobs = append(jobs, job)
	}
	if len(jobs) > 0 {
		run(func(ctx context.Context) { d.runJobs(ctx, jobs, nil) })
	}
}

// jobFor builds the engine job for an entry under a trigger.
func (d *Daemon) jobFor(e inventory.Entry, trig rotator.Trigger) (rotator.Job, error) {
	p, ok := d.policies.ForEnvironment(e.Managed.Policy, e.Managed.Environment)
	if !ok {
		return rotator.Job{}, fmt.Errorf("secret %q: policy %q is not defined", e.Managed.Name, e.Managed.Policy)
	}
	if !p.AllowsEnvironment(e.Managed.Environment) {
		return rotator.Job{}, fmt.Errorf("secret %q: policy %q does not allow environment %s", e.Managed.Name, p.Name, e.Managed.Environment)
	}
	if _, ok := d.envs[e.Managed.Environment]; !ok {
		return rotator.Job{}, fmt.Errorf("secret %q: environment %s is not configured", e.Managed.Name, e.Managed.Environment)
	}
	known := e.Stored
	return rotator.Job{Secret: e.Managed, Policy: RotationPolicy(p), Trigger: trig, Known: &known}, nil
}

// RotationPolicy maps a policy onto what the engine needs: the engine never
// asks LakiConnect for more scopes than the policy allows.
func RotationPolicy(p policies.Policy) rotator.RotationPolicy {
	return rotator.RotationPolicy{
		Scopes: append([]laki.Scope(nil), p.Scopes...),
		Grace: map[events.Cause]time.Duration{
			events.CauseScheduled:  p.GraceFor(events.CauseScheduled),
			events.CauseManual:     p.GraceFor(events.CauseManual),
			events.CausePersonnel:  p.GraceFor(events.CausePersonnel),
			events.CauseCompromise: p.GraceFor(events.CauseCompromise),
		},
		DefaultGrace:            p.GraceFor(events.CauseScheduled),
		RevokeFirstOnCompromise: p.RevokeFirstOnCompromise,
		ExpiresAfter:            p.HardExpiry.ExpiresAfter,
		LastUsedWarning:         p.Alerts.LastUsedWarning,
		LastUsedWarningFraction: p.Alerts.LastUsedWarningFraction,
	}
}

// runJobsNow submits jobs to their environment's engine and waits for them,
// keeping the catalog's view of each secret current without another listing.
func (d *Daemon) runJobsNow(ctx context.Context, jobs []rotator.Job, each func(rotator.JobOutcome)) {
	byEnv := map[laki.Environment][]rotator.Job{}
	for _, j := range jobs {
		byEnv[j.Secret.Environment] = append(byEnv[j.Secret.Environment], j)
	}
	// One outcome channel per environment's batch and one goroutine per
	// environment, not one per job: a slot may hold ten thousand secrets.
	merged := make(chan rotator.JobOutcome, len(jobs))
	var fan sync.WaitGroup
	for env, js := range byEnv {
		out := d.envs[env].Engine.SubmitAll(ctx, js)
		fan.Add(1)
		go func(n int) {
			defer fan.Done()
			for range n {
				merged <- <-out
			}
		}(len(js))
	}
	for range jobs {
		o := <-merged
		if o.Err == nil {
			d.recordRotation(o)
		} else {
			d.log.Error("rotation failed", "secret", o.Job.Secret.Name, "err", o.Err)
		}
		if each != nil {
			each(o)
		}
	}
	fan.Wait()
}

// recordRotation updates the catalog after a successful rotation: the new
// version holds AWSCURRENT (and AWSPENDING, which stays until the next
// rotation moves it), the old one AWSPREVIOUS.
func (d *Daemon) recordRotation(o rotator.JobOutcome) {
	r := o.Result
	if r.VersionID == "" {
		return
	}
	e, ok := d.catalog.Get(o.Job.Secret.Name)
	if !ok {
		return
	}
	s := e.Stored
	now := d.clock.Now()
	versions := []secretstore.VersionInfo{{ID: r.VersionID, Stages: []string{secretstore.StageCurrent, secretstore.StagePending}, CreatedAt: now}}
	for _, v := range s.Versions {
		switch {
		case v.ID == r.VersionID:
			versions[0].CreatedAt = v.CreatedAt
		case v.ID == r.PreviousVersionID:
			versions = append(versions, secretstore.VersionInfo{ID: v.ID, Stages: []string{secretstore.StagePrevious}, CreatedAt: v.CreatedAt})
		}
	}
	s.Versions = versions
	s.LastChangedAt = now
	d.catalog.Update(o.Job.Secret.Name, s)
}
