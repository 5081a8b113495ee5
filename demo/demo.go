// Package demo is the embedded default: the daemon with the LakiConnect
// simulator in-process, a local store in a directory of its own, policies
// with fast schedules, notifications to the terminal, and a handful of
// sandbox and production secrets. A newcomer watches keys being created,
// tested, promoted and retired within a minute, and fires triggers from a
// second terminal through the daemon's API. Nothing here is a production
// default.
//
// demo.go is long on purpose: the demo's whole setup (simulator, store,
// config, policies, seeded secrets, banner) reads as one script.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Options configure the demo.
type Options struct {
	// Dir holds the demo's store, audit trail, policies, API token and state.
	Dir string
	// Listen is the daemon's API address (default 127.0.0.1:8088; loopback only).
	Listen string
	Out    io.Writer // notifications and the banner
	Err    io.Writer // logs
	// Schedule overrides the demo policies' schedule (default "@every 30s").
	Schedule string
	// Grace overrides the scheduled grace (default 20s).
	Grace time.Duration
	// ExposeAfter is when the simulator reports the production checkout key
	// as exposed (default 75s; negative: never).
	ExposeAfter time.Duration
	// RetireInterval overrides how often old keys are checked (default 5s).
	RetireInterval time.Duration
	// Clock drives the daemon, the simulator and the exposure (default the
	// real clock; the golden test of the terminal output uses a fake one).
	Clock clock.Clock
	// Workers overrides the engine's rotation workers (default 4).
	Workers int
}

// State is what the demo leaves for the CLI's --demo verbs.
type State struct {
	API       string `json:"api"`
	TokenFile string `json:"token_file"`
}

// A demo secret and what it stands for.
type seedSecret struct {
	Name, Policy string
	Env          laki.Environment
	Kind         inventory.Kind
	Owners       string
	Scopes       []laki.Scope
	endpointURL  string
}

var (
	checkoutScopes  = []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}
	refundsScopes   = []laki.Scope{laki.ScopeRefundsRead, laki.ScopeRefundsWrite, laki.ScopePaymentsRead}
	reportingScopes = []laki.Scope{laki.ScopeReportsRead}
	// managementScopes is what rotation needs: every scope the rotator
	// grants, and the rights to manage keys and webhook secrets.
	managementScopes = []laki.Scope{
		laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeRefundsRead, laki.ScopeRefundsWrite,
		laki.ScopeCustomersRead, laki.ScopeReportsRead, laki.ScopeWebhooksRead, laki.ScopeWebhooksWrite,
		laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite,
	}
)

func seeds() []seedSecret {
	return []seedSecret{
		{Name: "demo/sandbox/checkout", Policy: "demo-checkout", Env: laki.Sandbox, Kind: inventory.KindAPIKey, Owners: "alice payments-team", Scopes: checkoutScopes},
		{Name: "demo/sandbox/reporting", Policy: "demo-reporting", Env: laki.Sandbox, Kind: inventory.KindAPIKey, Owners: "bob", Scopes: reportingScopes},
		{Name: "demo/sandbox/orders-webhook", Policy: "demo-webhooks", Env: laki.Sandbox, Kind: inventory.KindWebhookSecret, Owners: "alice", endpointURL: "https://shop.example/webhooks/lakiconnect"},
		{Name: "demo/production/checkout", Policy: "demo-checkout", Env: laki.Production, Kind: inventory.KindAPIKey, Owners: "alice payments-team", Scopes: checkoutScopes},
		{Name: "demo/production/refunds", Policy: "demo-refunds", Env: laki.Production, Kind: inventory.KindAPIKey, Owners: "carol", Scopes: refundsScopes},
	}
}

// Run starts the demo and serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Dir == "" {
		return errors.New("demo: a directory for its store and audit trail is required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8088"
	}
	if o.Schedule == "" {
		o.Schedule = "@every 30s"
	}
	if o.Grace == 0 {
		o.Grace = 20 * time.Second
	}
	if o.ExposeAfter == 0 {
		o.ExposeAfter = 75 * time.Second
	}
	if o.RetireInterval == 0 {
		o.RetireInterval = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Err == nil {
		o.Err = os.Stderr
	}
	if err := prepareDir(o.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "policies"), 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	logger := slog.New(newTerminalLog(o.Err, slog.LevelWarn))

	apiLn, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("demo: the daemon's API cannot listen on %s (is another demo running?): %w", o.Listen, err)
	}
	apiURL := "http://" + apiLn.Addr().String()

	sim := lakisim.New(lakisim.Options{Logger: slog.New(slog.DiscardHandler), Clock: o.Clock})
	defer sim.Close()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: simulator: %w", err)
	}
	simSrv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(simLn) }()
	defer simSrv.Close()
	simURL := "http://" + simLn.Addr().String()

	seeded, err := seed(ctx, o.Dir, sim, apiURL, o.Clock)
	if err != nil {
		apiLn.Close()
		return err
	}
	if err := writePolicies(filepath.Join(o.Dir, "policies"), o.Schedule, o.Grace); err != nil {
		apiLn.Close()
		return err
	}
	tokenFile := filepath.Join(o.Dir, "api-token")
	if err := writeToken(tokenFile); err != nil {
		apiLn.Close()
		return err
	}
	cfgYAML, err := renderConfig(configData{
		Dir: o.Dir, SimURL: simURL, Listen: apiLn.Addr().String(), TokenFile: tokenFile, Merchant: seeded.merchant, Workers: o.Workers,
		SecurityEndpoint: seeded.securityEndpoint, Envs: []string{"sandbox", "production"},
	})
	if err != nil {
		apiLn.Close()
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "config.yaml"), cfgYAML, 0o600); err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	cfg, err := config.Parse(filepath.Join(o.Dir, "config.yaml"), cfgYAML)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: its own config does not validate (a bug): %w", err)
	}
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{
		Logger: logger, Stdout: o.Out, RetireInterval: o.RetireInterval, RefreshInterval: 30 * time.Second, Clock: o.Clock,
	})
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	state, _ := json.Marshal(State{API: apiURL, TokenFile: tokenFile})
	if err := os.WriteFile(filepath.Join(o.Dir, "state.json"), state, 0o600); err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	defer os.Remove(filepath.Join(o.Dir, "state.json"))

	if err := svc.Daemon.Catalog().Refresh(ctx, o.Clock.Now()); err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	printBanner(o.Out, o, apiURL, len(svc.Daemon.Catalog().All()))
	if o.ExposeAfter > 0 {
		go exposeLater(ctx, o, sim, "demo/production/checkout")
	}
	stopping := make(chan struct{})
	go func() {
		<-ctx.Done()
		fmt.Fprintln(o.Out, "\nlakirotator demo: stopping: finishing the rotations in hand, starting nothing new")
		close(stopping)
	}()
	err = svc.Run(ctx, apiLn)
	if ctx.Err() != nil {
		<-stopping
	}
	fmt.Fprintf(o.Out, "lakirotator demo: stopped. Its audit trail stays in %s until the next `serve --demo`, which starts afresh.\n",
		filepath.Join(o.Dir, "audit.jsonl"))
	return err
}

type seeded struct {
	merchant         string
	securityEndpoint string
	store            *localstore.Store
}

// seed creates the merchant, the management keys, the webhook endpoints and
// the first credential of every demo secret, and stores them.
func seed(ctx context.Context, dir string, sim *lakisim.Simulator, apiURL string, clk clock.Clock) (seeded, error) {
	now := clk.Now().UTC()
	mm := sim.AddMasterMerchant("")
	st, err := localstore.Open(filepath.Join(dir, "store.json"), localstore.WithClock(clk))
	if err != nil {
		return seeded{}, fmt.Errorf("demo: local store: %w", err)
	}
	put := func(name string, tags map[string]string, c secretstore.Credential) error {
		v, err := c.Encode()
		if err != nil {
			return fmt.Errorf("demo: %s: %w", name, err)
		}
		_, err = st.Create(ctx, name, "lakirotator demo secret", tags, &v)
		return err
	}
	for _, env := range []laki.Environment{laki.Sandbox, laki.Production} {
		k, err := sim.CreateKey(env, mm, "lakirotator management key", managementScopes)
		if err != nil {
			return seeded{}, fmt.Errorf("demo: management key: %w", err)
		}
		if err := put("demo/"+string(env)+"/management-key", nil, secretstore.Credential{
			Type: secretstore.TypeAPIKey, Environment: string(env), MasterMerchantID: mm, KeyID: k.ID,
			Secret: k.Secret, Scopes: laki.ScopeNames(k.Scopes), CreatedAt: now,
		}); err != nil {
			return seeded{}, err
		}
	}
	// The production security webhook points at the daemon's own receiver.
	secEP, secSecret, err := sim.AddWebhookEndpoint(laki.Production, mm,
		apiURL+config.SecurityWebhookPath(laki.Production, mm), []string{laki.EventAPIKeyExposed, laki.EventAPIKeyRevoked, laki.EventAuthFailureSpike})
	if err != nil {
		return seeded{}, fmt.Errorf("demo: security webhook: %w", err)
	}
	if err := put("demo/production/security-webhook", nil, secretstore.Credential{
		Type: secretstore.TypeWebhookSecret, Environment: string(laki.Production), MasterMerchantID: mm,
		EndpointID: secEP.ID, SecretID: secSecret.ID, Secret: secSecret.Secret, CreatedAt: now,
	}); err != nil {
		return seeded{}, err
	}
	for _, s := range seeds() {
		tags := map[string]string{
			inventory.TagManaged: "true", inventory.TagKind: string(s.Kind), inventory.TagEnvironment: string(s.Env),
			inventory.TagMasterMerchant: mm, inventory.TagPolicy: s.Policy, inventory.TagOwners: s.Owners,
		}
		c := secretstore.Credential{Environment: string(s.Env), MasterMerchantID: mm, CreatedAt: now}
		switch s.Kind {
		case inventory.KindWebhookSecret:
			ep, ws, err := sim.AddWebhookEndpoint(s.Env, mm, s.endpointURL, []string{"payment.succeeded"})
			if err != nil {
				return seeded{}, fmt.Errorf("demo: %s: %w", s.Name, err)
			}
			tags[inventory.TagEndpointID] = ep.ID
			c.Type, c.EndpointID, c.SecretID, c.Secret = secretstore.TypeWebhookSecret, ep.ID, ws.ID, ws.Secret
		default:
			k, err := sim.CreateKey(s.Env, mm, s.Name, s.Scopes)
			if err != nil {
				return seeded{}, fmt.Errorf("demo: %s: %w", s.Name, err)
			}
			c.Type, c.KeyID, c.Secret, c.Scopes = secretstore.TypeAPIKey, k.ID, k.Secret, laki.ScopeNames(k.Scopes)
		}
		if err := put(s.Name, tags, c); err != nil {
			return seeded{}, err
		}
	}
	return seeded{merchant: mm, securityEndpoint: secEP.ID, store: st}, nil
}

func writeToken(path string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(hex.EncodeToString(b[:])+"\n"), 0o600)
}

type configData struct {
	Workers                                                    int
	Dir, SimURL, Listen, TokenFile, Merchant, SecurityEndpoint string
	Envs                                                       []string
}

var configTemplate = template.Must(template.New("config").Parse(`# Generated by lakirotator serve --demo.
version: 1
store:
  kind: local
  local_path: {{.Dir}}/store.json
policies_dir: {{.Dir}}/policies
environments:
{{- range $env := .Envs}}
  {{$env}}:
    aws:
      region: us-east-1
    lakiconnect:
      base_url: {{$.SimURL}}/{{$env}}/v1
      master_merchants:
        - id: {{$.Merchant}}
          management_key:
            secret: demo/{{$env}}/management-key
            policy: demo-management-key
            owners: [platform-team]
{{- if eq $env "production"}}
          security_webhook:
            endpoint_id: {{$.SecurityEndpoint}}
            secret: demo/production/security-webhook
{{- end}}
{{- end}}
discovery:
  enabled: true
  refresh_interval: 1m
engine:
  workers: {{.Workers}}
  backoff_initial: 1s
  backoff_max: 10s
sweep:
  safety_margin: 25h
notifications:
  receivers:
    - name: terminal
      kind: terminal
  routes:
    - receiver: terminal
      match:
        steps: [trigger, create, test, promote, retire, rotation, alert, sweep, violation, auth]
  dedup_window: 10s
http:
  listen: {{.Listen}}
  allow_plaintext: true
  tokens:
    - name: demo
      token:
        file: {{.TokenFile}}
audit:
  file: {{.Dir}}/audit.jsonl
log:
  format: text
  level: warn
`))

func renderConfig(d configData) ([]byte, error) {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("demo: config: %w", err)
	}
	return b.Bytes(), nil
}

// writePolicies writes the demo's policies: the example ones with fast schedules.
func writePolicies(dir, schedule string, grace time.Duration) error {
	type pol struct {
		name, kind, scopes, envs string
	}
	all := []pol{
		{"demo-checkout", "api_key", "[payments:read, payments:write, customers:read]", "[sandbox, production]"},
		{"demo-refunds", "api_key", "[refunds:read, refunds:write, payments:read]", "[production]"},
		{"demo-reporting", "api_key", "[reports:read]", "[sandbox]"},
		{"demo-webhooks", "webhook_secret", "", "[sandbox, production]"},
		{"demo-management-key", "management_key", "[" + joinScopes(managementScopes) + "]", "[sandbox, production]"},
	}
	for _, p := range all {
		var b bytes.Buffer
		fmt.Fprintf(&b, "name: %s\nkind: %s\nenvironments: %s\nmax_age: 10m\nschedule: %q\n", p.name, p.kind, p.envs, schedule)
		if p.scopes != "" {
			fmt.Fprintf(&b, "scopes: %s\n", p.scopes)
		}
		// An emergency never gives old keys more time than a scheduled rotation.
		personnel := min(5*time.Second, grace)
		fmt.Fprintf(&b, "grace:\n  scheduled: %s\n  personnel: %s\n  compromise: 0s\n", grace, personnel)
		if err := os.WriteFile(filepath.Join(dir, p.name+".yaml"), b.Bytes(), 0o600); err != nil {
			return fmt.Errorf("demo: policies: %w", err)
		}
	}
	return nil
}

func joinScopes(s []laki.Scope) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(x))
	}
	return b.String()
}
