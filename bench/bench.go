// Package bench measures the rotator at scale: it seeds N managed secrets in
// a Secrets Manager endpoint (moto) and the LakiConnect simulator, discovers
// them by tags, rotates them all on the engine with the store's rate limits
// set to AWS's quotas, and reports throughput against the quota bound, calls
// per rotation, latency, emergency response under load and memory.
//
// AWS caps Secrets Manager writes (PutSecretValue, UpdateSecretVersionStage,
// TagResource together) at 50 per second per region; a rotation needs two
// writes, so 25 rotations per second is the ceiling the figures are held to.
//
// bench.go is the in-process run (one engine, one account), read top to
// bottom; fleet.go is the run of real `serve` replicas across accounts.
// Settings and meters live in config.go and meters.go, the figures'
// arithmetic in figures.go, the emergencies in emergency.go.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretsmanager/awsfault"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// Run seeds, discovers and rotates, and returns the figures.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rep := &Report{Date: time.Now().UTC(), N: cfg.N, Quota: cfg.Quota, StandIn: cfg.StandIn, Workers: cfg.Workers,
		CPUs: runtime.NumCPU(), WriteQuota: cfg.WriteQuota, QuotaBoundPerSec: cfg.WriteQuota / WritesPerRotation}
	runID := newRunID()

	// LakiConnect: the simulator with its per-key rate limit on (100/s).
	var sim simulator
	simPID := 0
	if cfg.SimulatorExecutable != "" {
		sp, err := startSeparateProcess(cfg.SimulatorExecutable)
		if err != nil {
			return nil, err
		}
		sim, simPID = sp, sp.PID()
	} else {
		sim = newInProcess()
	}
	defer sim.Close()
	baseURL := sim.BaseURL() + "/sandbox/v1"
	lakiCalls := newRouteCounter()
	// The clients need a default key; every call goes with a merchant's
	// management key (WithAPIKey), so this merchant holds no secrets.
	bootstrapMerchant, err := sim.AddMasterMerchant(ctx)
	if err != nil {
		return nil, err
	}
	bootstrap, err := sim.CreateKey(ctx, laki.Sandbox, bootstrapMerchant, "bench bootstrap", laki.AllScopes)
	if err != nil {
		return nil, err
	}
	seedClient, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: baseURL, APIKey: bootstrap.Secret, MaxRetries: 4})
	if err != nil {
		return nil, err
	}
	// The engine's client keeps each management key under LakiConnect's
	// 100 requests per second, as serve's does.
	engClient, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: baseURL, APIKey: bootstrap.Secret, MaxRetries: 4,
		OnRequest: lakiCalls.observe, RateLimit: 80, RateBurst: 10})
	if err != nil {
		return nil, err
	}

	// Secrets Manager: a plain client to seed, the store under test with
	// call accounting (and the stand-in when asked).
	creds := credentials.NewStaticCredentialsProvider("testing", "testing", "")
	const region = "us-east-1"
	// moto answers 500 now and then under load: the seeding client retries more.
	seedSM := sm.New(sm.Options{Region: region, BaseEndpoint: aws.String(cfg.Endpoint), Credentials: creds, RetryMaxAttempts: 10})
	timing := newOpTiming()
	counter := secretsmanager.NewCallCounter(secretsmanager.CallCounterOptions{Strict: true, Observe: timing.observe})
	opts := []secretsmanager.Option{secretsmanager.WithCallCounter(counter)}
	var fault *awsfault.Injector
	if cfg.StandIn {
		fault = awsfault.New(awsfault.Config{WriteRate: cfg.WriteQuota, ReadRate: secretsmanager.DefaultReadRate})
		opts = append(opts, secretsmanager.WithAPIOptions(fault.APIOption()))
	}
	limits := secretsmanager.Limits{ReadRate: secretsmanager.DefaultReadRate, WriteRate: clientWriteShare * cfg.WriteQuota, WriteBurst: 5}
	if cfg.Quota == QuotaOff {
		limits = secretsmanager.Limits{ReadRate: 1e6, WriteRate: 1e6}
	}
	store, err := secretsmanager.New(ctx, secretsmanager.Config{Region: region, Endpoint: cfg.Endpoint, Credentials: creds, Limits: limits}, opts...)
	if err != nil {
		return nil, err
	}

	// Seed.
	t0 := time.Now()
	cfg.Progress("seeding %d secrets", cfg.N)
	sd, err := seed(ctx, sim, seedClient, seedSM, runID, seedPlan{env: laki.Sandbox, n: cfg.N, owners: cfg.OwnerSecrets})
	if err != nil {
		return nil, err
	}
	if cfg.seeded != nil {
		cfg.seeded(bootstrap.Secret)
		for _, v := range sd.issued {
			cfg.seeded(v)
		}
	}
	rep.SeedSeconds = time.Since(t0).Seconds()
	rep.Merchants = len(sd.keys)
	rep.APIKeys = len(sd.apiKeyIDs)
	rep.Webhooks = cfg.N - rep.APIKeys

	// Discover by tags: one paginated listing, no describe per secret.
	before := counter.Calls("ListSecrets")
	t0 = time.Now()
	cat := &inventory.Catalog{
		Stores:   map[laki.Environment]inventory.Lister{laki.Sandbox: store},
		Discover: true,
		Filters:  []secretstore.TagFilter{{Key: runTag, Values: []string{runID}}},
	}
	if err := cat.Refresh(ctx, time.Now()); err != nil {
		return nil, err
	}
	rep.DiscoverySeconds = time.Since(t0).Seconds()
	rep.DiscoveryPages = counter.Calls("ListSecrets") - before
	entries := cat.All()
	rep.Discovered = len(entries)
	if len(entries) != cfg.N {
		return nil, fmt.Errorf("bench: discovery found %d managed secrets, seeded %d (problems: %s)", len(entries), cfg.N, cat.ProblemSummary())
	}
	cfg.Progress("seeded in %.1fs", rep.SeedSeconds)
	cfg.Progress("discovered %d secrets in %.1fs (%d list pages)", len(entries), rep.DiscoverySeconds, rep.DiscoveryPages)

	// The engine, as serve builds it.
	durations := &durationSink{}
	src, err := newIssuerSource(engClient, sd.keys)
	if err != nil {
		return nil, err
	}
	eng, err := rotator.New(rotator.Config{
		Store: store, Issuers: src, Verifier: webhooksig.Verifier{Clock: clock.Real{}},
		Clock: clock.Real{}, Events: durations, Logger: slog.New(slog.DiscardHandler),
		Workers: cfg.Workers, Attempts: 5, Backoff: rotator.Backoff{Base: 500 * time.Millisecond, Max: 5 * time.Second},
	})
	if err != nil {
		return nil, err
	}
	defer eng.Close()

	pol := rotator.RotationPolicy{
		Scopes: benchScopes, DefaultGrace: 24 * time.Hour,
		Grace:                   map[events.Cause]time.Duration{events.CausePersonnel: time.Hour, events.CauseCompromise: 0},
		RevokeFirstOnCompromise: true,
	}
	policyOf := func(inventory.ManagedSecret) rotator.RotationPolicy { return pol }
	exposedName := sd.names[0] // an API key, never an owner's
	var batch []rotator.Job
	var owned []inventory.ManagedSecret
	for _, e := range entries {
		switch {
		case e.Managed.Name == exposedName:
		case e.Managed.HasOwner(OwnerName):
			owned = append(owned, e.Managed)
		default:
			stored := e.Stored
			batch = append(batch, rotator.Job{Secret: e.Managed, Policy: pol, Known: &stored,
				Trigger: rotator.Trigger{Kind: events.CauseScheduled, ID: "2026-12-01T09:00:00Z", Source: events.SourceSchedule, Actor: "scheduler"}})
		}
	}
	batch = spreadByMerchant(batch)
	rep.Batch, rep.OwnerJobs = len(batch), len(owned)

	// Rotate: the batch, then, while it runs, an exposed key and an owner's
	// secrets, which jump its queue.
	baseCounts := counter.Snapshot()
	baseLaki := lakiCalls.snapshot()
	var injectedBefore int
	if fault != nil {
		injectedBefore = sumThrottles(fault.Injected())
	}
	writes := newWriteMeter(counter)
	stopMeter := writes.start()
	start := time.Now()
	cfg.Progress("rotating: %d scheduled, then %d owner secrets and 1 exposed key while the batch runs", len(batch), len(owned))

	// Outcomes are collected in submission order, with no goroutine per
	// job (10,000 parked goroutines would weigh 80 MB): jobs of one priority
	// run first in, first out, so this order is the order they end in.
	results := make([]<-chan rotator.JobOutcome, len(batch))
	for i, j := range batch {
		results[i] = eng.Submit(ctx, j)
	}
	var batchDone atomic.Int64
	var wg sync.WaitGroup
	exposeAt := max(1, len(batch)/10)
	ownerAt := max(2, len(batch)/5)
	var exposeErr, ownerErr error
	var ownerOutcomes []rotator.JobOutcome
	triggered := map[string]bool{}
	trigger := func(which string) {
		if triggered[which] {
			return
		}
		triggered[which] = true
		wg.Add(1)
		switch which {
		case "expose":
			rep.ExposedAtDone = int(batchDone.Load())
			go func() {
				defer wg.Done()
				d, err := exposeAndWait(ctx, sim, eng, entryOf(entries, exposedName), pol, sd.apiKeyIDs[exposedName])
				rep.ExposedToRevokedMillis, exposeErr = ms(d), err
			}()
		case "owner":
			rep.OwnerStartedAtDone = int(batchDone.Load())
			go func() {
				defer wg.Done()
				t := time.Now()
				jobs := rotator.PersonnelJobs(owned, OwnerName, policyOf, rotator.Trigger{
					ID: "offboard-" + OwnerName + "-" + runID, Source: events.SourceCLI, Actor: "security", Reason: "owner left"})
				jobs = spreadByMerchant(jobs)
				for i := range jobs { // the catalog's listing, as for the batch
					stored := entryOf(entries, jobs[i].Secret.Name).Stored
					jobs[i].Known = &stored
				}
				chans := make([]<-chan rotator.JobOutcome, len(jobs))
				for i, j := range jobs {
					chans[i] = eng.Submit(ctx, j)
				}
				for _, ch := range chans {
					ownerOutcomes = append(ownerOutcomes, <-ch)
				}
				rep.OwnerSeconds = time.Since(t).Seconds()
				for _, o := range ownerOutcomes {
					if o.Err != nil && ownerErr == nil {
						ownerErr = fmt.Errorf("owner rotation of %s: %w", o.Job.Secret.Name, o.Err)
					}
				}
			}()
		}
	}
	var all []rotator.JobOutcome
	lastReport := time.Now()
	for _, ch := range results {
		all = append(all, <-ch)
		n := int(batchDone.Add(1))
		if n >= exposeAt {
			trigger("expose")
		}
		if n >= ownerAt && len(owned) > 0 {
			trigger("owner")
		}
		if time.Since(lastReport) > 10*time.Second {
			lastReport = time.Now()
			cfg.Progress("%d/%d batch rotations done, %.1f/s", n, len(batch), float64(n)/time.Since(start).Seconds())
		}
	}
	trigger("expose")
	if len(owned) > 0 {
		trigger("owner")
	}
	wg.Wait()
	wall := time.Since(start)
	stopMeter()
	all = append(all, ownerOutcomes...)
	if exposeErr != nil {
		return nil, exposeErr
	}
	if ownerErr != nil {
		return nil, ownerErr
	}

	rep.fillRotationFigures(all, exposedName, cfg.N, wall)
	rep.WritesPerSecPeak = writes.peak()
	rep.fillCallFigures(counter.Snapshot(), baseCounts, lakiCalls.snapshot(), baseLaki)
	rep.SMMeanMillis = timing.means()
	if fault != nil {
		rep.ThrottlesInjected = sumThrottles(fault.Injected()) - injectedBefore
	}
	rep.LatencyP50Millis, rep.LatencyP99Millis = durations.percentile(0.50), durations.percentile(0.99)

	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	rep.HeapMB = float64(m.HeapInuse) / (1 << 20)
	rep.PeakRSSMB = procStatusMB("self", "VmHWM")
	rep.SimulatorInProcess = simPID == 0
	if simPID != 0 {
		rep.SimulatorPeakRSSMB = procStatusMB(strconv.Itoa(simPID), "VmHWM")
	}

	if cfg.ServeBinary != "" {
		cfg.Progress("measuring the idle memory of serve holding %d secrets", cfg.N)
		is, err := idleServe(ctx, cfg.ServeBinary, cfg.Endpoint, baseURL, runID, seedSM, sd, cfg.N, cfg.Progress)
		if err != nil {
			is = &IdleServe{Secrets: cfg.N, Note: "not measured: " + oneLine(err.Error())}
		}
		rep.IdleServe = is
	}
	return rep, nil
}
