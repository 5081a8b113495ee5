package rotator_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

var apiScopes = []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeRefundsWrite}

func basePolicy() rotator.RotationPolicy {
	return rotator.RotationPolicy{
		Scopes:       apiScopes,
		DefaultGrace: 24 * time.Hour,
		Grace:        map[events.Cause]time.Duration{events.CausePersonnel: time.Hour, events.CauseCompromise: 0},
	}
}

func scheduled(slot string) rotator.Trigger {
	return rotator.Trigger{Kind: events.CauseScheduled, ID: slot, Source: events.SourceSchedule, Actor: "scheduler"}
}

// harness is a simulator, an in-memory store and what an engine needs, with
// every secret value the test made kept for the leak scan.
type harness struct {
	t      *testing.T
	fx     *lakisimtest.Fixture
	store  *memStore
	rec    *events.Recorder
	logs   *syncbuf.Buffer
	src    rotator.IssuerSource
	mu     sync.Mutex
	issued []secret.Value
}

func newHarness(t *testing.T, opts ...lakisimtest.Option) *harness {
	t.Helper()
	fx := lakisimtest.Start(t, opts...)
	h := &harness{t: t, fx: fx, store: newMemStore(fx.Clock), rec: &events.Recorder{}, logs: &syncbuf.Buffer{}}
	h.src = h.source(h.fixtureKeys())
	h.issued = append(h.issued, fx.SandboxKey, fx.ProductionKey)
	t.Cleanup(func() { h.scanForSecrets() })
	return h
}

// fixtureKeys are the fixture's management keys, one per environment.
func (h *harness) fixtureKeys() map[laki.Merchant]lakiconnect.KeySource {
	return map[laki.Merchant]lakiconnect.KeySource{
		{Environment: laki.Sandbox, MasterMerchantID: h.fx.MasterMerchantID}:    lakiconnect.StaticKey(h.fx.SandboxKey),
		{Environment: laki.Production, MasterMerchantID: h.fx.MasterMerchantID}: lakiconnect.StaticKey(h.fx.ProductionKey),
	}
}

func (h *harness) client(env laki.Environment, key secret.Value, mods ...func(*lakiconnect.Config)) *lakiconnect.Client {
	h.t.Helper()
	cfg := lakiconnect.Config{
		BaseURL: h.fx.URL(env), APIKey: key, MaxRetries: 4,
		Sleep: func(ctx context.Context, d time.Duration) error {
			// Retry-After is real time at the simulator; wait a little.
			select {
			case <-time.After(min(d, 20*time.Millisecond)):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
	for _, mod := range mods {
		mod(&cfg)
	}
	c, err := lakiconnect.NewClient(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// source is the engine's issuers over the simulator, one client per
// environment (mods set its rate limit, for one) and the keys given.
func (h *harness) source(keys map[laki.Merchant]lakiconnect.KeySource, mods ...func(*lakiconnect.Config)) rotator.IssuerSource {
	m, err := lakiconnect.NewMerchants(map[laki.Environment]*lakiconnect.Client{
		laki.Sandbox:    h.client(laki.Sandbox, h.fx.SandboxKey, mods...),
		laki.Production: h.client(laki.Production, h.fx.ProductionKey, mods...),
	}, keys)
	if err != nil {
		h.t.Fatal(err)
	}
	return rotator.Issuers(m.Client, m.InvalidateManagementKey)
}

func (h *harness) engine(mod func(*rotator.Config)) *rotator.Engine {
	h.t.Helper()
	cfg := rotator.Config{
		Store: h.store, Issuers: h.src, Clock: h.fx.Clock, Events: h.rec,
		Logger:   slog.New(slog.NewJSONHandler(h.logs, nil)),
		Verifier: webhooksig.Verifier{Clock: h.fx.Clock},
		Backoff:  rotator.Backoff{Base: time.Second, Max: 4 * time.Second},
	}
	if mod != nil {
		mod(&cfg)
	}
	e, err := rotator.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(e.Close)
	return e
}

// seedKey makes a LakiConnect key (as a person would in the dashboard) and
// stores it as the secret's AWSCURRENT.
func (h *harness) seedKey(name string, kind inventory.Kind, env laki.Environment, scopes []laki.Scope) inventory.ManagedSecret {
	h.t.Helper()
	h.store.seed(name, "00000000-0000-4000-8000-"+fmt.Sprintf("%012d", len(h.store.secrets)), h.seedCredential(name, env, scopes), nil)
	return inventory.ManagedSecret{Name: name, Kind: kind, Environment: env, MasterMerchantID: h.fx.MasterMerchantID, Policy: "p", Owners: []string{"alice"}}
}

// seedCredential makes a key for the secret name at the simulator, as
// one in use before the secret is onboarded, and returns the key's
// stored form, for any store.
func (h *harness) seedCredential(name string, env laki.Environment, scopes []laki.Scope) secret.Value {
	h.t.Helper()
	k, err := h.fx.Sim.CreateKey(env, h.fx.MasterMerchantID, "seed "+name, scopes)
	if err != nil {
		h.t.Fatal(err)
	}
	h.keep(k.Secret)
	v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(env), MasterMerchantID: h.fx.MasterMerchantID,
		KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

func (h *harness) seedWebhook(name string) (inventory.ManagedSecret, laki.WebhookSecretWithValue) {
	h.t.Helper()
	ep, ws, err := h.fx.Sim.AddWebhookEndpoint(laki.Sandbox, h.fx.MasterMerchantID, "https://hooks.example.test/"+name, []string{"api_key.exposed"})
	if err != nil {
		h.t.Fatal(err)
	}
	h.keep(ws.Secret)
	c := secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: "sandbox", MasterMerchantID: h.fx.MasterMerchantID,
		EndpointID: ep.ID, SecretID: ws.ID, Secret: ws.Secret, CreatedAt: ws.CreatedAt}
	v, err := c.Encode()
	if err != nil {
		h.t.Fatal(err)
	}
	h.store.seed(name, "00000000-0000-4000-8000-"+fmt.Sprintf("%012d", len(h.store.secrets)), v, nil)
	return inventory.ManagedSecret{Name: name, Kind: inventory.KindWebhookSecret, Environment: laki.Sandbox,
		MasterMerchantID: h.fx.MasterMerchantID, EndpointID: ep.ID, Policy: "p"}, ws
}

func (h *harness) keep(v secret.Value) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.issued = append(h.issued, v)
}

// current returns the AWSCURRENT credential and remembers its secret for the leak scan.
func (h *harness) current(name string) secretstore.Credential {
	c, _ := h.store.peek(name, secretstore.StageCurrent)
	h.keep(c.Secret)
	return c
}

// whoami calls /whoami with key, as a consumer would.
func (h *harness) whoami(env laki.Environment, key secret.Value) (laki.WhoAmI, error) {
	return h.client(env, key).WhoAmI(context.Background())
}

// rotatorKeys lists the keys the rotator made for a secret at the simulator.
func (h *harness) rotatorKeys(env laki.Environment, name string) []laki.APIKey {
	var out []laki.APIKey
	for _, k := range h.fx.Sim.Keys(env, h.fx.MasterMerchantID) {
		if k.Metadata[rotator.MetaCreatedBy] == rotator.MetaCreatedByValue && k.Metadata[rotator.MetaSecret] == name {
			out = append(out, k)
		}
	}
	return out
}

func (h *harness) key(id string) laki.APIKey {
	h.t.Helper()
	k, ok := h.fx.Sim.Key(id)
	if !ok {
		h.t.Fatalf("key %s unknown to the simulator", id)
	}
	return k
}

// scanForSecrets fails the test when any secret value it saw shows up in an
// event or a log line.
func (h *harness) scanForSecrets() {
	var all strings.Builder
	for _, e := range h.rec.Events() {
		fmt.Fprintf(&all, "%+v\n", e)
	}
	all.WriteString(h.logs.String())
	out := all.String()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.issued {
		if !s.IsZero() && strings.Contains(out, s.Reveal()) {
			h.t.Errorf("a secret value (last4 %s) appears in events or logs", s.Last4())
		}
	}
}

func (h *harness) eventsFor(name string, step events.Step, outcome events.Outcome) []events.Event {
	var out []events.Event
	for _, e := range h.rec.Events() {
		if e.Secret == name && e.Step == step && e.Outcome == outcome {
			out = append(out, e)
		}
	}
	return out
}

// settling runs fn while time passes for it as it would for a daemon: each
// time a wait of fn's is pending on the fake clock (the settle time after a
// replayed create, a backoff), the clock moves on by DefaultReplaySettle.
func (h *harness) settling(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
			if h.fx.Clock.Waiters() > 0 {
				h.fx.Clock.Advance(rotator.DefaultReplaySettle)
			}
		}
	}
}
