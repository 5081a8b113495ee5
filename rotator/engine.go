// Package rotator is the lifecycle engine: it rotates one managed secret
// through create, test, promote and retire, AWS-rotation-label compatible,
// crash-safe and idempotent, and runs many rotations on a bounded, prioritised
// worker pool.
//
// State lives only in the store (versions, stages, tags) and at LakiConnect.
// The version id of a rotation is derived from the secret and the cause id
// (VersionID), and every LakiConnect write carries an idempotency key derived
// from that version id, so a retry, a restart or a second replica converges
// on one new credential. An AWSPENDING version that is not AWSCURRENT is a
// rotation in flight: any rotation asked for while it exists resumes it
// (with the grace of the new cause: a compromise arriving while a scheduled
// rotation is in flight finishes that one at once with zero grace, which
// ends the exposed key as soon as the in-flight credential is current).
//
// Secrets Manager call budget of one rotation, when the caller passes the
// secret's listing or Describe data (Job.Known):
//
//	fresh rotation: PutSecretValue(AWSPENDING), UpdateSecretVersionStage(AWSCURRENT),
//	                plus GetSecretValue(AWSCURRENT) only when LakiConnect cannot
//	                name the old credential (see below)
//	resumed:        GetSecretValue(pending version), UpdateSecretVersionStage,
//	                plus GetSecretValue(AWSCURRENT) as above
//
// that is at most 3 calls and exactly 2 writes from the engine. The old
// credential's id is needed only to end it; LakiConnect gives it without a
// store read when it is unambiguous: the one live key whose metadata names
// this secret and the AWSCURRENT version id (every key the rotator makes
// carries them), or an endpoint's only live signing secret. A credential made
// by hand (the first rotation of a secret) is read from AWSCURRENT. The fresh
// path proves the credential it holds in memory (the one it just wrote)
// instead of reading AWSPENDING back; only the resume path, which has nothing
// in memory, reads it. AWSPENDING stays on the new current version, as AWS's
// own rotation template leaves it, until the next rotation's PutSecretValue
// moves it. Extra calls happen only off the happy path: a Describe when
// Job.Known is nil or after a failed attempt, a TagResource to record a
// failure or to clear recorded failures. (A store whose PutPending reads the
// version first, as the Secrets Manager store does against moto's missing
// token check, adds its own read to these.)
package rotator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Metadata the rotator puts on every API key it creates; the orphan sweep
// only ever revokes keys that carry MetaCreatedBy.
const (
	MetaCreatedBy      = "created_by_rotator"
	MetaCreatedByValue = "lakirotator"
	MetaSecret         = "lakirotator_secret"
	MetaVersion        = "lakirotator_version"
)

// Tags the engine keeps on a secret to survive restarts.
const (
	TagFailedAttempts = "lakirotator:failed-attempts"
	TagLastFailure    = "lakirotator:last-failure"
	TagNextAttempt    = "lakirotator:next-attempt"
	TagFailingVersion = "lakirotator:failing-version"
)

// Backoff is a capped exponential backoff.
type Backoff struct {
	Base time.Duration // first wait; default 2s
	Max  time.Duration // cap; default 5m
}

// Delay is the wait after the n-th consecutive failure (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Config configures an Engine. Store and Issuers are required.
type Config struct {
	Store   secretstore.Store
	Issuers IssuerSource
	// Verifier checks test_signature answers (webhook secrets); webhooksig.Verifier.
	Verifier SignatureVerifier
	Clock    clock.Clock
	Events   events.Sink
	Logger   *slog.Logger
	// Workers is the size of the worker pool (default 4).
	Workers int
	// Attempts is how many times one Rotate call tries before it gives up (default 3).
	Attempts int
	// MaxFailures is the count of consecutive failed attempts, across
	// restarts (kept in tags), from which each failure raises a critical event (default 5).
	MaxFailures int
	Backoff     Backoff
	// RateLimit bounds LakiConnect requests per second per management key
	// (default 80, under LakiConnect's 100); RateBurst its burst (default 20).
	RateLimit rate.Limit
	RateBurst int
	// RateClock is the clock the rate limiter waits on (default Clock).
	// LakiConnect counts in real time: a test whose Clock is fake sets
	// clock.Real{} here.
	RateClock clock.Clock
	// OrphanMargin: a rotator-made key younger than this is never swept
	// (default 1h: longer than a live rotation can hold a key between its
	// create and its put, retries and backoff included; see the config's
	// sweep.safety_margin).
	OrphanMargin time.Duration
	Hooks        Hooks
}

// Engine runs rotations. Safe for concurrent use; Close stops its workers.
type Engine struct {
	cfg   Config
	store secretstore.Store
	clk   clock.Clock
	sink  events.Sink
	log   *slog.Logger

	mu       sync.Mutex
	locks    map[string]chan struct{}
	limiters map[string]*rate.Limiter

	pool *pool
}

// New checks the config, fills defaults and starts the worker pool.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("rotator: config: Store is required")
	}
	if cfg.Issuers == nil {
		return nil, errors.New("rotator: config: Issuers is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Events == nil {
		cfg.Events = events.SinkFunc(func(context.Context, events.Event) {})
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 3
	}
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = 5
	}
	if cfg.Backoff.Base <= 0 {
		cfg.Backoff.Base = 2 * time.Second
	}
	if cfg.Backoff.Max < cfg.Backoff.Base {
		cfg.Backoff.Max = max(5*time.Minute, cfg.Backoff.Base)
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 80
	}
	if cfg.RateBurst <= 0 {
		cfg.RateBurst = 20
	}
	if cfg.RateClock == nil {
		cfg.RateClock = cfg.Clock
	}
	if cfg.OrphanMargin <= 0 {
		cfg.OrphanMargin = time.Hour
	}
	e := &Engine{
		cfg: cfg, store: cfg.Store, clk: cfg.Clock, sink: cfg.Events, log: cfg.Logger,
		locks: map[string]chan struct{}{}, limiters: map[string]*rate.Limiter{},
	}
	e.pool = newPool(e, cfg.Workers)
	return e, nil
}

// Close stops the workers after the rotations they are running; queued jobs
// end with an error.
func (e *Engine) Close() { e.pool.close() }

// lockSecret gives one rotation at a time per secret in this process
// (replicas are kept safe by the deterministic ids).
func (e *Engine) lockSecret(ctx context.Context, name string) (func(), error) {
	for {
		e.mu.Lock()
		ch, busy := e.locks[name]
		if !busy {
			ch = make(chan struct{})
			e.locks[name] = ch
			e.mu.Unlock()
			return func() {
				e.mu.Lock()
				delete(e.locks, name)
				e.mu.Unlock()
				close(ch)
			}, nil
		}
		e.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (e *Engine) issuer(ctx context.Context, ms inventory.ManagedSecret) (Issuer, error) {
	iss, err := e.cfg.Issuers.Issuer(ctx, ms.Environment, ms.MasterMerchantID)
	if err != nil {
		return nil, fmt.Errorf("issuer for %s %s: %w", ms.Environment, ms.MasterMerchantID, err)
	}
	key := string(ms.Environment) + "/" + ms.MasterMerchantID
	e.mu.Lock()
	lim, ok := e.limiters[key]
	if !ok {
		lim = rate.NewLimiter(e.cfg.RateLimit, e.cfg.RateBurst)
		e.limiters[key] = lim
	}
	e.mu.Unlock()
	return &limitedIssuer{next: iss, lim: lim, clk: e.cfg.RateClock}, nil
}

// Rotate runs one rotation of one secret; see RotateJob.
func (e *Engine) Rotate(ctx context.Context, ms inventory.ManagedSecret, pol RotationPolicy, cause Cause) (Result, error) {
	return e.RotateJob(ctx, Job{Secret: ms, Policy: pol, Cause: cause})
}

func validateJob(j Job) error {
	if err := j.Secret.Validate(); err != nil {
		return err
	}
	if err := j.Cause.validate(); err != nil {
		return fmt.Errorf("managed secret %q: %w", j.Secret.Name, err)
	}
	if j.Secret.Kind != inventory.KindWebhookSecret {
		if len(j.Policy.Scopes) == 0 {
			return fmt.Errorf("managed secret %q: policy %q lists no scopes for the new key", j.Secret.Name, j.Secret.Policy)
		}
		for _, s := range j.Policy.Scopes {
			if !s.Valid() {
				return fmt.Errorf("managed secret %q: policy %q: scope %q is not a LakiConnect scope", j.Secret.Name, j.Secret.Policy, s)
			}
		}
	}
	return nil
}

// RotateJob runs one rotation to its end, or resumes the one in flight,
// retrying failed attempts with capped exponential backoff (Config.Attempts
// in this call; the failure count, last failure and next attempt time are
// kept in the secret's tags so that a restart finds them). AWSCURRENT is only
// ever moved to a credential that passed its test.
func (e *Engine) RotateJob(ctx context.Context, job Job) (Result, error) {
	if err := validateJob(job); err != nil {
		return Result{}, &StepError{Secret: job.Secret.Name, Step: "validate", Err: err, Permanent: true}
	}
	if job.Cause.At.IsZero() {
		job.Cause.At = e.clk.Now().UTC().Truncate(time.Hour)
	}
	name := job.Secret.Name
	unlock, err := e.lockSecret(ctx, name)
	if err != nil {
		return Result{}, stepErr(name, "lock", err)
	}
	defer unlock()

	start := e.clk.Now()
	base := e.baseEvent(job)
	e.emit(ctx, base, events.StepRotation, events.OutcomeStarted, nil)

	info := job.Known
	priorFailures := -1
	for attempt := 1; ; attempt++ {
		var err error
		var res Result
		if info == nil {
			var d secretstore.Secret
			d, err = e.store.Describe(ctx, name)
			if err == nil {
				info = &d
			}
			err = stepErr(name, "describe", err)
		}
		if priorFailures < 0 && info != nil {
			priorFailures, _ = strconv.Atoi(info.Tags[TagFailedAttempts])
		}
		if err == nil {
			res, err = e.attempt(ctx, job, *info)
		}
		if err == nil {
			res.Attempts = attempt
			if priorFailures > 0 || (attempt > 1) {
				e.clearFailures(ctx, name)
			}
			ev := base
			ev.VersionID, ev.PreviousVersion = res.VersionID, res.PreviousVersionID
			ev.KeyID, ev.PreviousKeyID, ev.KeyLast4 = res.KeyID, res.PreviousKeyID, res.KeyLast4
			ev.Attempt, ev.Duration = attempt, e.clk.Now().Sub(start)
			ev.Details = map[string]string{"outcome": string(res.Outcome)}
			if res.Outcome == AlreadyDone || res.Outcome == Superseded {
				// Done by another replica (or before a restart): it was
				// announced by whoever promoted it; say it once.
				e.emit(ctx, ev, events.StepRotation, events.OutcomeSkipped, nil)
				return res, nil
			}
			e.emit(ctx, ev, events.StepRotation, events.OutcomeSucceeded, nil)
			return res, nil
		}
		if errors.Is(err, ErrAborted) || ctx.Err() != nil {
			return res, err
		}
		if code, _ := apiCode(err); code == http.StatusUnauthorized {
			// Perhaps a replica rotated the management key: read it again.
			if inv, ok := e.cfg.Issuers.(KeyInvalidator); ok {
				inv.InvalidateManagementKey(job.Secret.Environment, job.Secret.MasterMerchantID)
			}
		}
		priorFailures = max(priorFailures, 0) + 1
		more := attempt < e.cfg.Attempts && retryable(err)
		next := e.clk.Now().Add(e.cfg.Backoff.Delay(priorFailures))
		failing := res.VersionID
		if failing == "" {
			failing = VersionID(refOf(job.Secret, info), job.Cause.ID)
		}
		e.recordFailure(ctx, name, failing, priorFailures, err, next)
		ev := base
		if res.VersionID != "" || info != nil { // the rotation that failed, as its create step names it
			ev.VersionID = failing
		}
		ev.Attempt, ev.Duration = attempt, e.clk.Now().Sub(start)
		sev := events.SeverityWarning
		if priorFailures >= e.cfg.MaxFailures || !more {
			sev = events.SeverityCritical
		}
		ev.Severity = sev
		ev.Details = map[string]string{"failures": strconv.Itoa(priorFailures), "retry": strconv.FormatBool(more)}
		e.emit(ctx, ev, events.StepRotation, events.OutcomeFailed, err)
		if !more {
			return res, err
		}
		select {
		case <-e.clk.After(e.cfg.Backoff.Delay(attempt)):
		case <-ctx.Done():
			return res, stepErr(name, "backoff", ctx.Err())
		case <-stopOf(ctx):
			// Shutting down: no further attempt here; the failure count is
			// in the tags and a restart picks the rotation up.
			return res, stepErr(name, "backoff", ErrClosed)
		}
		info = nil // the store may have moved on: look again
	}
}

func refOf(ms inventory.ManagedSecret, info *secretstore.Secret) string {
	if info != nil && info.ARN != "" {
		return info.ARN
	}
	if ms.ARN != "" {
		return ms.ARN
	}
	return ms.Name
}

func (e *Engine) recordFailure(ctx context.Context, name, versionID string, failures int, err error, next time.Time) {
	tags := map[string]string{
		TagFailedAttempts: strconv.Itoa(failures),
		TagLastFailure:    sanitize(err.Error()),
		TagNextAttempt:    next.UTC().Format(time.RFC3339),
		TagFailingVersion: versionID,
	}
	if terr := e.store.Tag(ctx, name, tags); terr != nil {
		e.log.Warn("recording rotation failure in tags failed", "secret", name, "error", terr)
	}
}

func (e *Engine) clearFailures(ctx context.Context, name string) {
	tags := map[string]string{TagFailedAttempts: "0", TagLastFailure: "", TagNextAttempt: "", TagFailingVersion: ""}
	if err := e.store.Tag(ctx, name, tags); err != nil {
		e.log.Warn("clearing rotation failure tags failed", "secret", name, "error", err)
	}
}

func (e *Engine) hook(name string, step Step) error {
	if e.cfg.Hooks.AfterStep == nil {
		return nil
	}
	if err := e.cfg.Hooks.AfterStep(name, step); err != nil {
		return fmt.Errorf("%w after %s of %q: %w", ErrAborted, step, name, err)
	}
	return nil
}

func credID(c secretstore.Credential) string { return c.ID() }

func (e *Engine) revokeFirst(job Job) bool {
	return job.Cause.Kind == events.CauseCompromise &&
		(job.Policy.RevokeFirstOnCompromise || job.Cause.RevokeFirst) &&
		job.Secret.Kind == inventory.KindAPIKey
}

// read gets one stored version and checks that it belongs to the secret's
// declared environment, merchant and kind: sandbox and production never mix.
func (e *Engine) read(ctx context.Context, ms inventory.ManagedSecret, sel secretstore.Selector, step string) (secretstore.Credential, error) {
	v, err := e.store.Get(ctx, ms.Name, sel)
	if err != nil {
		return secretstore.Credential{}, stepErr(ms.Name, step, err)
	}
	c, err := secretstore.DecodeCredential(ms.Name, v.Value)
	if err != nil {
		return secretstore.Credential{}, stepErr(ms.Name, step, err)
	}
	if err := matches(ms, c); err != nil {
		return secretstore.Credential{}, permanent(ms.Name, step, "version %s: %v", v.ID, err)
	}
	return c, nil
}

func matches(ms inventory.ManagedSecret, c secretstore.Credential) error {
	want := secretstore.TypeAPIKey
	if ms.Kind == inventory.KindWebhookSecret {
		want = secretstore.TypeWebhookSecret
	}
	switch {
	case c.Type != want:
		return fmt.Errorf("stored type %q, but the secret is declared %s", c.Type, ms.Kind)
	case c.Environment != string(ms.Environment):
		return fmt.Errorf("stored credential is for %s, but the secret is declared for %s", c.Environment, ms.Environment)
	case c.MasterMerchantID != ms.MasterMerchantID:
		return fmt.Errorf("stored credential is for master merchant %s, but the secret is declared for %s", c.MasterMerchantID, ms.MasterMerchantID)
	case want == secretstore.TypeWebhookSecret && c.EndpointID != ms.EndpointID:
		return fmt.Errorf("stored secret is for endpoint %s, but the secret is declared for %s", c.EndpointID, ms.EndpointID)
	}
	return nil
}

func (e *Engine) put(ctx context.Context, job Job, vid string, c secretstore.Credential) error {
	ev := e.baseEvent(job)
	ev.VersionID, ev.KeyID = vid, credID(c)
	start := e.clk.Now()
	v, err := c.Encode()
	if err == nil {
		err = e.store.PutPending(ctx, job.Secret.Name, vid, v)
	}
	ev.Duration = e.clk.Now().Sub(start)
	ev.Details = map[string]string{"action": "put_pending"}
	if err != nil {
		err = stepErr(job.Secret.Name, "put pending", err)
		e.emit(ctx, ev, events.StepCreate, events.OutcomeFailed, err)
		return err
	}
	e.emit(ctx, ev, events.StepCreate, events.OutcomeSucceeded, nil)
	return nil
}

func (e *Engine) baseEvent(job Job) events.Event {
	ev := events.Event{
		Secret: job.Secret.Name, Kind: string(job.Secret.Kind), Environment: string(job.Secret.Environment),
		MasterMerchantID: job.Secret.MasterMerchantID, Cause: job.Cause.Kind, Source: job.Cause.Source,
		Actor: job.Cause.Actor, OnBehalfOf: job.Cause.OnBehalfOf, Reason: job.Cause.Reason,
	}
	if job.Cause.Kind != events.CauseScheduled {
		ev.TriggerID = job.Cause.ID
	}
	return ev
}

// emit stamps and sends an event; err, when set, is recorded as the event's
// error (errors carry no secrets).
func (e *Engine) emit(ctx context.Context, ev events.Event, step events.Step, outcome events.Outcome, err error) {
	ev.Time = e.clk.Now()
	ev.Step, ev.Outcome = step, outcome
	if ev.Severity == "" {
		switch outcome {
		case events.OutcomeFailed:
			ev.Severity = events.SeverityWarning
		case events.OutcomeWarning:
			ev.Severity = events.SeverityWarning
		default:
			ev.Severity = events.SeverityInfo
		}
	}
	if err != nil {
		ev.Error = err.Error()
	}
	e.sink.Emit(ctx, ev)
	level := slog.LevelInfo
	if outcome == events.OutcomeFailed || outcome == events.OutcomeWarning {
		level = slog.LevelWarn
	}
	e.log.Log(ctx, level, "rotation step", "secret", ev.Secret, "step", ev.Step, "outcome", ev.Outcome,
		"version", ev.VersionID, "key", ev.KeyID, "cause", ev.Cause, "error", ev.Error)
}

func isNotFound(err error) bool {
	code, _ := apiCode(err)
	return code == http.StatusNotFound
}

func sortedScopes(s []lakiconnect.Scope) []lakiconnect.Scope {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
