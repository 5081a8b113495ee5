// Package daemon is the long-running service around the rotation engine: it
// keeps the catalog of managed secrets, fires scheduled rotations, takes
// triggers (HTTP, CLI, Slack, LakiConnect security events), resumes what a
// crash left in flight, watches old credentials through their grace, and
// reports on the events seam. It holds no state it needs to resume: that is
// in the store and at LakiConnect.
//
// daemon.go is long on purpose: it holds the Daemon type and its run passes
// (schedule, retire, inventory), which share the catalog and the job queue;
// wiring, start-up, triggers, security events and observation live in their
// own files.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/rotator/schedule"
)

// Env is one environment's store and engine (sandbox and production usually
// live in separate AWS accounts, so each has its own).
type Env struct {
	Name   laki.Environment
	Store  secretstore.Store
	Engine *rotator.Engine
	// Issuers reaches LakiConnect with the management key of a merchant.
	Issuers rotator.IssuerSource
}

// PolicySource finds a policy by name.
type PolicySource interface {
	Get(name string) (policies.Policy, bool)
	// ForEnvironment is the policy as it applies in one environment: a
	// management key's scopes narrowed to what rotation needs there.
	ForEnvironment(name string, env laki.Environment) (policies.Policy, bool)
	Names() []string
}

// Parts are the daemon's collaborators, built from the config file (or the demo).
type Parts struct {
	Clock    clock.Clock
	Logger   *slog.Logger
	Envs     map[laki.Environment]*Env
	Catalog  *inventory.Catalog
	Policies PolicySource
	Bus      *events.Bus
	// RetireInterval is how often old credentials in grace are checked (default 5m).
	RetireInterval time.Duration
	// RefreshInterval is how often the catalog is re-listed (default 10m).
	RefreshInterval time.Duration
	// EscalateAfter: an emergency rotation (or a security event's action)
	// still not done this long after it was asked for raises a critical
	// alert, again at twice, four times... (default 5m).
	EscalateAfter time.Duration
	// Lease, when set, is shared with other replicas: only its holder
	// starts scheduled work.
	Lease Leadership
}

// Daemon runs the service. Build one with New, then Run it.
type Daemon struct {
	clock                     clock.Clock
	log                       *slog.Logger
	envs                      map[laki.Environment]*Env
	catalog                   *inventory.Catalog
	policies                  PolicySource
	bus                       *events.Bus
	triggers                  *triggerBook
	retireEvery, refreshEvery time.Duration
	facts                     credentialFacts                    // what stored versions say, by version id
	oldCreds                  oldCredentials                     // the last retire pass's view of old credentials in grace
	sched                     atomic.Pointer[schedule.Scheduler] // set while Run runs: status shows its next firings
	audit                     auditGate                          // rotations wait while the audit cannot be written

	escalateAfter time.Duration
	lead          Leadership // nil: this daemon runs everything
	leading       leadState

	mu        sync.Mutex
	jobCtx    context.Context // outlives Run's ctx: rotations in hand finish on shutdown
	wg        sync.WaitGroup
	quit      chan struct{} // closed on shutdown: emergency retries stop waiting
	quitOnce  sync.Once
	escalated map[string]int // alerts raised per emergency and secret
	// retired names the previous versions whose end this process has
	// confirmed, so that the retire pass reports each end once (a restart
	// may confirm one once more).
	retired map[string]bool
	lookups map[string]keyLookup // security event id → the secret holding its key, found before the 2xx
	// instance names this process in the intents it keeps (replicas follow
	// the one that kept an ask last).
	instance string
}

// New checks the parts.
func New(p Parts) (*Daemon, error) {
	if p.Catalog == nil || p.Policies == nil || len(p.Envs) == 0 {
		return nil, errors.New("daemon: catalog, policies and at least one environment are required")
	}
	if p.Clock == nil {
		p.Clock = clock.Real{}
	}
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Bus == nil {
		p.Bus = &events.Bus{}
	}
	if p.RetireInterval <= 0 {
		p.RetireInterval = 5 * time.Minute
	}
	if p.RefreshInterval <= 0 {
		p.RefreshInterval = 10 * time.Minute
	}
	if p.EscalateAfter <= 0 {
		p.EscalateAfter = DefaultEscalateAfter
	}
	return &Daemon{
		clock: p.Clock, log: p.Logger, envs: p.Envs, catalog: p.Catalog, policies: p.Policies, bus: p.Bus,
		triggers: newTriggerBook(1000), retireEvery: p.RetireInterval, refreshEvery: p.RefreshInterval,
		jobCtx: context.Background(), escalateAfter: p.EscalateAfter,
		quit: make(chan struct{}), escalated: map[string]int{}, retired: map[string]bool{}, lookups: map[string]keyLookup{}, instance: newInstanceID(),
		audit: auditGate{stop: make(chan struct{})}, lead: p.Lease,
	}, nil
}

// Events is the bus every part reports on; subscribe notifications, audit and metrics to it.
func (d *Daemon) Events() *events.Bus { return d.bus }

// Catalog is the daemon's view of the managed secrets.
func (d *Daemon) Catalog() *inventory.Catalog { return d.catalog }

func (d *Daemon) goBackground(f func(ctx context.Context)) {
	d.mu.Lock()
	ctx := d.jobCtx
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		f(ctx)
	}()
}

// Run loads the catalog, resumes and catches up, then schedules until ctx
// ends. On return, rotations in hand have finished and nothing new started.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.catalog.Refresh(ctx, d.clock.Now()); err != nil {
		return fmt.Errorf("loading the managed secrets: %w", err)
	}
	for _, p := range d.catalog.Problems() {
		d.log.Warn("managed secret skipped", "problem", p.Error())
	}
	d.log.Info("managed secrets loaded", "count", len(d.catalog.All()))
	d.StartupPass(ctx)
	// A scheduled rotation killed between its promote and the end of the old
	// credential leaves that credential active with no end: the retire pass
	// schedules it (the scheduled grace) at once rather than in RetireInterval.
	d.RetirePass(ctx)
	// The listing's garbage is the bulk of what start-up allocated; an
	// idle daemon gives it back rather than holding it until the next GC.
	debug.FreeOSMemory()

	plans, err := d.plans()
	if err != nil {
		return err
	}
	var loops sync.WaitGroup
	loop := func(f func()) {
		loops.Add(1)
		go func() { defer loops.Done(); f() }()
	}
	sched := &schedule.Scheduler{Clock: d.clock, Plans: plans, Fire: d.fireSlot}
	d.sched.Store(sched)
	defer d.sched.Store(nil)
	loop(func() { sched.Run(ctx) })
	// The lease outlives ctx: a holder keeps it while it finishes the
	// rotations in hand, and releases it after.
	leaseCtx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
	var leaseDone sync.WaitGroup
	if d.lead != nil {
		leaseDone.Go(func() { d.runLease(leaseCtx) })
	}
	defer func() { stopLease(); leaseDone.Wait() }()
	loop(func() {
		d.every(ctx, d.retireEvery, func(ctx context.Context) {
			if hctx, ok := d.asHolder(ctx, "retire pass"); ok {
				d.RetirePass(hctx)
			}
			d.logScheduleCheck(ctx)
		})
	})
	loop(func() {
		d.every(ctx, d.refreshEvery, func(ctx context.Context) {
			if err := d.catalog.Refresh(ctx, d.clock.Now()); err != nil {
				d.log.Error("catalog refresh failed; keeping the last one", "err", err)
			}
			debug.FreeOSMemory()
		})
	})
	<-ctx.Done()
	d.stopPausedRotations()
	loops.Wait()
	d.log.Info("shutting down: finishing the rotations in hand, starting nothing new")
	d.quitOnce.Do(func() { close(d.quit) })
	for _, env := range d.envs {
		env.Engine.Close()
	}
	d.wg.Wait()
	return nil
}

func (d *Daemon) every(ctx context.Context, interval time.Duration, f func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.clock.After(interval):
			f(ctx)
		}
	}
}

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
	cause := rotator.Trigger{Kind: events.CauseScheduled, ID: "slot:" + slot, Source: events.SourceSchedule, Actor: "scheduler", At: f.Slot}
	d.submitAll(entries, cause)
}

// submitAll queues rotations in the background, logging what could not be
// queued. With a lease, scheduled work runs only on the holder, under its
// holding: losing the lease stops what has not started.
func (d *Daemon) submitAll(entries []inventory.Entry, cause rotator.Trigger) {
	run := d.goBackground
	if scheduledCause(cause) && d.lead != nil {
		hctx, ok := d.asHolder(context.Background(), "scheduled rotations "+cause.ID)
		if !ok {
			return
		}
		run = func(f func(ctx context.Context)) { d.goBackground(func(context.Context) { f(hctx) }) }
	}
	var jobs []rotator.Job
	for _, e := range entries {
		job, err := d.jobFor(e, cause)
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

// jobFor builds the engine job for an entry under a cause.
func (d *Daemon) jobFor(e inventory.Entry, cause rotator.Trigger) (rotator.Job, error) {
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
	return rotator.Job{Secret: e.Managed, Policy: RotationPolicy(p), Trigger: cause, Known: &known}, nil
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

// RetirePass checks every old credential that may still be in its grace.
func (d *Daemon) RetirePass(ctx context.Context) {
	now := d.clock.Now()
	for _, e := range d.catalog.All() {
		if e.Missing {
			continue
		}
		if _, ok := e.Stored.VersionWithStage(secretstore.StagePrevious); !ok {
			continue
		}
		// Old credentials end at most 7 days after promotion; past that and
		// a day's margin they were confirmed ended by an earlier pass.
		if since, ok := e.CurrentSince(); ok && now.Sub(since) > laki.MaxExpireDelay+24*time.Hour {
			continue
		}
		p, ok := d.policies.Get(e.Managed.Policy)
		if !ok {
			continue
		}
		env := d.envs[e.Managed.Environment]
		if env == nil {
			continue
		}
		if _, open := openIntent(e, now); open {
			continue // its trigger ends the old credential, with its own grace
		}
		prev, _ := e.Stored.VersionWithStage(secretstore.StagePrevious)
		if d.retiredBefore(e.Managed.Name, prev.ID) {
			continue // its end was confirmed already: say it once
		}
		known := e.Stored
		res, err := env.Engine.Retire(ctx, e.Managed, RotationPolicy(p), &known)
		if err != nil {
			d.log.Error("retire check failed", "secret", e.Managed.Name, "err", err)
			continue
		}
		d.oldCreds.record(e.Managed.Name, prev.ID, res, httpapi.OldCredential{CheckedAt: now.UTC()})
		if res.State == rotator.RetireEnded || res.State == rotator.RetireNone {
			d.markRetired(e.Managed.Name, prev.ID)
		}
		if res.State != rotator.RetireNone && res.State != rotator.RetireInGrace {
			d.log.Info("old credential retired", "secret", e.Managed.Name, "key_id", res.KeyID, "state", res.State)
		}
	}
}

// Inventory implements httpapi.Controller: ids, ages, stages, next rotation; never values.
func (d *Daemon) Inventory(context.Context) (httpapi.Inventory, error) {
	now := d.clock.Now()
	inv := httpapi.Inventory{Secrets: []httpapi.SecretStatus{}}
	for _, e := range d.catalog.All() {
		st := httpapi.SecretStatus{
			Name: e.Managed.Name, Kind: string(e.Managed.Kind), Environment: string(e.Managed.Environment),
			MasterMerchantID: e.Managed.MasterMerchantID, Policy: e.Managed.Policy, Owners: e.Managed.Owners,
		}
		cur, hasCur := e.Stored.VersionWithStage(secretstore.StageCurrent)
		if hasCur {
			st.CurrentVersion = cur.ID
			if since, ok := e.CurrentSince(); ok {
				st.CurrentSince = &since
				st.AgeSeconds = int64(now.Sub(since).Seconds())
			}
		}
		if pend, ok := e.Stored.VersionWithStage(secretstore.StagePending); ok && (!hasCur || pend.ID != cur.ID) {
			st.PendingVersion = pend.ID
		}
		if prev, ok := e.Stored.VersionWithStage(secretstore.StagePrevious); ok {
			st.PreviousVersion = prev.ID
			st.OldCredential, _ = d.oldCreds.of(e.Managed.Name, prev.ID)
		}
		if next, ok := d.nextRotation(e.Managed.Policy, now); ok {
			st.NextRotation = &next
		}
		if n, err := strconv.Atoi(e.Stored.Tags[rotator.TagFailedAttempts]); err == nil {
			st.Failures = n
			st.LastFailure = e.Stored.Tags[rotator.TagLastFailure]
		}
		inv.Secrets = append(inv.Secrets, st)
	}
	return inv, nil
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

func (d *Daemon) retiredBefore(secretName, versionID string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.retired[secretName+"\x00"+versionID]
}

func (d *Daemon) markRetired(secretName, versionID string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.retired[secretName+"\x00"+versionID] = true
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
