package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/cli"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

var allScopes = []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}

// runWith runs the CLI with stdin and, when terminal is set, as if a person
// sat at it.
func runWith(env map[string]string, stdin string, terminal bool, args ...string) result {
	var out, errb syncbuf.Buffer
	code := cli.Main(args, cli.IO{In: strings.NewReader(stdin), Out: &out, Err: &errb, Terminal: &terminal,
		Env: func(k string) string { return env[k] }})
	return result{code, out.String(), errb.String()}
}

func (w *cliWorld) currentVersion(t *testing.T, name string) string {
	t.Helper()
	st, err := localstore.Open(filepath.Join(w.dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Describe(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.VersionWithStage(secretstore.StageCurrent)
	return v.ID
}

// asDemo makes the world look like a running demo: its state file and its
// config in LAKIROTATOR_DEMO_DIR, as `serve --demo` leaves them.
func (w *cliWorld) asDemo(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile(w.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	state, _ := json.Marshal(cli.DemoState{API: "http://127.0.0.1:1", TokenFile: filepath.Join(dir, "token")})
	if err := os.WriteFile(filepath.Join(dir, "state.json"), state, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LAKIROTATOR_DEMO_DIR": dir}
	for k, v := range w.env {
		env[k] = v
	}
	return env
}

// Item 1: every verb that reads a config takes --demo.
func TestDemoFlagOnConfigVerbs(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	env := w.asDemo(t)
	for _, args := range [][]string{
		{"plan", "--demo"},
		{"policy", "check", "--demo", "--fail-on", "critical"},
		{"sweep", "--demo", "-o", "json"},
		{"config", "validate", "--demo"},
	} {
		r := run(env, args...)
		if r.code != cli.ExitOK {
			t.Errorf("%v: exit %d, want 0\nstdout: %s\nstderr: %s", args, r.code, r.out, r.err)
		}
		if strings.Contains(r.err, "no config") {
			t.Errorf("%v: asks for a config although --demo was given: %s", args, r.err)
		}
	}
	r := run(env, "plan", "--demo")
	if !strings.Contains(r.out, "app/checkout") {
		t.Errorf("plan --demo does not list the demo's secrets: %s", r.out)
	}
	// No demo running: say so, and how to start one.
	r = run(map[string]string{"LAKIROTATOR_DEMO_DIR": t.TempDir()}, "plan", "--demo")
	if r.code != cli.ExitFailure || !strings.Contains(r.err, "serve --demo") {
		t.Errorf("plan --demo without a demo: exit %d, stderr %q; want 1 saying how to start it", r.code, r.err)
	}
}

// Item 7: --api (or --config) with --demo is an error, not ignored.
func TestDemoContradictionsAreRefused(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--demo", "--api", "http://127.0.0.1:1"},
		{"plan", "--demo", "--config", "x.yaml"},
		{"serve", "--demo", "--api", "http://127.0.0.1:1"},
	} {
		r := run(nil, args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.err, "and --demo: give one") {
			t.Errorf("%v: exit %d, stderr %q; want 2 naming both flags", args, r.code, r.err)
		}
		if r.out != "" {
			t.Errorf("%v: printed %q on stdout", args, r.out)
		}
	}
}

// Item 7: version, completion, examples, named missing arguments.
func TestCLIConventions(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		r := run(nil, args...)
		if r.code != 0 || !strings.HasPrefix(r.out, "lakirotator ") || !strings.Contains(r.out, runtime.Version()) {
			t.Errorf("%v: exit %d, out %q; want the version line with %s", args, r.code, r.out, runtime.Version())
		}
	}
	r := run(nil, "version", "-o", "json")
	var bi cli.BuildInfo
	if err := json.Unmarshal([]byte(r.out), &bi); err != nil || bi.GoVersion != runtime.Version() || bi.Version == "" || bi.Commit == "" {
		t.Errorf("version -o json: %v %+v\n%s", err, bi, r.out)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := run(nil, "completion", shell)
		if r.code != 0 || !strings.Contains(r.out, "lakirotator") || len(r.out) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes", shell, r.code, len(r.out))
		}
	}
	for _, verb := range [][]string{{"serve"}, {"rotate"}, {"trigger"}, {"status"}, {"inventory"}, {"plan"}, {"sweep"},
		{"policy"}, {"policy", "check"}, {"audit"}, {"audit", "verify"}, {"audit", "report"}, {"config"}, {"config", "validate"}, {"bootstrap"}, {"version"}} {
		r := run(nil, append(verb, "--help")...)
		if r.code != 0 || !strings.Contains(r.out, "Examples:\n  lakirotator "+verb[0]) {
			t.Errorf("%v --help: exit %d; no Examples section showing the verb:\n%s", verb, r.code, r.out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"rotate"}, "rotate needs SECRET; see `lakirotator rotate --help`"},
		{[]string{"audit", "verify"}, "audit verify needs FILE; see `lakirotator audit verify --help`"},
		{[]string{"audit", "report"}, "audit report needs FILE"},
		{[]string{"plan", "extra"}, "plan takes no arguments"},
		{[]string{"bootstrap"}, "bootstrap needs --environment"},
		{[]string{"status", "--log-level", "loud"}, `--log-level "loud"`},
	} {
		r := run(nil, tc.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.err, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 saying %q", tc.args, r.code, r.err, tc.want)
		}
	}
}

// Item 5: everything is validated before anyone is asked; emergencies ask;
// nobody at the terminal and no --yes means no.
func TestConfirmationComesAfterValidation(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	before := w.currentVersion(t, "app/checkout")

	r := runWith(w.env, "y\n", true, "trigger", "--local", "--config", w.cfgPath, "--owner", "alice")
	if r.code != cli.ExitUsage || !strings.Contains(r.err, "--reason is required") || strings.Contains(r.err, "Proceed?") {
		t.Errorf("trigger without --reason: exit %d, stderr %q; want 2 before any question", r.code, r.err)
	}
	r = runWith(w.env, "y\n", true, "rotate", "--local", "--config", w.cfgPath, "app/checkout", "--cause", "urgent", "--reason", "x")
	if r.code != cli.ExitUsage || !strings.Contains(r.err, `--cause "urgent"`) {
		t.Errorf("rotate --cause urgent: exit %d, stderr %q; want 2", r.code, r.err)
	}

	// A compromise rotation asks; not at a terminal and without --yes it refuses.
	r = runWith(w.env, "y\n", false, "rotate", "--local", "--config", w.cfgPath, "app/checkout", "--cause", "compromise", "--reason", "leaked")
	if r.code != cli.ExitUsage || !strings.Contains(r.err, "give --yes") || !strings.Contains(r.err, "compromise rotation of app/checkout") {
		t.Errorf("unattended compromise: exit %d, stderr %q; want 2 asking for --yes", r.code, r.err)
	}
	r = runWith(w.env, "n\n", true, "rotate", "--local", "--config", w.cfgPath, "app/checkout", "--cause", "compromise", "--reason", "leaked")
	if r.code != cli.ExitFailure || !strings.Contains(r.err, "Proceed? [y/N]") || !strings.Contains(r.err, "nothing rotated") {
		t.Errorf("compromise answered n: exit %d, stderr %q; want 1, nothing rotated", r.code, r.err)
	}
	if got := w.currentVersion(t, "app/checkout"); got != before {
		t.Fatalf("app/checkout rotated although nobody said yes")
	}
	r = runWith(w.env, "y\n", true, "rotate", "--local", "--config", w.cfgPath, "app/checkout", "--cause", "compromise", "--reason", "leaked", "-o", "json")
	if r.code != cli.ExitOK {
		t.Fatalf("compromise answered y: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	if got := w.currentVersion(t, "app/checkout"); got == before {
		t.Errorf("app/checkout did not rotate after yes")
	}
	// A manual rotation of a sandbox secret does not ask.
	r = runWith(w.env, "", false, "rotate", "--local", "--config", w.cfgPath, "app/reporting", "-o", "json")
	if r.code != cli.ExitOK || strings.Contains(r.err, "Proceed?") {
		t.Errorf("manual sandbox rotation: exit %d, stderr %q; want 0 without a question", r.code, r.err)
	}
}

// Item 6 and 12: -o json parses, lists are [] not null, and stdout holds the
// result alone (the engine's log lines stay on stderr).
func TestJSONOutputs(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	decode := func(name, text string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(text), v); err != nil {
			t.Fatalf("%s -o json is not one JSON document: %v\n%s", name, err, text)
		}
	}
	r := run(w.env, "sweep", "--config", w.cfgPath, "-o", "json")
	if r.code != 0 {
		t.Fatalf("sweep: exit %d: %s", r.code, r.err)
	}
	var sw struct {
		Environments []map[string]json.RawMessage `json:"environments"`
	}
	decode("sweep", r.out, &sw)
	if len(sw.Environments) != 1 {
		t.Fatalf("sweep environments: %s", r.out)
	}
	for _, f := range []string{"revoked", "young", "foreign"} {
		if v := string(sw.Environments[0][f]); v == "" || v == "null" {
			t.Errorf("sweep %s = %q, want a list", f, v)
		}
	}
	if strings.Contains(r.out, `"Revoked"`) {
		t.Errorf("sweep prints Go field names: %s", r.out)
	}

	r = run(w.env, "plan", "--config", w.cfgPath, "-o", "json")
	var items []map[string]any
	decode("plan", r.out, &items)
	for _, it := range items {
		if _, ok := it["violations"].([]any); !ok {
			t.Errorf("plan item %v: violations is not a list", it["secret"])
		}
	}

	r = run(w.env, "rotate", "--local", "--config", w.cfgPath, "app/reporting", "-o", "json")
	var st httpapi.TriggerStatus
	decode("rotate --local", r.out, &st)
	if st.State != httpapi.StateSucceeded {
		t.Errorf("rotate --local: %+v", st)
	}
	if strings.Contains(r.err, "lifecycle event") {
		t.Errorf("rotate --local logs every lifecycle event by default:\n%s", r.err)
	}

	r = run(w.env, "status", "--local", "--config", w.cfgPath, "-o", "json")
	var inv map[string][]map[string]any
	decode("status", r.out, &inv)
	for _, s := range inv["secrets"] {
		if _, ok := s["owners"].([]any); !ok {
			t.Errorf("status %v: owners is not a list", s["name"])
		}
	}

	// audit report follows -o json; the trail of the rotation above is there.
	r = run(w.env, "audit", "report", filepath.Join(w.dir, "audit.jsonl"), "-o", "json")
	var rep map[string]json.RawMessage
	decode("audit report", r.out, &rep)
	if _, ok := rep["secrets"]; !ok {
		t.Errorf("audit report -o json has no secrets: %s", r.out)
	}

	r = run(w.env, "config", "validate", "--config", w.cfgPath, "-o", "json")
	var vr cli.ValidateResult
	decode("config validate", r.out, &vr)
	if !vr.OK || vr.Problems == nil || vr.Online == nil {
		t.Errorf("config validate -o json: %+v", vr)
	}
	w.assertNoSecrets(t, "JSON outputs", r.out+r.err)
}

// Item 12: one malformed stored value is an error row; the rest is shown
// and the command fails at the end.
func TestPlanShowsAMalformedValueAsAnErrorRow(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	st, err := localstore.Open(filepath.Join(w.dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prev := w.currentVersion(t, "app/reporting")
	const vid = "00000000-0000-4000-8000-0000000000aa"
	if err := st.PutPending(ctx, "app/reporting", vid, secret.New(`{"format_version": 1, "type": "lakiconnect_api_key", "secret": "sk_not_json_at_all`)); err != nil {
		t.Fatal(err)
	}
	if err := st.MoveStage(ctx, "app/reporting", secretstore.StageCurrent, vid, prev); err != nil {
		t.Fatal(err)
	}
	r := run(w.env, "plan", "--config", w.cfgPath)
	if r.code != cli.ExitFailure {
		t.Errorf("exit %d, want 1", r.code)
	}
	var checkout, reporting string
	for _, line := range strings.Split(r.out, "\n") {
		switch {
		case strings.HasPrefix(line, "app/checkout "):
			checkout = line
		case strings.HasPrefix(line, "app/reporting "):
			reporting = line
		}
	}
	if checkout == "" || strings.Contains(checkout, "error") {
		t.Errorf("the readable secret is not planned: %q\n%s", checkout, r.out)
	}
	if !strings.Contains(reporting, " error ") || !strings.Contains(reporting, "malformed") {
		t.Errorf("the malformed secret is not an error row: %q", reporting)
	}
	if !strings.Contains(r.err, "1 secret(s) could not be read: app/reporting") {
		t.Errorf("stderr does not end naming it: %s", r.err)
	}
	if strings.Contains(r.out+r.err, "sk_not_json_at_all") {
		t.Errorf("the malformed value is quoted")
	}
	r = run(w.env, "plan", "--config", w.cfgPath, "-o", "json")
	var items []daemon.PlanItem
	if err := json.Unmarshal([]byte(r.out), &items); err != nil || r.code != cli.ExitFailure {
		t.Fatalf("plan -o json: exit %d, %v\n%s", r.code, err, r.out)
	}
	states := map[string]string{}
	for _, it := range items {
		states[it.Secret] = it.State
	}
	if states["app/reporting"] != daemon.PlanError || states["app/checkout"] == "" || states["app/checkout"] == daemon.PlanError {
		t.Errorf("plan states %v", states)
	}
	// policy check too shows the others' findings and fails at the end.
	r = run(w.env, "policy", "check", "--config", w.cfgPath, "--fail-on", "critical")
	if r.code != cli.ExitFailure || !strings.Contains(r.err, "app/reporting") || !strings.Contains(r.out, "unmanaged_key") {
		t.Errorf("policy check: exit %d\nout %s\nerr %s", r.code, r.out, r.err)
	}
}

// Items 2 and 3: config validate, offline and online, with distinct exit
// codes for a wrong config, a missing secret and an unreachable AWS.
func TestConfigValidate(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	sent := len(w.fix.Sim.Requests())
	r := run(w.env, "config", "validate", "--config", w.cfgPath)
	if r.code != cli.ExitOK || !strings.Contains(r.out, "valid") || !strings.Contains(r.out, "nothing was contacted") {
		t.Errorf("offline: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	if n := len(w.fix.Sim.Requests()) - sent; n != 0 {
		t.Errorf("offline validate sent %d request(s) to LakiConnect", n)
	}
	r = run(w.env, "config", "validate", "--config", w.cfgPath, "--online")
	if r.code != cli.ExitOK || !strings.Contains(r.out, "management_key_works") || strings.Contains(r.out, "FAILED") {
		t.Errorf("online: exit %d\n%s\n%s", r.code, r.out, r.err)
	}

	// A declared secret that is not in the store: exit 1, named.
	cfg, _ := os.ReadFile(w.cfgPath)
	missing := strings.Replace(string(cfg), "secrets:\n", "secrets:\n  - {name: app/ghost, kind: api_key, environment: sandbox, master_merchant_id: "+w.fix.MasterMerchantID+", policy: reporting, owners: [bob]}\n", 1)
	path := filepath.Join(w.dir, "missing.yaml")
	_ = os.WriteFile(path, []byte(missing), 0o600)
	r = run(w.env, "config", "validate", "--config", path, "--online")
	if r.code != cli.ExitFailure || !strings.Contains(r.out, `FAILED`) || !strings.Contains(r.out, `no secret "app/ghost"`) {
		t.Errorf("missing secret: exit %d\n%s\n%s", r.code, r.out, r.err)
	}

	// A policy the config names that does not exist: exit 2 with its line.
	bad := strings.Replace(string(cfg), "policy: reporting", "policy: reportng", 1)
	path = filepath.Join(w.dir, "bad.yaml")
	_ = os.WriteFile(path, []byte(bad), 0o600)
	r = run(w.env, "config", "validate", "--config", path)
	if r.code != cli.ExitUsage || !strings.Contains(r.err, path+":") || !strings.Contains(r.err, "reportng") {
		t.Errorf("unknown policy: exit %d, stderr %q", r.code, r.err)
	}
}

func TestConfigValidateOnlineWithAWSUnreachable(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	motoserver.EmptyAWSEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret-key")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	cfg, _ := os.ReadFile(w.cfgPath)
	body := strings.Replace(string(cfg), "store: {kind: local, local_path: "+w.dir+"/store.json}", "store: {kind: aws}", 1)
	body = strings.Replace(body, "aws: {region: us-east-1}", "aws: {region: us-east-1, endpoint: \""+closed+"\", max_attempts: 1}", 1)
	path := filepath.Join(w.dir, "aws.yaml")
	_ = os.WriteFile(path, []byte(body), 0o600)

	r := run(w.env, "config", "validate", "--config", path)
	if r.code != cli.ExitOK {
		t.Fatalf("offline validate of the aws config: exit %d: %s", r.code, r.err)
	}
	r = run(w.env, "config", "validate", "--config", path, "--online")
	if r.code != cli.ExitUnreachable || !strings.Contains(r.out, "UNREACHABLE") || !strings.Contains(r.out, "cannot connect to the AWS endpoint") {
		t.Errorf("online against a closed endpoint: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	// A verb that starts the engine says the same in one line; the SDK's
	// chain only with --log-level debug.
	r = run(w.env, "plan", "--config", path)
	if r.code != cli.ExitUnreachable || !strings.Contains(r.err, "cannot connect to the AWS endpoint") || strings.Contains(r.err, "operation error") {
		t.Errorf("plan: exit %d, stderr %q; want 4 and one explained line", r.code, r.err)
	}
	if !strings.Contains(r.err, "environments.sandbox.aws.endpoint") {
		t.Errorf("the explanation does not name the environment's field: %s", r.err)
	}
	r = run(w.env, "plan", "--config", path, "--log-level", "debug")
	if !strings.Contains(r.err, "operation error") {
		t.Errorf("--log-level debug does not show the SDK chain: %s", r.err)
	}
}

func TestNoAWSCredentialsIsOneLine(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	motoserver.EmptyAWSEnv(t)
	cfg, _ := os.ReadFile(w.cfgPath)
	body := strings.Replace(string(cfg), "store: {kind: local, local_path: "+w.dir+"/store.json}", "store: {kind: aws}", 1)
	body = strings.Replace(body, "aws: {region: us-east-1}", "aws: {region: us-east-1, endpoint: \"http://127.0.0.1:1\", max_attempts: 1}", 1)
	path := filepath.Join(w.dir, "aws.yaml")
	_ = os.WriteFile(path, []byte(body), 0o600)
	r := run(w.env, "serve", "--config", path)
	if r.code != cli.ExitUnreachable || !strings.Contains(r.err, "no AWS credentials found") || strings.Contains(r.err, "IMDS") {
		t.Errorf("serve without credentials: exit %d, stderr %q", r.code, r.err)
	}
	if n := strings.Count(strings.TrimSpace(r.err), "\n"); n > 1 {
		t.Errorf("stderr has %d lines, want the explanation and the debug hint:\n%s", n+1, r.err)
	}
}

// Item 4: the example config copied elsewhere reports its policies_dir at
// its line, resolved, without a doubled prefix; in place it validates.
func TestExampleConfigCopiedElsewhere(t *testing.T) {
	example, err := filepath.Abs("../config/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r := run(nil, "config", "validate", "--config", example)
	if r.code != cli.ExitOK {
		t.Fatalf("the example in place: exit %d: %s", r.code, r.err)
	}
	dir := t.TempDir()
	data, _ := os.ReadFile(example)
	copyPath := filepath.Join(dir, "lakirotator.yaml")
	_ = os.WriteFile(copyPath, data, 0o600)
	r = run(nil, "config", "validate", "--config", copyPath)
	want := copyPath + ":57:15: policies_dir: directory " + filepath.Join(filepath.Dir(dir), "policies", "examples") + " does not exist"
	if r.code != cli.ExitUsage || !strings.Contains(r.err, want) {
		t.Errorf("exit %d, stderr %q; want 2 with %q", r.code, r.err, want)
	}
	if strings.Contains(r.err, "policies: policies") || strings.Contains(r.err, "../policies") {
		t.Errorf("doubled prefix or unresolved path: %s", r.err)
	}
}

// Item 11: the rotator's own management key, named without a policy, is
// judged by the built-in policy, never reported as unmanaged.
func TestOwnManagementKeyIsNotUnmanaged(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	st, err := localstore.Open(filepath.Join(w.dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Get(context.Background(), "mgmt/sandbox", secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		t.Fatal(err)
	}
	mgmt, err := secretstore.DecodeCredential("mgmt/sandbox", v.Value)
	if err != nil {
		t.Fatal(err)
	}
	r := run(w.env, "policy", "check", "--config", w.cfgPath, "--fail-on", "critical", "-o", "json")
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d: %s %s", r.code, r.out, r.err)
	}
	var raw struct {
		Violations []map[string]string `json:"violations"`
	}
	if err := json.Unmarshal([]byte(r.out), &raw); err != nil {
		t.Fatalf("%v\n%s", err, r.out)
	}
	for _, v := range raw.Violations {
		if v["key_id"] == mgmt.KeyID && (v["reason"] == "unmanaged_key" || v["reason"] == "unknown_policy") {
			t.Errorf("the rotator's own management key is reported %s: %v", v["reason"], v)
		}
		if v["secret"] == "mgmt/sandbox" && v["policy"] != "builtin:management-key" {
			t.Errorf("the management key is judged by %q, want the built-in policy", v["policy"])
		}
	}
}

// Item 9: bootstrap stores a first management key read from stdin, after
// LakiConnect says whose it is; it never takes the key from argv.
func TestBootstrapStoresAManagementKeyFromStdin(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	cfg, _ := os.ReadFile(w.cfgPath)
	path := filepath.Join(w.dir, "fresh.yaml")
	_ = os.WriteFile(path, []byte(strings.Replace(string(cfg), "management_key: {secret: mgmt/sandbox}", "management_key: {secret: mgmt/fresh}", 1)), 0o600)
	key := w.fix.SandboxKey.Reveal()

	r := runWith(w.env, "", false, "bootstrap", "--config", path, "--environment", "sandbox")
	if r.code != cli.ExitUsage || !strings.Contains(r.err, "no key on standard input") {
		t.Errorf("empty stdin: exit %d, stderr %q", r.code, r.err)
	}
	r = runWith(w.env, w.fix.ProductionKey.Reveal()+"\n", false, "bootstrap", "--config", path, "--environment", "sandbox")
	if r.code != cli.ExitFailure || !strings.Contains(r.err, "belongs to production, not sandbox") || !strings.Contains(r.err, "nothing stored") {
		t.Errorf("a production key for sandbox: exit %d, stderr %q", r.code, r.err)
	}
	for i := range 2 { // twice: the second run writes the same version again
		r = runWith(w.env, key+"\n", false, "bootstrap", "--config", path, "--environment", "sandbox", "-o", "json")
		if r.code != cli.ExitOK {
			t.Fatalf("run %d: exit %d: %s %s", i+1, r.code, r.out, r.err)
		}
	}
	var res cli.BootstrapResult
	if err := json.Unmarshal([]byte(r.out), &res); err != nil || res.KeyID != w.fix.SandboxKeyID || res.Secret != "mgmt/fresh" {
		t.Fatalf("bootstrap -o json: %v %+v", err, res)
	}
	if strings.Contains(r.out+r.err, key) {
		t.Error("bootstrap printed the key")
	}
	st, err := localstore.Open(filepath.Join(w.dir, "store.json"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Get(context.Background(), "mgmt/fresh", secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		t.Fatal(err)
	}
	c, err := secretstore.DecodeCredential("mgmt/fresh", v.Value)
	if err != nil || c.KeyID != w.fix.SandboxKeyID || c.Secret.Reveal() != key || c.Environment != "sandbox" {
		t.Errorf("stored credential: %v key %s env %s", err, c.KeyID, c.Environment)
	}
	if v.ID != res.VersionID {
		t.Errorf("AWSCURRENT is %s, bootstrap said %s", v.ID, res.VersionID)
	}
	// The config now validates online with that key.
	if r := run(w.env, "config", "validate", "--config", path, "--online"); r.code != cli.ExitOK {
		t.Errorf("validate --online after bootstrap: exit %d\n%s", r.code, r.out)
	}
	// Another key for a secret that holds one is refused.
	other, err := w.fix.Sim.CreateKey(laki.Sandbox, w.fix.MasterMerchantID, "second", []laki.Scope{laki.ScopeAPIKeysRead})
	if err != nil {
		t.Fatal(err)
	}
	r = runWith(w.env, other.Secret.Reveal()+"\n", false, "bootstrap", "--config", path, "--environment", "sandbox")
	if r.code != cli.ExitFailure || !strings.Contains(r.err, "already holds a management key") {
		t.Errorf("a second key: exit %d, stderr %q", r.code, r.err)
	}
}

// An emergency that fails for a reason another try can fix is retried by
// the daemon until done; the CLI reports it as failing and retried instead
// of waiting forever, and exits 1.
func TestEmergencyRetriedIsReportedNotWaitedFor(t *testing.T) {
	w := newCLIWorld(t, allScopes, false)
	if err := w.fix.Sim.InjectFault(lakisim.Fault{Method: "POST", PathPrefix: "/api_keys", Status: 503}); err != nil {
		t.Fatal(err)
	}
	before := w.currentVersion(t, "app/checkout")
	r := run(w.env, "rotate", "--local", "--config", w.cfgPath, "app/checkout", "--cause", "compromise", "--reason", "leaked", "--yes")
	if r.code != cli.ExitFailure {
		t.Fatalf("exit %d, want 1\n%s\n%s", r.code, r.out, r.err)
	}
	if !strings.Contains(r.out, "app/checkout") || !strings.Contains(r.out, "retrying") || !strings.Contains(r.err, "failed and are retried") {
		t.Errorf("the retried secret is not reported as such:\nstdout %s\nstderr %s", r.out, r.err)
	}
	if got := w.currentVersion(t, "app/checkout"); got != before {
		t.Errorf("app/checkout changed although LakiConnect refused every create")
	}
}
