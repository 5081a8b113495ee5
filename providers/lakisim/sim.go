// Package lakisim is an in-memory LakiConnect: a real HTTP server that serves
// the Management API (openapi.yaml and README.md of the design docs) with
// every rule a client can observe: environments, RBAC, scope escalation, the
// key limit, idempotent replays, expiry by the clock, pagination, rate
// limits, auth-failure counts, webhook secrets, signed security events, and
// injected faults. Tests run it in-process; cmd/lakisim runs it for a demo.
//
// Choices the contract leaves open, made as a payment API would:
//   - Every answer an operation gives is kept for idempotent replay, errors
//     included (a 409 key_limit_reached or too_many_secrets replays as that
//     409 for 24 h, even once the cause is gone), as the contract says "the
//     first response again". Refusals before the operation runs (401, 403
//     missing_scope, 429, a malformed Idempotency-Key, 422 reuse) and
//     injected faults that strike before processing are not kept: the
//     request never reached the operation.
//   - A key created with expires_at stays `active` until then and is revoked
//     at that time; `expiring` is the state set by the expire endpoint.
//   - Expiring a webhook secret is refused with 409 last_secret when no other
//     secret of the endpoint would stay active (not itself expiring), since
//     the endpoint would otherwise end up with nothing to sign with.
//   - A refused request whose key is unknown cannot be tied to a merchant;
//     it is counted (and reported in spikes) for every merchant of that
//     environment.
package lakisim

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// Options configure a Simulator. The zero value is usable.
type Options struct {
	// Clock drives expiry, created_at, last_used_at, idempotency windows and
	// signature timestamps. Nil means the real clock.
	Clock clock.Clock
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// RateLimit is requests per second per calling key: 0 means
	// LakiConnect's 100, negative turns the limit off. It runs on real time,
	// not on Clock, since tests move Clock for expiry.
	RateLimit float64
	// DeliveryClient posts webhook deliveries; nil means a client with a 10 s
	// timeout and the system roots.
	DeliveryClient *http.Client
	// DeliverTwice delivers every event a second time after it succeeded,
	// with the same id and idempotency_key, as at-least-once delivery may.
	DeliverTwice bool
	// AuthFailureSpikeThreshold is how many refused requests of one key (or
	// key prefix) and status within AuthFailureSpikeWindow raise a
	// security.auth_failure_spike event: 0 means 20, negative turns it off.
	AuthFailureSpikeThreshold int
	// AuthFailureSpikeWindow: 0 means one minute (by Clock).
	AuthFailureSpikeWindow time.Duration
	// DeliveryAttempts bounds the tries of one delivery: 0 means 6.
	DeliveryAttempts int
	// DeliveryBackoff is the real-time wait before the second try, doubled
	// for each further try: 0 means 200 ms.
	DeliveryBackoff time.Duration
}

// Simulator is an in-memory LakiConnect. Safe for concurrent use.
type Simulator struct {
	clock          clock.Clock
	log            *slog.Logger
	rateLimit      float64
	client         *http.Client
	deliverTwice   bool
	spikeThreshold int
	spikeWindow    time.Duration
	attempts       int
	backoff        time.Duration
	routes         []route

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	closed     bool
	merchants  []string
	keys       map[string]*apiKey
	keyByHash  map[[32]byte]*apiKey
	endpoints  map[string]*endpoint
	idem       map[idemKey]*idemEntry
	limiters   map[string]*rate.Limiter
	failures   []authFailure
	lastSpike  map[spikeGroup]time.Time
	events     []lakiconnect.Event
	deliveries []Delivery
	requests   []RecordedRequest
	faults     []*faultState
}

type apiKey struct {
	id               string
	name             string
	env              laki.Environment
	merchant         string
	secret           secret.Value
	scopes           []laki.Scope
	status           laki.KeyStatus
	createdAt        time.Time
	expiresAt        *time.Time
	revokedAt        *time.Time
	lastUsedAt       *time.Time
	createdBy        *string
	metadata         map[string]string
	expiringSoonSent bool
}

type endpoint struct {
	id            string
	url           string
	env           laki.Environment
	merchant      string
	enabledEvents []string
	createdAt     time.Time
	secrets       []*webhookSecret
}

type webhookSecret struct {
	id        string
	value     secret.Value
	status    laki.KeyStatus
	createdAt time.Time
	expiresAt *time.Time
}

// Delivery is one attempt to deliver an event to a webhook endpoint.
type Delivery struct {
	EventID    string    `json:"event_id"`
	EventType  string    `json:"event_type"`
	EndpointID string    `json:"endpoint_id"`
	URL        string    `json:"url"`
	Attempt    int       `json:"attempt"`
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"`
}

// Succeeded reports whether the receiver answered 2xx.
func (d Delivery) Succeeded() bool { return d.StatusCode >= 200 && d.StatusCode < 300 }

// RecordedRequest is one request the API answered. It holds no credential.
type RecordedRequest struct {
	Environment laki.Environment `json:"environment"`
	Method      string           `json:"method"`
	// Path is the path after /v1, e.g. /api_keys/key_.../expire.
	Path           string `json:"path"`
	Status         int    `json:"status"`
	KeyID          string `json:"key_id,omitempty"`
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	Replayed       bool   `json:"replayed,omitempty"`
	// Faulted: an injected fault replaced the answer (Status is then what
	// the API would have answered, 0 if the request never reached it).
	Faulted   bool      `json:"faulted,omitempty"`
	RequestID string    `json:"request_id"`
	At        time.Time `json:"at"`
}

// New returns a running Simulator; call Close to stop its deliveries.
func New(opts Options) *Simulator {
	s := &Simulator{
		clock:          opts.Clock,
		log:            opts.Logger,
		rateLimit:      opts.RateLimit,
		client:         opts.DeliveryClient,
		deliverTwice:   opts.DeliverTwice,
		spikeThreshold: opts.AuthFailureSpikeThreshold,
		spikeWindow:    opts.AuthFailureSpikeWindow,
		attempts:       opts.DeliveryAttempts,
		backoff:        opts.DeliveryBackoff,
		keys:           map[string]*apiKey{},
		keyByHash:      map[[32]byte]*apiKey{},
		endpoints:      map[string]*endpoint{},
		idem:           map[idemKey]*idemEntry{},
		limiters:       map[string]*rate.Limiter{},
		lastSpike:      map[spikeGroup]time.Time{},
		routes:         apiRoutes(),
	}
	if s.clock == nil {
		s.clock = clock.Real{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rateLimit == 0 {
		s.rateLimit = laki.RateLimitPerKeyPerSecond
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.spikeThreshold == 0 {
		s.spikeThreshold = 20
	}
	if s.spikeWindow <= 0 {
		s.spikeWindow = time.Minute
	}
	if s.attempts <= 0 {
		s.attempts = 6
	}
	if s.backoff <= 0 {
		s.backoff = 200 * time.Millisecond
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.sweepLoop()
	return s
}

// Close stops the background sweep and every delivery in flight, and waits
// for them. The handlers keep answering.
func (s *Simulator) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// sweepLoop applies expiry on real time ticks, so that events of keys that
// expire by the clock go out even when no request arrives. It never waits
// on the injected clock: tests count that clock's waiters for their own use.
func (s *Simulator) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.mu.Lock()
			s.refreshLocked(s.now())
			s.mu.Unlock()
		}
	}
}

func (s *Simulator) now() time.Time { return s.clock.Now().UTC() }

// AddMasterMerchant registers a master merchant; an empty id is generated
// (mm_ + 16 alphanumerics). It returns the id.
func (s *Simulator) AddMasterMerchant(id string) string {
	if id == "" {
		id = laki.MasterMerchantIDPrefix + randomAlnum(laki.MasterMerchantIDLength)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.merchants, id) {
		s.merchants = append(s.merchants, id)
	}
	return id
}

// MasterMerchants lists the registered merchants in the order they were added.
func (s *Simulator) MasterMerchants() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.merchants)
}

// CreateKey makes a key as the dashboard would (no caller, created_by null).
// The merchant must exist; the scopes and the key limit are checked as for
// the API.
func (s *Simulator) CreateKey(env laki.Environment, merchantID, name string, scopes []laki.Scope) (laki.APIKeyWithSecret, error) {
	if !env.Valid() {
		return laki.APIKeyWithSecret{}, fmt.Errorf("lakisim: create key: unknown environment %q", env)
	}
	if n := len([]rune(name)); n < 1 || n > 100 {
		return laki.APIKeyWithSecret{}, fmt.Errorf("lakisim: create key: name must be 1-100 characters, got %d", n)
	}
	if err := checkScopes(scopes); err != nil {
		return laki.APIKeyWithSecret{}, fmt.Errorf("lakisim: create key %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.merchants, merchantID) {
		return laki.APIKeyWithSecret{}, fmt.Errorf("lakisim: create key %q: unknown master merchant %q", name, merchantID)
	}
	now := s.now()
	s.refreshLocked(now)
	if s.liveKeyCountLocked(env, merchantID) >= laki.MaxKeysPerMerchant {
		return laki.APIKeyWithSecret{}, fmt.Errorf("lakisim: create key %q: merchant %s already has %d keys in %s", name, merchantID, laki.MaxKeysPerMerchant, env)
	}
	k := s.newKeyLocked(env, merchantID, name, scopes, nil, nil, nil, now)
	return laki.APIKeyWithSecret{APIKey: k.view(), Secret: k.secret}, nil
}

func (s *Simulator) newKeyLocked(env laki.Environment, merchant, name string, scopes []laki.Scope, expiresAt *time.Time, createdBy *string, metadata map[string]string, now time.Time) *apiKey {
	k := &apiKey{
		id:        laki.KeyIDPrefix + randomAlnum(laki.ResourceIDLength),
		name:      name,
		env:       env,
		merchant:  merchant,
		secret:    secret.New(env.SecretPrefix() + randomAlnum(laki.KeySecretLength)),
		scopes:    slices.Clone(scopes),
		status:    laki.StatusActive,
		createdAt: now,
		expiresAt: expiresAt,
		createdBy: createdBy,
		metadata:  metadata,
	}
	s.keys[k.id] = k
	s.keyByHash[sha256.Sum256([]byte(k.secret.Reveal()))] = k
	return k
}

// AddWebhookEndpoint registers a webhook endpoint with one active signing
// secret. events lists enabled event types; "*" means all.
func (s *Simulator) AddWebhookEndpoint(env laki.Environment, merchantID, url string, events []string) (laki.WebhookEndpoint, laki.WebhookSecretWithValue, error) {
	if !env.Valid() {
		return laki.WebhookEndpoint{}, laki.WebhookSecretWithValue{}, fmt.Errorf("lakisim: add webhook endpoint: unknown environment %q", env)
	}
	if url == "" {
		return laki.WebhookEndpoint{}, laki.WebhookSecretWithValue{}, errors.New("lakisim: add webhook endpoint: empty url")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.merchants, merchantID) {
		return laki.WebhookEndpoint{}, laki.WebhookSecretWithValue{}, fmt.Errorf("lakisim: add webhook endpoint %s: unknown master merchant %q", url, merchantID)
	}
	now := s.now()
	ep := &endpoint{
		id:            laki.EndpointIDPrefix + randomAlnum(laki.ResourceIDLength),
		url:           url,
		env:           env,
		merchant:      merchantID,
		enabledEvents: slices.Clone(events),
		createdAt:     now,
	}
	if ep.enabledEvents == nil {
		ep.enabledEvents = []string{}
	}
	ws := ep.addSecret(now)
	s.endpoints[ep.id] = ep
	return ep.view(), ws.withValue(ep.id), nil
}

// RevokeKey revokes a key as someone other than the API would (reason
// revoked_by_dashboard or revoked_by_lakiconnect), with its event.
func (s *Simulator) RevokeKey(keyID, reason string) error {
	switch reason {
	case "revoked_by_dashboard", "revoked_by_lakiconnect", "revoked_by_api":
	default:
		return fmt.Errorf("lakisim: revoke key %s: unknown reason %q", keyID, reason)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.refreshLocked(now)
	k, ok := s.keys[keyID]
	if !ok {
		return fmt.Errorf("lakisim: revoke key: no key %s", keyID)
	}
	if k.status != laki.StatusRevoked {
		s.revokeLocked(k, now, reason)
	}
	return nil
}

// ExposeKey raises api_key.exposed for a key, as LakiConnect does when it
// sees the secret in public. source is public_repository, paste_site or
// report; url may be empty.
func (s *Simulator) ExposeKey(keyID, source, url string) (string, error) {
	switch source {
	case "public_repository", "paste_site", "report":
	default:
		return "", fmt.Errorf("lakisim: expose key %s: unknown source %q (want public_repository, paste_site or report)", keyID, source)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[keyID]
	if !ok {
		return "", fmt.Errorf("lakisim: expose key: no key %s", keyID)
	}
	now := s.now()
	ev := s.emitLocked(k.env, k.merchant, laki.EventAPIKeyExposed, lakiconnect.APIKeyExposedData{
		KeyID: k.id, FoundIn: source, URL: url, DetectedAt: now,
	}, now)
	return ev.ID, nil
}

// Key returns one key (any environment) without its secret.
func (s *Simulator) Key(keyID string) (laki.APIKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(s.now())
	k, ok := s.keys[keyID]
	if !ok {
		return laki.APIKey{}, false
	}
	return k.view(), true
}

// Keys lists a merchant's keys in one environment, ordered by created_at, id.
func (s *Simulator) Keys(env laki.Environment, merchantID string) []laki.APIKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(s.now())
	var out []laki.APIKey
	for _, k := range s.sortedKeysLocked(env, merchantID) {
		out = append(out, k.view())
	}
	return out
}

// WebhookEndpoints lists a merchant's endpoints in one environment.
func (s *Simulator) WebhookEndpoints(env laki.Environment, merchantID string) []laki.WebhookEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(s.now())
	var out []laki.WebhookEndpoint
	for _, ep := range s.sortedEndpointsLocked(env, merchantID) {
		out = append(out, ep.view())
	}
	return out
}

// Events returns every event raised so far, in order.
func (s *Simulator) Events() []lakiconnect.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked(s.now())
	return append([]lakiconnect.Event{}, s.events...)
}

// Deliveries returns every delivery attempt so far, in order.
func (s *Simulator) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Delivery{}, s.deliveries...)
}

// Requests returns every API request answered so far, in order.
func (s *Simulator) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]RecordedRequest{}, s.requests...)
}

// RequestCount counts answered requests with this method whose path (after
// /v1) equals path; a path ending in "/" counts every path under it.
func (s *Simulator) RequestCount(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if r.Method != method {
			continue
		}
		if r.Path == path || (len(path) > 0 && path[len(path)-1] == '/' && len(r.Path) >= len(path) && r.Path[:len(path)] == path) {
			n++
		}
	}
	return n
}
