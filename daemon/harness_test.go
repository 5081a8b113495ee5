package daemon_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
	"github.com/lakirotator/lakirotator/rotator"
)

// The managed secrets of every test world, all in sandbox.
const (
	secCheckout  = "app/checkout"
	secReporting = "app/reporting"
	secWebhook   = "app/orders-webhook"
	secMgmt      = "mgmt/sandbox"
	secSecurity  = "sec/sandbox"
	apiToken     = "test-api-token-0123456789abcdef"
	slackSigning = "test-slack-signing-secret-0123456789"
	slackUser    = "U0SECTEAM"
)

var (
	checkoutScopes  = []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}
	reportingScopes = []laki.Scope{laki.ScopeReportsRead}
	// mgmtScopes is exactly what rotation under the test policies needs.
	mgmtScopes = []laki.Scope{
		laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite, laki.ScopeWebhooksRead, laki.ScopeWebhooksWrite,
		laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead, laki.ScopeReportsRead,
	}
)

// checkoutPolicy is the checkout policy of a test world with extra lines.
func checkoutPolicy(extra string) string {
	return `name: checkout
kind: api_key
scopes: [payments:read, payments:write, customers:read]
environments: [sandbox]
max_age: 30d
schedule: "0 3 * * *"
grace: {scheduled: 1h, personnel: 0s, compromise: 0s}
` + extra
}

// defaultPolicies are the policy files of a test world, by file name.
func defaultPolicies() map[string]string {
	return map[string]string{
		"checkout.yaml": checkoutPolicy(""),
		"reporting.yaml": `name: reporting
kind: api_key
scopes: [reports:read]
environments: [sandbox]
max_age: 30d
schedule: "0 4 * * *"
grace: {scheduled: 1h, personnel: 0s, compromise: 0s}
`,
		"webhooks.yaml": `name: webhooks
kind: webhook_secret
environments: [sandbox]
max_age: 30d
schedule: "0 5 * * *"
grace: {scheduled: 1h, personnel: 0s, compromise: 0s}
`,
	}
}

type worldOptions struct {
	securityWebhook bool
	deliverTwice    bool
	slack           bool              // serve the Slack /rotate command (signing secret slackSigning, user slackUser)
	policies        map[string]string // file name → content; replaces defaults of the same name
}

// world is one test's LakiConnect simulator, local store, policies and
// config; services built from it share the store and the simulator, as two
// replicas (or a process and its restart) would.
type world struct {
	t        *testing.T
	fix      *lakisimtest.Fixture
	clk      *clock.Fake
	store    *localstore.Store
	dir      string
	cfgPath  string
	cfgYAML  []byte
	merchant string
	ln       net.Listener // the first service's listener (the security webhook points at it)
	baseURL  string
	// afterParse, when set, runs between parsing the config and building
	// the service (to show what the service no longer reads).
	afterParse func()
	// wrapStore, when set, wraps the store the services are built with.
	wrapStore func(secretstore.Store) secretstore.Store

	logs, stdout syncbuf.Buffer // every service's logs and standard output

	mu      sync.Mutex
	created []secret.Value // every secret value the test created or saw created
}

func newWorld(t *testing.T, o worldOptions) *world {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	simOpts := []lakisimtest.Option{}
	if o.securityWebhook {
		simOpts = append(simOpts, lakisimtest.WithOptions(func(so *lakisim.Options) {
			so.DeliveryClient = &http.Client{Timeout: 5 * time.Second}
			so.DeliverTwice = o.deliverTwice
			so.DeliveryBackoff = 20 * time.Millisecond
		}))
	}
	fix := lakisimtest.Start(t, simOpts...)
	w := &world{
		t: t, fix: fix, clk: fix.Clock, dir: t.TempDir(), merchant: fix.MasterMerchantID, ln: ln,
		baseURL: "http://" + ln.Addr().String(),
	}
	w.created = append(w.created, fix.SandboxKey, fix.ProductionKey)
	w.store, err = localstore.Open("", localstore.WithClock(w.clk))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sim := fix.Sim
	mm := fix.MasterMerchantID

	mk, err := sim.CreateKey(laki.Sandbox, mm, "lakirotator management", mgmtScopes)
	if err != nil {
		t.Fatal(err)
	}
	w.putKey(ctx, secMgmt, mk, nil)
	for _, s := range []struct {
		name   string
		scopes []laki.Scope
	}{{secCheckout, checkoutScopes}, {secReporting, reportingScopes}} {
		k, err := sim.CreateKey(laki.Sandbox, mm, s.name, s.scopes)
		if err != nil {
			t.Fatal(err)
		}
		w.putKey(ctx, s.name, k, nil)
	}
	ep, ws, err := sim.AddWebhookEndpoint(laki.Sandbox, mm, "https://shop.example/hooks", []string{"payment.succeeded"})
	if err != nil {
		t.Fatal(err)
	}
	w.putWebhook(ctx, secWebhook, ep.ID, ws)
	secEndpoint := ""
	if o.securityWebhook {
		sep, sws, err := sim.AddWebhookEndpoint(laki.Sandbox, mm, w.baseURL+config.SecurityWebhookPath(laki.Sandbox, mm),
			[]string{laki.EventAPIKeyExposed, laki.EventAPIKeyRevoked, laki.EventAuthFailureSpike})
		if err != nil {
			t.Fatal(err)
		}
		w.putWebhook(ctx, secSecurity, sep.ID, sws)
		secEndpoint = sep.ID
	}

	pols := defaultPolicies()
	for k, v := range o.policies {
		pols[k] = v
	}
	polDir := filepath.Join(w.dir, "policies")
	if err := os.MkdirAll(polDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range pols {
		if err := os.WriteFile(filepath.Join(polDir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if err := worldConfig.Execute(&b, map[string]string{
		"Dir": w.dir, "SimURL": fix.SandboxURL, "MM": mm, "Endpoint": ep.ID, "Security": secEndpoint,
		"Slack": map[bool]string{true: "yes"}[o.slack],
	}); err != nil {
		t.Fatal(err)
	}
	w.cfgYAML = b.Bytes()
	w.cfgPath = filepath.Join(w.dir, "config.yaml")
	if err := os.WriteFile(w.cfgPath, w.cfgYAML, 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

var worldConfig = template.Must(template.New("cfg").Parse(`version: 1
store:
  kind: local
  local_path: {{.Dir}}/store.json
policies_dir: {{.Dir}}/policies
environments:
  sandbox:
    aws: {region: us-east-1}
    lakiconnect:
      base_url: {{.SimURL}}
      master_merchants:
        - id: {{.MM}}
          management_key: {secret: mgmt/sandbox}
{{- if .Security}}
          security_webhook: {endpoint_id: {{.Security}}, secret: sec/sandbox}
{{- end}}
secrets:
  - {name: app/checkout, kind: api_key, environment: sandbox, master_merchant_id: {{.MM}}, policy: checkout, owners: [alice, payments-team]}
  - {name: app/reporting, kind: api_key, environment: sandbox, master_merchant_id: {{.MM}}, policy: reporting, owners: [bob]}
  - {name: app/orders-webhook, kind: webhook_secret, environment: sandbox, master_merchant_id: {{.MM}}, endpoint_id: {{.Endpoint}}, policy: webhooks, owners: [alice]}
engine:
  workers: 4
  backoff_initial: 1s
  backoff_max: 10s
sweep:
  schedule: "0 0 1 1 *"
  safety_margin: 25h
policy_scan:
  schedule: "0 0 1 1 *"
http:
  tokens:
    - name: tester
      token: {env: LAKIROTATOR_TEST_TOKEN}
audit:
  file: {{.Dir}}/audit.jsonl
{{- if .Slack}}
notifications:
  slack:
    webhook_url: {env: LAKIROTATOR_TEST_SLACK_WEBHOOK}
    signing_secret: {env: LAKIROTATOR_TEST_SLACK_SIGNING}
    allowed_users: [U0SECTEAM]
{{- end}}
`))

func (w *world) remember(v secret.Value) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.created = append(w.created, v)
}

func (w *world) putKey(ctx context.Context, name string, k laki.APIKeyWithSecret, tags map[string]string) {
	w.t.Helper()
	w.remember(k.Secret)
	scopes := make([]string, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = string(s)
	}
	w.put(ctx, name, tags, secretstore.Credential{
		Type: secretstore.TypeAPIKey, Environment: string(laki.Sandbox), MasterMerchantID: w.merchant,
		KeyID: k.ID, Secret: k.Secret, Scopes: scopes, CreatedAt: w.clk.Now(),
	})
}

func (w *world) putWebhook(ctx context.Context, name, endpointID string, ws laki.WebhookSecretWithValue) {
	w.t.Helper()
	w.remember(ws.Secret)
	w.put(ctx, name, nil, secretstore.Credential{
		Type: secretstore.TypeWebhookSecret, Environment: string(laki.Sandbox), MasterMerchantID: w.merchant,
		EndpointID: endpointID, SecretID: ws.ID, Secret: ws.Secret, CreatedAt: w.clk.Now(),
	})
}

func (w *world) put(ctx context.Context, name string, tags map[string]string, c secretstore.Credential) {
	w.t.Helper()
	v, err := c.Encode()
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.store.Create(ctx, name, "test secret", tags, &v); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) lookupEnv(k string) (string, bool) {
	switch k {
	case "LAKIROTATOR_TEST_TOKEN":
		return apiToken, true
	case "LAKIROTATOR_TEST_SLACK_SIGNING":
		return slackSigning, true
	case "LAKIROTATOR_TEST_SLACK_WEBHOOK":
		return "https://hooks.slack.invalid/services/T0/B0/x", true
	}
	return "", false
}

// build makes a service from the world's config, sharing its store and clock.
func (w *world) build(hooks rotator.Hooks) *daemon.Service {
	w.t.Helper()
	cfg, err := config.Parse(w.cfgPath, w.cfgYAML)
	if err != nil {
		w.t.Fatalf("config: %v", err)
	}
	if w.afterParse != nil {
		w.afterParse()
	}
	var store secretstore.Store = w.store
	if w.wrapStore != nil {
		store = w.wrapStore(store)
	}
	o := daemon.BuildOptions{
		Clock: w.clk, LookupEnv: w.lookupEnv, Stdout: &w.stdout,
		Logger: slog.New(slog.NewTextHandler(&w.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stores: map[laki.Environment]secretstore.Store{laki.Sandbox: store},
		Hooks:  hooks, RetireInterval: 24 * time.Hour, RefreshInterval: 24 * time.Hour,
	}
	svc, err := daemon.Build(context.Background(), cfg, o)
	if err != nil {
		w.t.Fatalf("build: %v", err)
	}
	return svc
}

// running is a service running under Service.Run on a listener.
type running struct {
	svc    *daemon.Service
	client *httpapi.Client
	rec    *events.Recorder
	url    string
	stop   func()
}

// run starts svc on ln (nil: a fresh loopback listener) and waits until the
// daemon has loaded its catalog. It stops when the test ends.
func (w *world) run(svc *daemon.Service, ln net.Listener) *running {
	w.t.Helper()
	return w.runTLS(svc, ln, nil)
}

// runTLS is run for a service whose listener serves TLS: the API client
// uses tlsCfg (nil: plain http).
func (w *world) runTLS(svc *daemon.Service, ln net.Listener, tlsCfg *tls.Config) *running {
	w.t.Helper()
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			w.t.Fatal(err)
		}
	}
	rec := &events.Recorder{}
	svc.Daemon.Events().Subscribe(rec)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, ln) }()
	url := "http://" + ln.Addr().String()
	if tlsCfg != nil {
		url = "https://" + ln.Addr().String()
	}
	c, err := httpapi.NewClient(url, secret.New(apiToken), tlsCfg)
	if err != nil {
		w.t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					w.t.Errorf("service run: %v", err)
				}
			case <-time.After(20 * time.Second):
				w.t.Errorf("service did not stop within 20s")
			}
		})
	}
	w.t.Cleanup(stop)
	r := &running{svc: svc, client: c, rec: rec, url: url, stop: stop}
	w.eventually("the daemon loads its catalog", func() bool {
		inv, err := c.Inventory(context.Background())
		return err == nil && len(inv.Secrets) >= 3
	})
	return r
}

// eventually polls cond, moving the fake clock a second per poll so that
// rate-limiter waits on the fake clock (and backoffs) move on.
func (w *world) eventually(what string, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(15 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
}

// waitTrigger follows a trigger through the API until it has finished.
func (w *world) waitTrigger(r *running, id string) httpapi.TriggerStatus {
	w.t.Helper()
	var st httpapi.TriggerStatus
	w.eventually("trigger "+id+" finishes", func() bool {
		var err error
		st, err = r.client.TriggerStatus(context.Background(), id)
		if err != nil {
			w.t.Fatalf("trigger status: %v", err)
		}
		return st.Finished()
	})
	return st
}

// current decodes a secret's AWSCURRENT credential.
func (w *world) current(name string) secretstore.Credential {
	w.t.Helper()
	return w.stage(name, secretstore.StageCurrent)
}

func (w *world) stage(name, stage string) secretstore.Credential {
	w.t.Helper()
	v, err := w.store.Get(context.Background(), name, secretstore.ByStage(stage))
	if err != nil {
		w.t.Fatalf("%s %s: %v", name, stage, err)
	}
	c, err := secretstore.DecodeCredential(name, v.Value)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// allStoredSecrets decodes every version of every secret in the store and
// adds them to what the test created.
func (w *world) allStoredSecrets() []secret.Value {
	w.t.Helper()
	return append(storedSecrets(w.t, w.store), w.createdSoFar()...)
}

func (w *world) createdSoFar() []secret.Value {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]secret.Value(nil), w.created...)
}

// storedSecrets reads every version of every secret in st, and the
// credential's secret of each that holds one.
func storedSecrets(t testing.TB, st *localstore.Store) []secret.Value {
	t.Helper()
	var out []secret.Value
	for _, v := range storetest.AllVersions(t, st) {
		out = append(out, v.Value)
		if c, err := secretstore.DecodeCredential(v.Secret, v.Value); err == nil {
			out = append(out, c.Secret)
		}
	}
	return out
}

// assertNoSecrets fails if any secret value appears in text.
func assertNoSecrets(t testing.TB, where, text string, values []secret.Value) {
	t.Helper()
	if len(values) == 0 {
		t.Fatalf("%s: no secret values to scan for: the scan would prove nothing", where)
	}
	for _, v := range values {
		plain := v.Reveal()
		if len(plain) < 8 {
			continue
		}
		if strings.Contains(text, plain) {
			t.Errorf("%s holds a secret value (last4 %s)", where, v.Last4())
		}
	}
}

// eventsWhere returns the recorded events that match.
func eventsWhere(rec *events.Recorder, keep func(events.Event) bool) []events.Event {
	var out []events.Event
	for _, e := range rec.Events() {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// keysFor lists every key at the simulator that was made for a secret (by
// the test's seeding, named after it, or by the rotator, with its metadata).
func keysFor(w *world, name string) []laki.APIKey {
	var out []laki.APIKey
	for _, k := range w.fix.Sim.Keys(laki.Sandbox, w.merchant) {
		if k.Name == name || k.Metadata[rotator.MetaSecret] == name {
			out = append(out, k)
		}
	}
	return out
}

var errCrash = errors.New("simulated crash")

func crashAfter(secretName string, step rotator.Boundary) rotator.Hooks {
	return rotator.Hooks{AfterStep: func(name string, s rotator.Boundary) error {
		if name == secretName && s == step {
			return fmt.Errorf("%w after %s of %s", errCrash, step, name)
		}
		return nil
	}}
}
