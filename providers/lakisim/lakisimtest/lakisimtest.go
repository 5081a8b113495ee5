// Package lakisimtest starts a LakiConnect simulator for a test: an
// httptest server (plain or TLS) serving both environments, a fake clock, a
// seeded master merchant with a management key holding every scope in each
// environment, and a check of every exchange against the OpenAPI document.
package lakisimtest

import (
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/openapi"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/contract"
)

// Epoch is where the fixture's clock starts unless WithClock says otherwise.
func Epoch() time.Time { return time.Date(2026, time.June, 1, 9, 0, 0, 0, time.UTC) }

// Fixture is a running simulator with a seeded merchant.
type Fixture struct {
	Sim    *lakisim.Simulator
	Clock  *clock.Fake
	Server *httptest.Server
	// SandboxURL and ProductionURL are base URLs ending in /v1.
	SandboxURL, ProductionURL string
	// MasterMerchantID is the seeded master merchant (mm_ + 16 alphanumerics).
	MasterMerchantID string
	// SandboxKey and ProductionKey are management keys of MasterMerchantID that
	// hold every scope.
	SandboxKey, ProductionKey secret.Value
	// SandboxKeyID and ProductionKeyID are their ids.
	SandboxKeyID, ProductionKeyID string
}

// URL returns the base URL of env.
func (f *Fixture) URL(env laki.Environment) string {
	if env == laki.Production {
		return f.ProductionURL
	}
	return f.SandboxURL
}

// Key returns the management key of env.
func (f *Fixture) Key(env laki.Environment) secret.Value {
	if env == laki.Production {
		return f.ProductionKey
	}
	return f.SandboxKey
}

type config struct {
	tls           bool
	clock         *clock.Fake
	mutate        []func(*lakisim.Options)
	contract      bool
	responsesOnly bool
}

// Option changes the fixture.
type Option func(*config)

// WithTLS serves over TLS; use Server.Client() (it trusts the test certificate).
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithClock uses c as the simulator's clock.
func WithClock(c *clock.Fake) Option { return func(cfg *config) { cfg.clock = c } }

// WithOptions edits the simulator's Options before it starts (Clock is
// already set to the fixture's clock).
func WithOptions(f func(*lakisim.Options)) Option {
	return func(c *config) { c.mutate = append(c.mutate, f) }
}

// WithoutContractCheck turns the OpenAPI check off entirely.
func WithoutContractCheck() Option { return func(c *config) { c.contract = false } }

// WithResponseContractOnly checks responses but not requests, for tests that
// send requests the document forbids to see the simulator refuse them.
func WithResponseContractOnly() Option { return func(c *config) { c.responsesOnly = true } }

// Start runs a simulator for the test and stops it when the test ends.
func Start(t testing.TB, opts ...Option) *Fixture {
	t.Helper()
	cfg := config{contract: true}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.clock == nil {
		cfg.clock = clock.NewFake(Epoch())
	}
	simOpts := lakisim.Options{Clock: cfg.clock, Logger: slog.New(slog.DiscardHandler)}
	for _, m := range cfg.mutate {
		m(&simOpts)
	}
	sim := lakisim.New(simOpts)
	t.Cleanup(sim.Close)

	handler := sim.Handler()
	if cfg.contract {
		var copts []contract.Option
		if cfg.responsesOnly {
			copts = append(copts, contract.ResponsesOnly())
		}
		mw, err := contract.Middleware(openapi.Spec(), func(v contract.Violation) { t.Errorf("%s", v) }, copts...)
		if err != nil {
			t.Fatalf("lakisimtest: %v", err)
		}
		handler = mw(handler)
	}
	var srv *httptest.Server
	if cfg.tls {
		srv = httptest.NewTLSServer(handler)
	} else {
		srv = httptest.NewServer(handler)
	}
	t.Cleanup(srv.Close)

	f := &Fixture{
		Sim: sim, Clock: cfg.clock, Server: srv,
		SandboxURL:       srv.URL + "/sandbox/v1",
		ProductionURL:    srv.URL + "/production/v1",
		MasterMerchantID: sim.AddMasterMerchant(""),
	}
	sk, err := sim.CreateKey(laki.Sandbox, f.MasterMerchantID, "management (sandbox)", laki.AllScopes)
	if err != nil {
		t.Fatalf("lakisimtest: seed sandbox key: %v", err)
	}
	pk, err := sim.CreateKey(laki.Production, f.MasterMerchantID, "management (production)", laki.AllScopes)
	if err != nil {
		t.Fatalf("lakisimtest: seed production key: %v", err)
	}
	f.SandboxKey, f.SandboxKeyID = sk.Secret, sk.ID
	f.ProductionKey, f.ProductionKeyID = pk.Secret, pk.ID
	return f
}

// SandboxMerchants reaches the seeded merchant in sandbox with its
// management key, through a sandbox client that mods configure.
func (f *Fixture) SandboxMerchants(t testing.TB, mods ...func(*lakiconnect.Config)) *lakiconnect.Merchants {
	t.Helper()
	cfg := lakiconnect.Config{BaseURL: f.SandboxURL, APIKey: f.SandboxKey}
	for _, mod := range mods {
		mod(&cfg)
	}
	client, err := lakiconnect.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	merchants, err := lakiconnect.NewMerchants(map[laki.Environment]*lakiconnect.Client{laki.Sandbox: client},
		map[laki.Merchant]lakiconnect.KeySource{{Environment: laki.Sandbox, MasterMerchantID: f.MasterMerchantID}: lakiconnect.StaticKey(f.SandboxKey)})
	if err != nil {
		t.Fatal(err)
	}
	return merchants
}
