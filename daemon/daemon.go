// Package daemon is the long-running service around the rotation engine: it
// keeps the catalog of managed secrets, fires scheduled rotations, takes
// triggers (HTTP, CLI, Slack, LakiConnect security events), resumes what a
// crash left in flight, watches old credentials through their grace, and
// reports on the events seam. It holds no state it needs to resume: that is
// in the store and at LakiConnect.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lakirotator/lakirotator/events"
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
