package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/fakeslack"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

const (
	merchant      = "mm_E2ETEST000000001" // mm_ + 16 alphanumerics
	mgmtSecret    = "e2e/production/management"
	webhookSecret = "e2e/production/security-webhook"
	slackUser     = "U0ALLOWED1"
	rotationsChan = "#e2e-rotations"
	securityChan  = "#e2e-security"
)

// Managed API key secrets: name, policy, owners.
type managedKey struct {
	name, policy string
	owners       []string
}

var managedKeys = []managedKey{
	{"payments/production/fast-api-key", "fast", []string{"carol"}},
	{"payments/production/alice-checkout", "steady", []string{"alice", "payments-team"}},
	{"payments/production/alice-refunds", "steady", []string{"alice"}},
	{"payments/production/bob-reporting", "steady", []string{"bob"}},
	{"payments/production/exposed-key", "steady", []string{"dave"}},
	{"payments/production/failing-key", "steady", []string{"erin"}},
	{"payments/production/slack-key", "steady", []string{"frank"}},
	{"payments/production/batch-1", "steady", []string{"batch-team"}},
	{"payments/production/batch-2", "steady", []string{"batch-team"}},
	{"payments/production/batch-3", "steady", []string{"batch-team"}},
	{"payments/production/batch-4", "steady", []string{"batch-team"}},
}

// world is everything the scenarios share: the processes, the fakes, and
// every secret value the tests created or read (for the final leak scan).
type world struct {
	t       *testing.T
	dir     string
	moto    string
	simURL  string // base, without /production/v1
	apiURL  string // the daemon's
	port    int
	sm      *sm.Client
	slack   *fakeSlack
	mgmtKey secret.Value
	whSec   secret.Value
	whID    string // endpoint id
	token   secret.Value
	signing secret.Value
	slackTk secret.Value

	mu       sync.Mutex
	secrets  []string // every secret value seen
	outputs  []string // every CLI output captured
	daemon   *daemonProc
	daemonNo int
}

func (w *world) remember(vals ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, v := range vals {
		if v != "" {
			w.secrets = append(w.secrets, v)
		}
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newWorld starts moto, the simulator, fake Slack and the daemon.
func newWorld(t *testing.T) *world {
	w := newMotoWorld(t)
	w.startSim()
	w.seedStore()
	w.writePolicies()
	w.writeConfig()
	w.startDaemon()
	return w
}

// newBareWorld is a world with its directory, the daemon's port and API
// token, and nothing running.
func newBareWorld(t *testing.T) *world {
	w := &world{t: t, dir: t.TempDir()}
	w.port = freePort(t)
	w.apiURL = fmt.Sprintf("http://127.0.0.1:%d", w.port)
	w.token = secret.New("e2e-api-" + randomHex(t, 16))
	w.remember(w.token.Reveal())
	return w
}

// newMotoWorld adds moto and fake Slack to a bare world.
func newMotoWorld(t *testing.T) *world {
	w := newBareWorld(t)
	w.slack = newFakeSlack(t)
	w.moto = motoserver.Start(t)
	w.signing = secret.New(randomHex(t, 20))
	w.slackTk = secret.New("xoxb-e2e-" + randomHex(t, 12))
	w.remember(w.signing.Reveal(), w.slackTk.Reveal())
	w.sm = smClient(w.moto)
	return w
}

// startSim runs lakisim with a seed: one merchant, a production management
// key with exactly the scopes rotation needs here, and the security
// webhook endpoint pointing at the daemon's receiver.
func (w *world) startSim() {
	creds := w.startOneMerchantSim("api_keys:read, api_keys:write, payments:read",
		fmt.Sprintf("http://127.0.0.1:%d/v1/lakiconnect/events/production/%s", w.port, merchant), "api_key.exposed, security.auth_failure_spike")

	// Management key secret and the security webhook signing secret.
	w.createSecret(mgmtSecret, apiKeyCredential(laki.Production, merchant, creds.Keys[0].KeyID, w.mgmtKey, creds.Keys[0].Scopes), nil)
	w.createSecret(webhookSecret, webhookCredential(laki.Production, merchant, w.whID, creds.WebhookSecrets[0].SecretID, w.whSec), nil)
}

// startOneMerchantSim runs lakisim seeded with the merchant, its
// production management key with scopes, and one production webhook
// endpoint at hookURL for events; the world takes the simulator's URL,
// the management key and the endpoint's signing secret.
func (w *world) startOneMerchantSim(scopes, hookURL, events string) simCredentials {
	seed := fmt.Sprintf(`merchants:
  - id: %s
    keys:
      - environment: production
        name: lakirotator management (production)
        scopes: [%s]
    webhook_endpoints:
      - environment: production
        url: %s
        enabled_events: [%s]
`, merchant, scopes, hookURL, events)
	creds := startLakisim(w.t, w.dir, seed)
	creds.requireOneEach(w.t)
	w.simURL = creds.baseURL()
	w.mgmtKey = secret.New(creds.Keys[0].Secret)
	w.whSec = secret.New(creds.WebhookSecrets[0].Secret)
	w.whID = creds.WebhookSecrets[0].EndpointID
	w.remember(w.mgmtKey.Reveal(), w.whSec.Reveal())
	return creds
}

func (w *world) createSecret(name string, c secretstore.Credential, tags map[string]string) {
	w.t.Helper()
	if err := createSecret(w.sm, name, c, tags); err != nil {
		w.t.Fatal(err)
	}
}

// seedStore creates a key at the simulator for every managed secret and
// stores it, tagged for discovery.
func (w *world) seedStore() {
	for _, mk := range managedKeys {
		w.seedKey(mk.name, mk.policy, mk.owners...)
	}
}

// seedKey creates a key at the simulator and stores it under name as a
// managed API key of policy; it returns the key's id.
func (w *world) seedKey(name, policy string, owners ...string) string {
	w.t.Helper()
	id, value := createSimKey(w.t, w.simURL, laki.Production, merchant, name)
	w.remember(value.Reveal())
	w.createSecret(name, apiKeyCredential(laki.Production, merchant, id, value, []string{"payments:read"}),
		managedTags("api_key", laki.Production, merchant, policy, owners...))
	return id
}

func (w *world) writePolicies() {
	writePolicy(w.t, w.dir, "fast", policyYAML("fast", "Rotated every few seconds, so that a scheduled rotation happens during the test.",
		"api_key", "1d", "@every 15s", "24h", "1h"))
	writePolicy(w.t, w.dir, "steady", policyYAML("steady", "Not due during the test; rotated by triggers only.",
		"api_key", "45d", "0 3 1 * *", "24h", "1h"))
}

func (w *world) writeConfig() {
	writeFile(w.t, filepath.Join(w.dir, "api-token"), w.token.Reveal()+"\n")
	cfg := serveConfig{
		environments: []string{awsEnvironment(laki.Production, w.moto, "", w.simURL, merchant, mgmtSecret, w.whID, webhookSecret)},
		store:        "aws",
		engine:       "  workers: 8\n  attempts: 2\n  max_failures: 5\n  backoff_initial: 1s\n  backoff_max: 2s\n",
		notifications: slackNotifications(w.slack.URL, rotationsChan, securityChan, "{causes: [compromise], severities: [critical]}",
			"  people:\n    alice: U0ALICE01\n"),
		port: w.port, tokenName: "e2e-cli", audit: "audit.jsonl",
	}.yaml()
	writeFile(w.t, filepath.Join(w.dir, "lakirotator.yaml"), cfg)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (w *world) daemonEnv() []string {
	return serveEnv(w.dir, w.slackTk, w.signing)
}

func (w *world) startDaemon() {
	w.mu.Lock()
	w.daemonNo++
	n := w.daemonNo
	w.mu.Unlock()
	d := startServe(w.t, w.dir, filepath.Join(w.dir, "lakirotator.yaml"), fmt.Sprintf("daemon-%d", n), w.daemonEnv())
	w.mu.Lock()
	w.daemon = d
	w.mu.Unlock()
	waitReady(w.t, d, w.apiURL, "the daemon", w.daemonTail)
}

// stopDaemon sends SIGTERM and waits up to bound for a clean exit.
func (w *world) stopDaemon(bound time.Duration) (exitCode int, took time.Duration) {
	d := w.daemon
	start := time.Now()
	if !d.terminate(bound) {
		w.t.Fatalf("the daemon did not exit within %s of SIGTERM\n%s", bound, w.daemonTail())
		return -1, bound
	}
	return d.code, time.Since(start)
}

// daemonTail is the end of the current daemon's log, for failure messages.
func (w *world) daemonTail() string {
	w.mu.Lock()
	d := w.daemon
	w.mu.Unlock()
	if d == nil {
		return ""
	}
	return logTail(d.log, "daemon log", 40)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool, context ...func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			msg := ""
			for _, c := range context {
				msg += "\n" + c()
			}
			t.Fatalf("timed out after %s waiting until %s%s", within, what, msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cliResult is one run of the lakirotator CLI.
type cliResult struct {
	code           int
	stdout, stderr string
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cli runs the lakirotator binary with args and stdin, and keeps its output
// for the leak scan.
func (w *world) cli(stdin string, args ...string) cliResult {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin("lakirotator"), args...)
	cmd.Dir = w.dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir, "USER=e2e"}
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
	if err != nil && res.code < 0 {
		w.t.Fatalf("lakirotator %v: %v", args, err)
	}
	w.mu.Lock()
	w.outputs = append(w.outputs, res.stdout, res.stderr)
	w.mu.Unlock()
	return res
}

// apiArgs are the flags that reach the running daemon.
func (w *world) apiArgs() []string {
	return []string{"--api", w.apiURL, "--token-file", filepath.Join(w.dir, "api-token")}
}

// simAdmin calls the simulator's admin API.
func (w *world) simAdmin(method, path string, body, out any) {
	w.t.Helper()
	callSimAdmin(w.t, w.simURL, method, path, body, out)
}

// simAPI calls the production Management API with a key; it returns the status.
func (w *world) simAPI(key secret.Value, method, path string, out any) int {
	w.t.Helper()
	st, _ := callSimAPI(w.t, w.simURL, laki.Production, key, method, path, out)
	return st
}

func (w *world) simKey(id string) laki.APIKey {
	w.t.Helper()
	var k laki.APIKey
	if st := w.simAPI(w.mgmtKey, "GET", "/api_keys/"+id, &k); st != 200 {
		w.t.Fatalf("GET /api_keys/%s: status %d", id, st)
	}
	return k
}

// simKeys lists every key of the merchant at the simulator.
func (w *world) simKeys() []laki.APIKey {
	w.t.Helper()
	return allSimKeys(func(path string, page *lakiconnect.List[laki.APIKey]) {
		if st := w.simAPI(w.mgmtKey, "GET", path, page); st != 200 {
			w.t.Fatalf("GET %s: status %d", path, st)
		}
	})
}

// stored reads a stage of a secret with the SDK and remembers its value.
func (w *world) stored(name, stage string) (secretstore.Credential, string) {
	w.t.Helper()
	out, err := w.sm.GetSecretValue(context.Background(), &sm.GetSecretValueInput{SecretId: aws.String(name), VersionStage: aws.String(stage)})
	if err != nil {
		w.t.Fatalf("GetSecretValue %s %s: %v", name, stage, err)
	}
	c, err := secretstore.DecodeCredential(name, secret.New(aws.ToString(out.SecretString)))
	if err != nil {
		w.t.Fatalf("%s %s: %v", name, stage, err)
	}
	w.remember(c.Secret.Reveal())
	return c, aws.ToString(out.VersionId)
}

// stages maps version id → stages of a secret.
func (w *world) stages(name string) map[string][]string {
	w.t.Helper()
	out, err := w.sm.DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		w.t.Fatalf("DescribeSecret %s: %v", name, err)
	}
	return out.VersionIdsToStages
}

func (w *world) currentKeyID(name string) string {
	c, _ := w.stored(name, "AWSCURRENT")
	return c.KeyID
}

// whoami reports whether key authenticates at the simulator.
func (w *world) whoami(key secret.Value) bool {
	return w.simAPI(key, "GET", "/whoami", nil) == 200
}

// auditRecords reads the daemon's audit file.
func (w *world) auditRecords() []auditRecord {
	w.t.Helper()
	recs, err := readJSONLines[auditRecord](filepath.Join(w.dir, "audit.jsonl"))
	if err != nil {
		w.t.Fatal(err)
	}
	return recs
}

// auditRecord is one record of a daemon's audit file.
type auditRecord struct {
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
	Event struct {
		Step      string            `json:"step"`
		Outcome   string            `json:"outcome"`
		Severity  string            `json:"severity"`
		Secret    string            `json:"secret"`
		Cause     string            `json:"cause"`
		Source    string            `json:"source"`
		Actor     string            `json:"actor"`
		Reason    string            `json:"reason"`
		KeyID     string            `json:"key_id"`
		KeyLast4  string            `json:"key_last4"`
		Error     string            `json:"error"`
		TriggerID string            `json:"trigger_id"`
		VersionID string            `json:"version_id"`
		Details   map[string]string `json:"details"`
	} `json:"event"`
}

func (w *world) findAudit(match func(auditRecord) bool) []auditRecord {
	var out []auditRecord
	for _, r := range w.auditRecords() {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

func (w *world) auditTail() string {
	recs := w.auditRecords()
	if len(recs) > 30 {
		recs = recs[len(recs)-30:]
	}
	var b strings.Builder
	b.WriteString("--- audit (last records) ---\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "%d %s/%s %s cause=%s source=%s reason=%q err=%q\n", r.Seq, r.Event.Step, r.Event.Outcome, r.Event.Secret, r.Event.Cause, r.Event.Source, r.Event.Reason, r.Event.Error)
	}
	return b.String()
}

// slackSign signs a slash command body the way Slack does.
func slackSign(secretKey secret.Value, ts, body string) string {
	return fakeslack.Signature(secretKey.Reveal(), ts, body)
}

// fakeSlack stands in for Slack's Web API and records every message.
type fakeSlack struct{ *fakeslack.Server }

// slackMessage is one chat.postMessage.
type slackMessage struct{ fakeslack.Message }

func newFakeSlack(t *testing.T) *fakeSlack {
	return &fakeSlack{fakeslack.Start(t, fakeslack.Options{Channel: "C0E2E"})}
}

func (f *fakeSlack) messages() []slackMessage {
	var out []slackMessage
	for _, m := range f.Messages() {
		out = append(out, slackMessage{m})
	}
	return out
}

// raw is every call as "path body", for the leak scan.
func (f *fakeSlack) raw() []string {
	var out []string
	for _, c := range f.Calls() {
		out = append(out, c.Path+" "+c.Body)
	}
	return out
}

// header is the message's header block text.
func (m slackMessage) header() string { return m.Header() }

// fields maps each "*Label*\nvalue" section field to its value.
func (m slackMessage) fields() map[string]string { return m.Fields() }

// sections are the texts of section blocks without fields.
func (m slackMessage) sections() []string { return m.Sections() }

func (f *fakeSlack) find(match func(slackMessage) bool) []slackMessage {
	var out []slackMessage
	for _, m := range f.messages() {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

func (f *fakeSlack) dump() string {
	var b strings.Builder
	b.WriteString("--- slack messages ---\n")
	for _, m := range f.messages() {
		fmt.Fprintf(&b, "%s %q %v\n", m.Channel, m.header(), m.fields())
	}
	return b.String()
}
