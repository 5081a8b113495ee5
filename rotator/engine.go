package rotator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
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
	// OrphanMargin: a rotator-made key younger than this is never swept
	// (default 1h: longer than a live rotation can hold a key between its
	// create and its put, retries and backoff included; see the config's
	// sweep.safety_margin).
	OrphanMargin time.Duration
	// ReplaySettle is how long a rotation whose create LakiConnect answered
	// as a replay waits before it may put the version itself (default 5s).
	// The first requester of a create owns it and puts at once; a replica
	// that got the replay waits for that put to land, then follows it
	// without a put of its own. It must be longer than one PutSecretValue
	// can take on a slow link (SDK retries included), since a put still in
	// flight when the other replica promotes strips AWSCURRENT on moto. It
	// only costs time on replays: a race, or a restart after a crash between
	// create and put.
	ReplaySettle time.Duration
	Hooks        Hooks
}

// DefaultReplaySettle is Config.ReplaySettle's default.
const DefaultReplaySettle = 5 * time.Second

// Engine runs rotations. Safe for concurrent use; Close stops its workers.
type Engine struct {
	cfg   Config
	store secretstore.Store
	clk   clock.Clock
	sink  events.Sink
	log   *slog.Logger

	mu    sync.Mutex
	locks map[string]chan struct{}

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
	if cfg.OrphanMargin <= 0 {
		cfg.OrphanMargin = time.Hour
	}
	if cfg.ReplaySettle <= 0 {
		cfg.ReplaySettle = DefaultReplaySettle
	}
	e := &Engine{
		cfg: cfg, store: cfg.Store, clk: cfg.Clock, sink: cfg.Events, log: cfg.Logger,
		locks: map[string]chan struct{}{},
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
	return iss, nil
}
