package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
)

// Retry is the capped exponential backoff for failed deliveries.
type Retry struct {
	Attempts int           // total attempts, first included
	Initial  time.Duration // wait after the first failure
	Max      time.Duration // cap on one wait
	Timeout  time.Duration // limit on one attempt
}

// Metrics counts what happened to notifications. Labels are receiver names
// and fixed reasons, never event content.
type Metrics interface {
	Sent(receiver string)
	Failed(receiver string)
	Dropped(reason string) // "queue_full", "closed"
	Suppressed()           // a repeat within the dedup window
}

// Config sets up a Dispatcher.
type Config struct {
	Receivers      map[string]Notifier
	Routes         []Route
	QueueSize      int           // per receiver; default 256
	DedupWindow    time.Duration // 0: no de-duplication
	DigestInterval time.Duration // default 1h
	Retry          Retry
	Clock          clock.Clock
	Logger         *slog.Logger
	Metrics        Metrics
	// Owners gives the Slack ids of the owners of a managed secret, looked
	// up for each event whose route mentions owners. Nil: no owners known.
	Owners func(secret string) []string
}

// Dispatcher is the events.Sink that turns events into notifications.
type Dispatcher struct {
	cfg     Config
	routes  []Route
	workers map[string]*worker
	ctx     context.Context // cancelled when Close gives up waiting
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.RWMutex // guards closed against the queues' close
	closed bool

	dedupMu sync.Mutex
	seen    map[string]time.Time
}

type worker struct {
	name     string
	notifier Notifier
	queue    chan Notification
}

// NewDispatcher checks cfg and starts one delivery goroutine per receiver.
func NewDispatcher(cfg Config) (*Dispatcher, error) {
	if len(cfg.Receivers) == 0 {
		return nil, errors.New("notify: no receivers configured")
	}
	for i, r := range cfg.Routes {
		if _, ok := cfg.Receivers[r.Receiver]; !ok {
			return nil, fmt.Errorf("notify: route %d: receiver %q is not configured (have %v)", i, r.Receiver, receiverNames(cfg.Receivers))
		}
	}
	for name, n := range cfg.Receivers {
		if n == nil {
			return nil, fmt.Errorf("notify: receiver %q has no notifier", name)
		}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.DigestInterval <= 0 {
		cfg.DigestInterval = time.Hour
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry.Attempts = 5
	}
	if cfg.Retry.Initial <= 0 {
		cfg.Retry.Initial = time.Second
	}
	if cfg.Retry.Max <= 0 {
		cfg.Retry.Max = time.Minute
	}
	if cfg.Retry.Timeout <= 0 {
		cfg.Retry.Timeout = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NopMetrics{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dispatcher{cfg: cfg, routes: cfg.Routes, workers: map[string]*worker{}, ctx: ctx, cancel: cancel, seen: map[string]time.Time{}}
	for name, n := range cfg.Receivers {
		w := &worker{name: name, notifier: n, queue: make(chan Notification, cfg.QueueSize)}
		d.workers[name] = w
		d.wg.Go(func() { d.run(w) })
	}
	return d, nil
}

func receiverNames(m map[string]Notifier) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Emit routes e and queues its notification for every receiver a matching
// route names. It never blocks: when a receiver's queue is full the
// notification is dropped, counted and logged.
func (d *Dispatcher) Emit(ctx context.Context, e events.Event) {
	targets := d.deliveries(e)
	if len(targets) == 0 {
		return
	}
	if d.repeat(e) {
		d.cfg.Metrics.Suppressed()
		d.cfg.Logger.DebugContext(ctx, "notification suppressed as a repeat", "secret", e.Secret, "step", e.Step, "outcome", e.Outcome, "version", e.VersionID)
		return
	}
	base := FromEvent(e)
	if base.Time.IsZero() {
		base.Time = d.cfg.Clock.Now()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	for _, t := range targets {
		n := base
		n.Mention = MentionMarkup(t.mentions)
		if t.digest {
			n.Digest = []Notification{} // marks it for the digest; the worker batches it
		}
		if d.closed {
			d.cfg.Metrics.Dropped("closed")
			d.cfg.Logger.WarnContext(ctx, "notification dropped: dispatcher closed", "receiver", t.receiver, "secret", e.Secret, "step", e.Step)
			continue
		}
		select {
		case d.workers[t.receiver].queue <- n:
		default:
			d.cfg.Metrics.Dropped("queue_full")
			d.cfg.Logger.WarnContext(ctx, "notification dropped: queue full", "receiver", t.receiver, "secret", e.Secret, "step", e.Step, "outcome", e.Outcome)
		}
	}
}

// repeat reports whether the same message was sent within the dedup
// window, and remembers this one. What makes two messages the same is what
// they are about (the version or trigger, the key, the finding) and their
// step and outcome: never the secret alone, so a second rotation of one
// secret is news, while a retry's second failure of the same rotation is not.
func (d *Dispatcher) repeat(e events.Event) bool {
	if d.cfg.DedupWindow <= 0 {
		return false
	}
	key, ok := dedupKey(e)
	if !ok {
		return false
	}
	now := d.cfg.Clock.Now()
	d.dedupMu.Lock()
	defer d.dedupMu.Unlock()
	if last, ok := d.seen[key]; ok && now.Sub(last) < d.cfg.DedupWindow {
		return true
	}
	d.seen[key] = now
	if len(d.seen) > 4096 { // forget what has left the window
		for k, t := range d.seen {
			if now.Sub(t) >= d.cfg.DedupWindow {
				delete(d.seen, k)
			}
		}
	}
	return false
}

// dedupKey is the identity of the message e makes. Rotation steps are told
// apart by their version or trigger id; one without either (a scheduled
// rotation's start, before its version is known) cannot be told from the
// next and is never suppressed (ok false). Findings (violations, alerts,
// refusals, sweeps) are the same when they name the same key and reason.
func dedupKey(e events.Event) (key string, ok bool) {
	id := e.VersionID
	if id == "" {
		id = e.TriggerID
	}
	switch e.Step {
	case events.StepTrigger, events.StepCreate, events.StepTest, events.StepPromote, events.StepRetire, events.StepRotation:
		if id == "" {
			return "", false
		}
	}
	// The severity is part of it: a failure that turns critical (the last
	// attempt, or too many in a row) is news although the one before was not.
	parts := []string{string(e.Step), string(e.Outcome), string(e.Severity), e.Environment, e.MasterMerchantID, e.Secret, id,
		e.KeyID, e.PreviousKeyID, e.Details["reason"], e.Details["event_id"], e.Reason}
	return strings.Join(parts, "\x00"), true
}

func (d *Dispatcher) run(w *worker) {
	var digest []Notification
	tick := d.cfg.Clock.After(d.cfg.DigestInterval)
	flush := func() {
		if len(digest) == 0 {
			return
		}
		d.deliver(w, digestOf(digest))
		digest = nil
	}
	for {
		select {
		case n, ok := <-w.queue:
			if !ok {
				flush()
				return
			}
			if n.Digest != nil {
				digest = append(digest, n)
				continue
			}
			d.deliver(w, n)
		case <-tick:
			flush()
			tick = d.cfg.Clock.After(d.cfg.DigestInterval)
		}
	}
}

func digestOf(items []Notification) Notification {
	n := Notification{
		Time:     items[len(items)-1].Time,
		Title:    fmt.Sprintf("Digest: %d routine updates", len(items)),
		Severity: events.SeverityInfo,
		Digest:   items,
	}
	for i := range n.Digest {
		n.Digest[i].Digest = nil
	}
	return n
}

// deliver sends n with capped exponential backoff and jitter, honouring the
// notifier's retry flag. Failures are logged and counted, never returned.
func (d *Dispatcher) deliver(w *worker, n Notification) {
	r := d.cfg.Retry
	wait := r.Initial
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(d.ctx, r.Timeout)
		retry, err := w.notifier.Notify(ctx, n)
		cancel()
		if err == nil {
			d.cfg.Metrics.Sent(w.name)
			return
		}
		log := d.cfg.Logger.With("receiver", w.name, "secret", n.Secret, "step", n.Step, "outcome", n.Outcome, "attempt", attempt, "error", err.Error())
		if !retry || attempt >= r.Attempts || d.ctx.Err() != nil {
			d.cfg.Metrics.Failed(w.name)
			log.Error("notification not delivered", "retryable", retry)
			return
		}
		// Full jitter in [wait/2, wait): replicas that failed together do not retry together.
		sleep := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		log.Warn("notification delivery failed; retrying", "backoff", sleep)
		select {
		case <-d.cfg.Clock.After(sleep):
		case <-d.ctx.Done():
			d.cfg.Metrics.Failed(w.name)
			log.Error("notification not delivered: dispatcher closed while waiting to retry")
			return
		}
		wait = min(wait*2, r.Max)
	}
}

// Close stops accepting events, flushes the queues and the digests, and
// waits for the deliveries in flight until ctx ends; then it cancels them.
func (d *Dispatcher) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		for _, w := range d.workers {
			close(w.queue)
		}
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel() // a notifier that ignores its context is left behind
		return fmt.Errorf("notify: close: deliveries cancelled: %w", ctx.Err())
	}
}

// NopMetrics counts nothing.
type NopMetrics struct{}

func (NopMetrics) Sent(string)    {}
func (NopMetrics) Failed(string)  {}
func (NopMetrics) Dropped(string) {}
func (NopMetrics) Suppressed()    {}
