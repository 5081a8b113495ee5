package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"

	"github.com/lakirotator/lakirotator/cli"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/httpapi/openapitest"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

const testToken = "cli-test-token-0123456789abcdef"

type result struct {
	code     int
	out, err string
}

func run(env map[string]string, args ...string) result {
	// The engine's goroutines log to Err while the command writes: lock like a file would.
	var out, errb syncbuf.Buffer
	code := cli.Main(args, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb, Env: func(k string) string { return env[k] }})
	return result{code, out.String(), errb.String()}
}

// cliWorld is a simulator, a local store file and a config the CLI reads.
type cliWorld struct {
	fix     *lakisimtest.Fixture
	dir     string
	cfgPath string
	env     map[string]string
	secrets []secret.Value
}

// newCLIWorld seeds sandbox secrets: app/checkout (owners alice) holding a key
// with checkoutScopes, app/reporting (bob), and, when brokenWebhook, an
// alice-owned webhook secret whose endpoint does not exist at LakiConnect.
func newCLIWorld(t *testing.T, checkoutScopes []laki.Scope, brokenWebhook bool) *cliWorld {
	t.Helper()
	// The CLI runs on the real clock; the simulator's stays within seconds of it.
	fix := lakisimtest.Start(t, lakisimtest.WithClock(clock.NewFake(time.Now().UTC())))
	w := &cliWorld{fix: fix, dir: t.TempDir(), env: map[string]string{"LAKIROTATOR_TOKEN": testToken, "USER": "tester"}}
	w.secrets = append(w.secrets, fix.SandboxKey, fix.ProductionKey)
	ctx := context.Background()
	st, err := localstore.Open(filepath.Join(w.dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	mm := fix.MasterMerchantID
	put := func(name string, k laki.APIKeyWithSecret) {
		w.secrets = append(w.secrets, k.Secret)
		var scopes []string
		for _, s := range k.Scopes {
			scopes = append(scopes, string(s))
		}
		v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "sandbox", MasterMerchantID: mm, KeyID: k.ID, Secret: k.Secret, Scopes: scopes, CreatedAt: time.Now().UTC()}.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Create(ctx, name, "", nil, &v); err != nil {
			t.Fatal(err)
		}
	}
	mgmt, err := fix.Sim.CreateKey(laki.Sandbox, mm, "management", []laki.Scope{
		laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite, laki.ScopeWebhooksRead, laki.ScopeWebhooksWrite,
		laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead, laki.ScopeReportsRead})
	if err != nil {
		t.Fatal(err)
	}
	put("mgmt/sandbox", mgmt)
	ck, err := fix.Sim.CreateKey(laki.Sandbox, mm, "app/checkout", checkoutScopes)
	if err != nil {
		t.Fatal(err)
	}
	put("app/checkout", ck)
	rk, err := fix.Sim.CreateKey(laki.Sandbox, mm, "app/reporting", []laki.Scope{laki.ScopeReportsRead})
	if err != nil {
		t.Fatal(err)
	}
	put("app/reporting", rk)
	webhook := ""
	if brokenWebhook {
		v, _ := secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: "sandbox", MasterMerchantID: mm,
			EndpointID: "we_000000000000000000000000", SecretID: "whs_000000000000000000000000", Secret: secret.New("whsec_not_at_lakiconnect_0123456789"), CreatedAt: time.Now().UTC()}.Encode()
		if _, err := st.Create(ctx, "app/hook", "", nil, &v); err != nil {
			t.Fatal(err)
		}
		webhook = "  - {name: app/hook, kind: webhook_secret, environment: sandbox, master_merchant_id: " + mm + ", endpoint_id: we_000000000000000000000000, policy: webhooks, owners: [alice]}\n"
	}
	pol := filepath.Join(w.dir, "policies")
	if err := os.MkdirAll(pol, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"checkout.yaml":  "name: checkout\nkind: api_key\nscopes: [payments:read, payments:write, customers:read]\nenvironments: [sandbox]\nmax_age: 30d\nschedule: \"0 3 * * *\"\ngrace: {scheduled: 1h, personnel: 0s, compromise: 0s}\n",
		"reporting.yaml": "name: reporting\nkind: api_key\nscopes: [reports:read]\nenvironments: [sandbox]\nmax_age: 30d\nschedule: \"0 4 * * *\"\ngrace: {scheduled: 1h, personnel: 0s, compromise: 0s}\n",
		"webhooks.yaml":  "name: webhooks\nkind: webhook_secret\nenvironments: [sandbox]\nmax_age: 30d\nschedule: \"0 5 * * *\"\ngrace: {scheduled: 1h, personnel: 0s, compromise: 0s}\n",
	} {
		if err := os.WriteFile(filepath.Join(pol, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`version: 1
store: {kind: local, local_path: %[1]s/store.json}
policies_dir: %[1]s/policies
environments:
  sandbox:
    aws: {region: us-east-1}
    lakiconnect:
      base_url: %[2]s
      master_merchants:
        - id: %[3]s
          management_key: {secret: mgmt/sandbox}
secrets:
  - {name: app/checkout, kind: api_key, environment: sandbox, master_merchant_id: %[3]s, policy: checkout, owners: [alice]}
  - {name: app/reporting, kind: api_key, environment: sandbox, master_merchant_id: %[3]s, policy: reporting, owners: [bob]}
%[4]sengine: {backoff_initial: 1s, backoff_max: 2s, attempts: 1}
http:
  tokens:
    - name: tester
      token: {env: LAKIROTATOR_TOKEN}
audit:
  file: %[1]s/audit.jsonl
log: {format: json, level: info}
`, w.dir, fix.SandboxURL, mm, webhook)
	w.cfgPath = filepath.Join(w.dir, "config.yaml")
	if err := os.WriteFile(w.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *cliWorld) assertNoSecrets(t *testing.T, where, text string) {
	t.Helper()
	st, err := localstore.Open(filepath.Join(w.dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	values := append([]secret.Value(nil), w.secrets...)
	ctx := context.Background()
	_ = st.List(ctx, nil, func(s secretstore.Secret) error {
		for _, v := range s.Versions {
			got, err := st.Get(ctx, s.Name, secretstore.ByID(v.ID))
			if err != nil {
				continue
			}
			values = append(values, got.Value)
			if c, err := secretstore.DecodeCredential(s.Name, got.Value); err == nil {
				values = append(values, c.Secret)
			}
		}
		return nil
	})
	for _, v := range values {
		if strings.Contains(text, v.Reveal()) {
			t.Errorf("%s holds a secret value (last4 %s)", where, v.Last4())
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"status", "--bogus"}, "unknown flag"},
		{"unknown command", []string{"frobnicate"}, "unknown command"},
		{"output yaml", []string{"status", "--output", "yaml", "--api", "http://127.0.0.1:1"}, `--output "yaml"`},
		{"no daemon", []string{"status"}, "no daemon to talk to"},
		{"rotate without secret", []string{"rotate"}, "rotate needs SECRET; see `lakirotator rotate --help`"},
		{"trigger without owner", []string{"trigger", "--reason", "x", "--yes"}, "give exactly one of --owner PERSON or --all"},
		{"policy check bad severity", []string{"policy", "check", "--fail-on", "urgent"}, `--fail-on "urgent"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(nil, tc.args...)
			if r.code != cli.ExitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", r.code, cli.ExitUsage, r.err)
			}
			if !strings.Contains(r.err, tc.want) {
				t.Errorf("stderr %q does not say %q", r.err, tc.want)
			}
		})
	}
}

func TestBadConfigExitsTwoWithFileAndLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "broken.yaml")
	body := "version: 1\nenvironments:\n  sandbox:\n    aws: {region: us-east-1}\n    lakiconnect:\n      base_url: http://127.0.0.1:1/v1\n      rate_limit: 500\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(nil, "plan", "--config", path)
	if r.code != cli.ExitUsage {
		t.Fatalf("exit %d, want 2; stderr: %s", r.code, r.err)
	}
	if !strings.Contains(r.err, path+":7") {
		t.Errorf("stderr does not point at %s:7 (rate_limit 500): %s", path, r.err)
	}
	if r := run(nil, "plan", "--config", filepath.Join(dir, "missing.yaml")); r.code != cli.ExitUsage || !strings.Contains(r.err, "missing.yaml") {
		t.Errorf("missing config: exit %d, stderr %q; want 2 naming the file", r.code, r.err)
	}
}

func TestPolicyCheckExitCodes(t *testing.T) {
	t.Run("warnings only pass --fail-on critical", func(t *testing.T) {
		w := newCLIWorld(t, []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}, false)
		r := run(w.env, "policy", "check", "--config", w.cfgPath, "--fail-on", "critical")
		if r.code != cli.ExitOK {
			t.Errorf("exit %d, want 0 (the fixture's all-scope keys are warnings); out: %s err: %s", r.code, r.out, r.err)
		}
		if !strings.Contains(r.out, "unmanaged_key") {
			t.Errorf("output does not list the unmanaged fixture keys: %s", r.out)
		}
		if r := run(w.env, "policy", "check", "--config", w.cfgPath, "--fail-on", "warning"); r.code != cli.ExitViolations {
			t.Errorf("--fail-on warning: exit %d, want 3", r.code)
		}
	})
	t.Run("under-privileged key fails --fail-on critical", func(t *testing.T) {
		w := newCLIWorld(t, []laki.Scope{laki.ScopePaymentsRead}, false)
		r := run(w.env, "policy", "check", "--config", w.cfgPath, "--fail-on", "critical", "-o", "json")
		if r.code != cli.ExitViolations {
			t.Fatalf("exit %d, want 3; out: %s err: %s", r.code, r.out, r.err)
		}
		if !strings.Contains(r.out, "under_privileged") || !strings.Contains(r.out, "app/checkout") {
			t.Errorf("JSON output does not name app/checkout under_privileged: %s", r.out)
		}
		w.assertNoSecrets(t, "policy check output", r.out+r.err)
	})
}

func TestLocalTriggerPartialFailureExitsOneAndAuditVerifies(t *testing.T) {
	w := newCLIWorld(t, []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}, true)
	r := run(w.env, "trigger", "--config", w.cfgPath, "--local", "--owner", "alice", "--reason", "alice left", "--yes", "-o", "json")
	if r.code != cli.ExitFailure {
		t.Fatalf("exit %d, want 1 (one of two secrets fails); out: %s err: %s", r.code, r.out, r.err)
	}
	var final httpapi.TriggerStatus
	if err := json.Unmarshal([]byte(r.out), &final); err != nil {
		t.Fatalf("output is not the trigger's JSON: %v\n%s", err, r.out)
	}
	// The missing endpoint is a permanent failure: it fails at once (an
	// emergency is retried only when another try can fix it).
	if final.State != httpapi.StatePartial || final.Done != 1 || final.Failed != 1 {
		t.Errorf("trigger = %s (%d done, %d failed), want partial 1/1", final.State, final.Done, final.Failed)
	}
	for _, s := range final.Secrets {
		if s.Secret == "app/hook" && (s.State != httpapi.StateFailed || !strings.Contains(s.Error, "no such webhook endpoint")) {
			t.Errorf("app/hook progress %+v, want failed with its error", s)
		}
		if s.Secret == "app/checkout" && s.State != httpapi.StateSucceeded {
			t.Errorf("app/checkout progress %+v, want succeeded", s)
		}
	}
	w.assertNoSecrets(t, "trigger output", r.out+r.err)

	auditFile := filepath.Join(w.dir, "audit.jsonl")
	if r := run(nil, "audit", "verify", auditFile); r.code != cli.ExitOK {
		t.Fatalf("audit verify of the untouched trail: exit %d: %s %s", r.code, r.out, r.err)
	}
	b, err := os.ReadFile(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	w.assertNoSecrets(t, "audit trail", string(b))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("audit trail has %d records, want several", len(lines))
	}
	lines[1] = strings.Replace(lines[1], `"secret":"app/`, `"secret":"zpp/`, 1)
	tampered := filepath.Join(t.TempDir(), "tampered.jsonl")
	if err := os.WriteFile(tampered, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = run(nil, "audit", "verify", tampered)
	if r.code != cli.ExitFailure {
		t.Errorf("audit verify of an edited trail: exit %d, want 1; out: %s", r.code, r.out)
	}
	if !strings.Contains(r.out+r.err, "2") {
		t.Errorf("audit verify does not name record 2: %s %s", r.out, r.err)
	}
	if r := run(nil, "audit", "verify", filepath.Join(t.TempDir(), "none.jsonl")); r.code != cli.ExitUsage {
		t.Errorf("audit verify of a missing file: exit %d, want 2", r.code)
	}
}

func TestStatusJSONAgainstARunningAPI(t *testing.T) {
	w := newCLIWorld(t, []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}, false)
	cfg, err := config.Load(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{Stdout: &bytes.Buffer{}, LookupEnv: func(k string) (string, bool) {
		v, ok := w.env[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(ctx)
	if err := svc.Daemon.Catalog().Refresh(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(openapitest.Wrap(t, svc.Handler))
	defer srv.Close()

	r := run(w.env, "status", "-o", "json", "--api", srv.URL)
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d: %s", r.code, r.err)
	}
	var inv httpapi.Inventory
	if err := json.Unmarshal([]byte(r.out), &inv); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, r.out)
	}
	names := map[string]bool{}
	for _, s := range inv.Secrets {
		names[s.Name] = true
		if s.CurrentVersionID == "" {
			t.Errorf("%s has no current version in status", s.Name)
		}
	}
	if !names["app/checkout"] || !names["app/reporting"] {
		t.Errorf("status lists %v, want app/checkout and app/reporting", names)
	}
	w.assertNoSecrets(t, "status output", r.out+r.err)

	// The table lists the same; without the token the API refuses.
	if r := run(w.env, "status", "--api", srv.URL); r.code != cli.ExitOK || !strings.Contains(r.out, "app/checkout") {
		t.Errorf("status table: exit %d, out %s", r.code, r.out)
	}
	if r := run(map[string]string{}, "status", "--api", srv.URL); r.code != cli.ExitFailure || !strings.Contains(r.err, "401") && !strings.Contains(r.err, "bearer") {
		t.Errorf("status without a token: exit %d, stderr %q; want 1 with the refusal", r.code, r.err)
	}
	if r := run(w.env, "rotate", "app/nope", "--api", srv.URL); r.code != cli.ExitUsage || !strings.Contains(r.err, "app/nope") {
		t.Errorf("rotate of an unknown secret: exit %d, stderr %q; want 2 naming it", r.code, r.err)
	}
}
