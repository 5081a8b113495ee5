// Package securityevents receives LakiConnect's signed security events
// (api_key.exposed, api_key.revoked, security.auth_failure_spike, ...) as
// LakiConnect's rules ask: verify the signature in constant time, check the
// master merchant, drop redeliveries by idempotency key, answer 2xx at once and
// act asynchronously.
package securityevents

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
)

// SigningSecrets gives the signing secrets the receiver holds for its
// security webhook endpoint: the current one and, during a rotation of that
// very secret, the pending one. fresh asks to bypass any cache.
type SigningSecrets interface {
	SigningSecrets(ctx context.Context, fresh bool) ([]secret.Value, error)
}

// Handler acts on one verified, first-seen event. It runs off the request
// path; its error is logged and recorded.
type Handler func(ctx context.Context, e lakiconnect.Event) error

// Recorder keeps what a verified, first-seen event asks for where a restart
// or a replica finds it, before the event is answered 2xx: LakiConnect does
// not deliver an event again once it got a 2xx. duplicate reports an event
// already acted on (a redelivery after a restart): it is answered 2xx and
// dropped. An error answers 503, so that LakiConnect delivers it again.
type Recorder func(ctx context.Context, e lakiconnect.Event) (duplicate bool, err error)

// Options configures a Receiver.
type Options struct {
	Environment laki.Environment
	// MasterMerchants are the merchants whose events this receiver accepts.
	MasterMerchants []string
	Secrets         SigningSecrets
	Handle          Handler
	// Record, when set, runs before the answer (see Recorder).
	Record Recorder
	Clock  clock.Clock
	Events events.Sink // failures to act are recorded here
	// Refusals summarises refused deliveries (bounded records, every one
	// counted); when nil, one is made that records to Events.
	Refusals interface {
		Refuse(ctx context.Context, r inbound.Refusal)
	}
	Logger *slog.Logger
	// DedupWindow is how long an idempotency key is remembered (default 48h:
	// LakiConnect's redelivery horizon is shorter).
	DedupWindow time.Duration
	// QueueSize bounds the events waiting for the handler (default 1024).
	QueueSize int
	// MaxBodyBytes limits a delivery's body (default 64 KiB).
	MaxBodyBytes int64
	// FreshEvery bounds the fresh reads of the signing secrets that a
	// failed verification asks for (default 30s): a flood of forged
	// deliveries costs one store read per period, not one each.
	FreshEvery time.Duration
}

// Receiver is an http.Handler for one environment's security webhook.
type Receiver struct {
	o        Options
	verifier webhooksig.Verifier
	queue    chan lakiconnect.Event

	mu        sync.Mutex
	seen      map[string]time.Time // idempotency key → when first accepted
	lastFresh time.Time            // when the secrets were last read fresh
}

// New returns a receiver; call Run to start acting on events.
func New(o Options) (*Receiver, error) {
	if !o.Environment.Valid() {
		return nil, fmt.Errorf("security event receiver: environment %q is not sandbox or production", o.Environment)
	}
	if len(o.MasterMerchants) == 0 {
		return nil, errors.New("security event receiver: no master merchant configured")
	}
	if o.Secrets == nil || o.Handle == nil {
		return nil, errors.New("security event receiver: signing secrets and handler are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = events.SinkFunc(func(context.Context, events.Event) {})
	}
	if o.Refusals == nil {
		o.Refusals = inbound.NewRefusals(inbound.RefusalsOptions{Events: o.Events, Clock: o.Clock, Logger: o.Logger})
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = 48 * time.Hour
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.FreshEvery <= 0 {
		o.FreshEvery = 30 * time.Second
	}
	return &Receiver{
		o:        o,
		verifier: webhooksig.Verifier{Clock: o.Clock},
		queue:    make(chan lakiconnect.Event, o.QueueSize),
		seen:     map[string]time.Time{},
	}, nil
}

// Run acts on queued events until ctx ends, then returns once the event in
// hand is done.
func (r *Receiver) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-r.queue:
			r.act(ctx, e)
		}
	}
}

func (r *Receiver) act(ctx context.Context, e lakiconnect.Event) {
	if err := r.o.Handle(ctx, e); err != nil {
		r.o.Logger.Error("security event not handled", "event_id", e.ID, "type", e.Type, "err", err)
		r.o.Events.Emit(ctx, events.Event{
			Time: r.o.Clock.Now(), Step: events.StepAlert, Outcome: events.OutcomeFailed, Severity: events.SeverityCritical,
			Source: events.SourceLakiEvent, Environment: string(e.Environment), MasterMerchantID: e.MasterMerchantID,
			Reason: "security event " + e.Type + " could not be acted on", Error: err.Error(),
			Details: map[string]string{"event_id": e.ID, "reason": "security_event_unhandled"},
		})
		// Forget it, so that a redelivery of the same event is acted on.
		r.mu.Lock()
		delete(r.seen, e.IdempotencyKey)
		r.mu.Unlock()
	}
}

func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.o.MaxBodyBytes))
	if err != nil {
		r.refuse(req, w, http.StatusRequestEntityTooLarge, "body_too_large", "body too large or unreadable", "request body too large")
		return
	}
	header := req.Header.Get(lakiconnect.SignatureHeader)
	if err := r.verify(req.Context(), header, body); err != nil {
		// The caller is not yet known: it learns that the delivery was not
		// verified, never why inside (store errors, secret names).
		switch {
		case errors.Is(err, errNoSecrets):
			r.o.Logger.Error("security event receiver cannot verify deliveries", "environment", r.o.Environment, "err", err)
			r.refuse(req, w, http.StatusServiceUnavailable, "no_signing_secret", err.Error(), "delivery cannot be verified now; retry later")
		case errors.Is(err, webhooksig.ErrTimestampOutOfTolerance):
			r.refuse(req, w, http.StatusUnauthorized, "stale_timestamp", "signature timestamp outside the tolerance (stale or replayed)", "delivery not verified")
		case errors.Is(err, webhooksig.ErrMalformedHeader):
			r.refuse(req, w, http.StatusBadRequest, "malformed_signature", "malformed signature header", "delivery not verified")
		default:
			r.refuse(req, w, http.StatusUnauthorized, "bad_signature", "no valid signature (forged, stale or signed with another secret)", "delivery not verified")
		}
		return
	}
	var e lakiconnect.Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || e.Type == "" || e.IdempotencyKey == "" {
		r.refuse(req, w, http.StatusBadRequest, "not_an_event", "signed body is not a LakiConnect event (id, type, idempotency_key)", "signed body is not a LakiConnect event")
		return
	}
	if e.Environment != r.o.Environment {
		r.refuse(req, w, http.StatusBadRequest, "wrong_environment", fmt.Sprintf("event %s is for environment %q, this receiver is %q", inbound.Clip(e.ID, 64), inbound.Clip(string(e.Environment), 32), r.o.Environment), "event is for another environment")
		return
	}
	if !r.merchantExpected(e.MasterMerchantID) {
		r.refuse(req, w, http.StatusBadRequest, "wrong_merchant", fmt.Sprintf("event %s is for master merchant %q, which this receiver does not serve", inbound.Clip(e.ID, 64), inbound.Clip(e.MasterMerchantID, 64)), "event is for a master merchant this receiver does not serve")
		return
	}
	if !r.firstSeen(e.IdempotencyKey) {
		r.o.Logger.Debug("security event redelivery dropped", "event_id", e.ID, "type", e.Type)
		writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": true})
		return
	}
	if r.o.Record != nil {
		dup, err := r.o.Record(req.Context(), e)
		if err != nil {
			r.forget(e.IdempotencyKey)
			r.o.Logger.Error("security event not recorded; asking for redelivery", "event_id", e.ID, "type", e.Type, "err", err)
			http.Error(w, "cannot record the event now, retry", http.StatusServiceUnavailable)
			return
		}
		if dup {
			r.o.Logger.Debug("security event already acted on; redelivery dropped", "event_id", e.ID, "type", e.Type)
			writeJSON(w, http.StatusOK, map[string]any{"received": true, "duplicate": true})
			return
		}
	}
	select {
	case r.queue <- e:
		r.o.Logger.Info("security event accepted", "event_id", e.ID, "type", e.Type, "environment", e.Environment)
		writeJSON(w, http.StatusOK, map[string]any{"received": true})
	default:
		// Full queue: let LakiConnect redeliver rather than lose the event.
		r.forget(e.IdempotencyKey)
		r.o.Logger.Error("security event queue full; asking for redelivery", "event_id", e.ID)
		http.Error(w, "busy, retry", http.StatusServiceUnavailable)
	}
}

func (r *Receiver) forget(key string) {
	r.mu.Lock()
	delete(r.seen, key)
	r.mu.Unlock()
}

var errNoSecrets = errors.New("no signing secret is available to verify deliveries")

// verify checks the header with the held secrets, and once more with fresh
// ones: the endpoint's secret may have just been rotated.
func (r *Receiver) verify(ctx context.Context, header string, body []byte) error {
	var lastErr error
	for _, fresh := range []bool{false, true} {
		if fresh && !r.mayReadFresh() {
			break
		}
		secrets, err := r.o.Secrets.SigningSecrets(ctx, fresh)
		if err != nil {
			lastErr = fmt.Errorf("%w: %v", errNoSecrets, err)
			continue
		}
		if len(secrets) == 0 {
			lastErr = errNoSecrets
			continue
		}
		err = r.verifier.Verify(header, body, secrets...)
		if err == nil || !errors.Is(err, webhooksig.ErrNoValidSignature) {
			return err
		}
		lastErr = err
	}
	return lastErr
}

// mayReadFresh reports whether a fresh read of the secrets is allowed now,
// and if so counts it.
func (r *Receiver) mayReadFresh() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.Clock.Now()
	if !r.lastFresh.IsZero() && now.Sub(r.lastFresh) < r.o.FreshEvery {
		return false
	}
	r.lastFresh = now
	return true
}

func (r *Receiver) merchantExpected(id string) bool {
	for _, m := range r.o.MasterMerchants {
		if m == id {
			return true
		}
	}
	return false
}

// firstSeen records the key and reports whether it was new; it also forgets
// keys older than the window so the map stays bounded.
func (r *Receiver) firstSeen(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.o.Clock.Now()
	for k, t := range r.seen {
		if now.Sub(t) > r.o.DedupWindow {
			delete(r.seen, k)
		}
	}
	if _, ok := r.seen[key]; ok {
		return false
	}
	r.seen[key] = now
	return true
}

// refuse answers with a fixed public message and reports the refusal (why,
// bounded) to the summariser.
func (r *Receiver) refuse(req *http.Request, w http.ResponseWriter, status int, code, why, answer string) {
	r.o.Refusals.Refuse(req.Context(), inbound.Refusal{
		Door: events.SourceLakiEvent, Remote: req.RemoteAddr, Code: code, Reason: why, Status: status,
		Environment: string(r.o.Environment),
	})
	writeJSON(w, status, map[string]string{"error": answer})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
