package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
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
	w := &world{t: t, dir: t.TempDir(), slack: newFakeSlack(t)}
	w.moto = motoserver.Start(t)
	w.port = freePort(t)
	w.apiURL = fmt.Sprintf("http://127.0.0.1:%d", w.port)
	w.token = secret.New("e2e-api-" + randomHex(t, 16))
	w.signing = secret.New(randomHex(t, 20))
	w.slackTk = secret.New("xoxb-e2e-" + randomHex(t, 12))
	w.remember(w.token.Reveal(), w.signing.Reveal(), w.slackTk.Reveal())

	w.sm = sm.New(sm.Options{
		Region: motoserver.Region, BaseEndpoint: aws.String(w.moto),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, ""),
	})
	w.startSim()
	w.seedStore()
	w.writePolicies()
	w.writeConfig()
	w.startDaemon()
	return w
}

// startSim runs lakisim with a seed: one merchant, a production management
// key with exactly the scopes rotation needs here, and the security
// webhook endpoint pointing at the daemon's receiver.
func (w *world) startSim() {
	t := w.t
	seed := fmt.Sprintf(`merchants:
  - id: %s
    keys:
      - environment: production
        name: lakirotator management (production)
        scopes: [api_keys:read, api_keys:write, payments:read]
    webhook_endpoints:
      - environment: production
        url: http://127.0.0.1:%d/v1/lakiconnect/events/production/%s
        enabled_events: [api_key.exposed, security.auth_failure_spike]
`, merchant, w.port, merchant)
	seedPath := filepath.Join(w.dir, "seed.yaml")
	writeFile(t, seedPath, seed)
	credsPath := filepath.Join(w.dir, "sim-credentials.json")
	logf, err := os.Create(filepath.Join(w.dir, "lakisim.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin("lakisim"), "-addr", "127.0.0.1:0", "-seed", seedPath, "-credentials-out", credsPath, "-rate-limit", "-1", "-spike-threshold", "-1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		logf.Close()
	})
	var creds struct {
		AdminURL string `json:"admin_url"`
		Keys     []struct {
			KeyID  string `json:"key_id"`
			Secret string `json:"secret"`
			Scopes []string
		} `json:"keys"`
		WebhookSecrets []struct {
			EndpointID string `json:"endpoint_id"`
			SecretID   string `json:"secret_id"`
			Secret     string `json:"secret"`
		} `json:"webhook_secrets"`
	}
	eventually(t, 20*time.Second, "lakisim writes its credentials file", func() bool {
		b, err := os.ReadFile(credsPath)
		return err == nil && json.Unmarshal(b, &creds) == nil
	})
	if len(creds.Keys) != 1 || len(creds.WebhookSecrets) != 1 {
		t.Fatalf("lakisim seeded %d keys and %d webhook secrets, want 1 and 1", len(creds.Keys), len(creds.WebhookSecrets))
	}
	w.simURL = strings.TrimSuffix(creds.AdminURL, "/_sim")
	w.mgmtKey = secret.New(creds.Keys[0].Secret)
	w.whSec = secret.New(creds.WebhookSecrets[0].Secret)
	w.whID = creds.WebhookSecrets[0].EndpointID
	w.remember(w.mgmtKey.Reveal(), w.whSec.Reveal())
	_ = os.Remove(credsPath) // holds secrets; nothing else needs it

	// Management key secret and the security webhook signing secret.
	now := time.Now().UTC()
	w.createSecret(mgmtSecret, secretstore.Credential{
		Type: secretstore.TypeAPIKey, Environment: "production", MasterMerchantID: merchant,
		KeyID: creds.Keys[0].KeyID, Secret: w.mgmtKey, Scopes: creds.Keys[0].Scopes, CreatedAt: now,
	}, nil)
	w.createSecret(webhookSecret, secretstore.Credential{
		Type: secretstore.TypeWebhookSecret, Environment: "production", MasterMerchantID: merchant,
		EndpointID: w.whID, SecretID: creds.WebhookSecrets[0].SecretID, Secret: w.whSec, CreatedAt: now,
	}, nil)
}

func (w *world) createSecret(name string, c secretstore.Credential, tags map[string]string) {
	w.t.Helper()
	v, err := c.Encode()
	if err != nil {
		w.t.Fatalf("encode %s: %v", name, err)
	}
	in := &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}
	for k, val := range tags {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(val)})
	}
	if _, err := w.sm.CreateSecret(context.Background(), in); err != nil {
		w.t.Fatalf("CreateSecret %s: %v", name, err)
	}
}

// seedStore creates a key at the simulator for every managed secret and
// stores it, tagged for discovery.
func (w *world) seedStore() {
	for _, mk := range managedKeys {
		var key struct {
			laki.APIKey
			Secret string `json:"secret"`
		}
		w.simAdmin("POST", "/_sim/keys", map[string]any{
			"environment": "production", "master_merchant_id": merchant, "name": "seed " + mk.name, "scopes": []string{"payments:read"},
		}, &key)
		w.remember(key.Secret)
		w.createSecret(mk.name, secretstore.Credential{
			Type: secretstore.TypeAPIKey, Environment: "production", MasterMerchantID: merchant,
			KeyID: key.ID, Secret: secret.New(key.Secret), Scopes: []string{"payments:read"}, CreatedAt: time.Now().UTC(),
		}, map[string]string{
			inventory.TagManaged: "true", inventory.TagKind: "api_key", inventory.TagEnvironment: "production",
			inventory.TagMasterMerchant: merchant, inventory.TagPolicy: mk.policy, inventory.TagOwners: strings.Join(mk.owners, " "),
		})
	}
}

func (w *world) writePolicies() {
	dir := filepath.Join(w.dir, "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	writeFile(w.t, filepath.Join(dir, "fast.yaml"), `name: fast
description: Rotated every few seconds, so that a scheduled rotation happens during the test.
kind: api_key
scopes: [payments:read]
environments: [production]
max_age: 1d
schedule: "@every 15s"
grace:
  scheduled: 24h
  personnel: 1h
  compromise: 0s
`)
	writeFile(w.t, filepath.Join(dir, "steady.yaml"), `name: steady
description: Not due during the test; rotated by triggers only.
kind: api_key
scopes: [payments:read]
environments: [production]
max_age: 45d
schedule: "0 3 1 * *"
grace:
  scheduled: 24h
  personnel: 1h
  compromise: 0s
`)
}

func (w *world) writeConfig() {
	writeFile(w.t, filepath.Join(w.dir, "api-token"), w.token.Reveal()+"\n")
	cfg := fmt.Sprintf(`version: 1
environments:
  production:
    aws:
      region: %s
      endpoint: %s
      max_attempts: 3
      timeout: 10s
    lakiconnect:
      base_url: %s/production/v1
      timeout: 10s
      master_merchants:
        - id: %s
          management_key:
            secret: %s
          security_webhook:
            endpoint_id: %s
            secret: %s
store:
  kind: aws
policies_dir: policies
discovery:
  enabled: true
  refresh_interval: 1m
engine:
  workers: 8
  attempts: 2
  max_failures: 5
  backoff_initial: 1s
  backoff_max: 2s
sweep:
  schedule: "0 0 1 1 *"
policy_scan:
  schedule: "0 0 1 1 *"
auth_watch:
  poll_interval: 1h
notifications:
  slack:
    api_url: %s/
    token: {env: E2E_SLACK_TOKEN}
    signing_secret: {env: E2E_SLACK_SIGNING_SECRET}
    channel: "%s"
    allowed_users: [%s]
  people:
    alice: U0ALICE01
  receivers:
    - name: rotations
      kind: slack
    - name: security
      kind: slack
      channel: "%s"
  routes:
    - match: {steps: [rotation], outcomes: [succeeded, failed]}
      receiver: rotations
    - match: {causes: [compromise], severities: [critical]}
      receiver: security
  dedup_window: 0s
http:
  listen: 127.0.0.1:%d
  allow_plaintext: true
  tokens:
    - name: e2e-cli
      token: {file: api-token}
audit:
  file: audit.jsonl
log:
  format: json
  level: info
`, motoserver.Region, w.moto, w.simURL, merchant, mgmtSecret, w.whID, webhookSecret,
		w.slack.srv.URL, rotationsChan, slackUser, securityChan, w.port)
	writeFile(w.t, filepath.Join(w.dir, "lakirotator.yaml"), cfg)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// daemonProc is one run of `lakirotator serve`.
type daemonProc struct {
	cmd    *exec.Cmd
	log    string // stderr file (JSON log)
	out    string // stdout file
	done   chan struct{}
	exitOK bool
	code   int
}

func (w *world) daemonEnv() []string {
	return []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + w.dir,
		"AWS_ACCESS_KEY_ID=" + motoserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + motoserver.SecretAccessKey,
		"AWS_REGION=" + motoserver.Region, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"E2E_SLACK_TOKEN=" + w.slackTk.Reveal(), "E2E_SLACK_SIGNING_SECRET=" + w.signing.Reveal(),
	}
}

func (w *world) startDaemon() {
	t := w.t
	w.daemonNo++
	d := &daemonProc{
		log:  filepath.Join(w.dir, fmt.Sprintf("daemon-%d.stderr.log", w.daemonNo)),
		out:  filepath.Join(w.dir, fmt.Sprintf("daemon-%d.stdout.log", w.daemonNo)),
		done: make(chan struct{}),
	}
	errf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	outf, err := os.Create(d.out)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(bin("lakirotator"), "serve", "--config", filepath.Join(w.dir, "lakirotator.yaml"))
	d.cmd.Env = w.daemonEnv()
	d.cmd.Stdout, d.cmd.Stderr = outf, errf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := d.cmd.Wait()
		d.code = d.cmd.ProcessState.ExitCode()
		d.exitOK = err == nil
		errf.Close()
		outf.Close()
		close(d.done)
	}()
	w.mu.Lock()
	w.daemon = d
	w.mu.Unlock()
	// However the test ends, no daemon outlives it.
	t.Cleanup(func() {
		select {
		case <-d.done:
			return
		default:
		}
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(30 * time.Second):
			_ = d.cmd.Process.Kill()
			<-d.done
		}
	})
	eventually(t, 30*time.Second, "the daemon answers /readyz", func() bool {
		select {
		case <-d.done:
			t.Fatalf("the daemon exited with %d before it was ready\n%s", d.code, w.daemonTail())
		default:
		}
		resp, err := http.Get(w.apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// stopDaemon sends SIGTERM and waits up to bound for a clean exit.
func (w *world) stopDaemon(bound time.Duration) (exitCode int, took time.Duration) {
	d := w.daemon
	start := time.Now()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.code, time.Since(start)
	case <-time.After(bound):
		_ = d.cmd.Process.Kill()
		<-d.done
		w.t.Fatalf("the daemon did not exit within %s of SIGTERM\n%s", bound, w.daemonTail())
		return -1, bound
	}
}

// daemonTail is the end of the current daemon's log, for failure messages.
func (w *world) daemonTail() string {
	w.mu.Lock()
	d := w.daemon
	w.mu.Unlock()
	if d == nil {
		return ""
	}
	b, _ := os.ReadFile(d.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return "--- daemon log (last lines) ---\n" + strings.Join(lines, "\n")
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
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, w.simURL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("lakisim %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		w.t.Fatalf("lakisim %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("lakisim %s %s: %v", method, path, err)
		}
	}
}

// simAPI calls the production Management API with a key; it returns the status.
func (w *world) simAPI(key secret.Value, method, path string, out any) int {
	w.t.Helper()
	req, _ := http.NewRequest(method, w.simURL+"/production/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("lakisim %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("lakisim %s %s: %v", method, path, err)
		}
	}
	return resp.StatusCode
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
	var all []laki.APIKey
	after := ""
	for {
		path := "/api_keys?limit=100"
		if after != "" {
			path += "&starting_after=" + url.QueryEscape(after)
		}
		var page lakiconnect.List[laki.APIKey]
		if st := w.simAPI(w.mgmtKey, "GET", path, &page); st != 200 {
			w.t.Fatalf("GET %s: status %d", path, st)
		}
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			return all
		}
		after = page.Data[len(page.Data)-1].ID
	}
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
	f, err := os.Open(filepath.Join(w.dir, "audit.jsonl"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		w.t.Fatal(err)
	}
	defer f.Close()
	var recs []auditRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line being written
		}
		recs = append(recs, r)
	}
	return recs
}

type auditRecord struct {
	Seq   uint64 `json:"seq"`
	Event struct {
		Step      string            `json:"step"`
		Outcome   string            `json:"outcome"`
		Secret    string            `json:"secret"`
		Cause     string            `json:"cause"`
		Source    string            `json:"source"`
		Actor     string            `json:"actor"`
		Reason    string            `json:"reason"`
		KeyID     string            `json:"key_id"`
		KeyLast4  string            `json:"key_last4"`
		Error     string            `json:"error"`
		TriggerID string            `json:"trigger_id"`
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
	m := hmac.New(sha256.New, []byte(secretKey.Reveal()))
	m.Write([]byte("v0:" + ts + ":" + body))
	return "v0=" + hex.EncodeToString(m.Sum(nil))
}

// fakeSlack stands in for Slack's Web API and records every message.
type fakeSlack struct {
	srv  *httptest.Server
	mu   sync.Mutex
	msgs []slackMessage
	raw  []string
	auth []string
}

type slackMessage struct {
	Channel string
	Text    string
	Blocks  []map[string]any
}

func newFakeSlack(t *testing.T) *fakeSlack {
	f := &fakeSlack{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var msg slackMessage
		var blocks string
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			var m struct {
				Channel string           `json:"channel"`
				Text    string           `json:"text"`
				Blocks  []map[string]any `json:"blocks"`
			}
			_ = json.Unmarshal(body, &m)
			msg = slackMessage{Channel: m.Channel, Text: m.Text, Blocks: m.Blocks}
		} else {
			form, _ := url.ParseQuery(string(body))
			msg = slackMessage{Channel: form.Get("channel"), Text: form.Get("text")}
			blocks = form.Get("blocks")
			_ = json.Unmarshal([]byte(blocks), &msg.Blocks)
		}
		f.mu.Lock()
		f.raw = append(f.raw, r.URL.Path+" "+string(body))
		f.auth = append(f.auth, r.Header.Get("Authorization"))
		if strings.HasSuffix(r.URL.Path, "chat.postMessage") {
			f.msgs = append(f.msgs, msg)
		}
		n := len(f.msgs)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"channel":"C0E2E","ts":"1700000000.%06d"}`, n)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSlack) messages() []slackMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]slackMessage(nil), f.msgs...)
}

// header is the message's header block text.
func (m slackMessage) header() string {
	for _, b := range m.Blocks {
		if b["type"] == "header" {
			if t, ok := b["text"].(map[string]any); ok {
				s, _ := t["text"].(string)
				return s
			}
		}
	}
	return ""
}

// fields maps each "*Label*\nvalue" section field to its value.
func (m slackMessage) fields() map[string]string {
	out := map[string]string{}
	for _, b := range m.Blocks {
		fs, _ := b["fields"].([]any)
		for _, f := range fs {
			fm, _ := f.(map[string]any)
			s, _ := fm["text"].(string)
			label, value, ok := strings.Cut(s, "\n")
			if ok {
				out[strings.Trim(label, "*")] = value
			}
		}
	}
	return out
}

// sections are the texts of section blocks without fields.
func (m slackMessage) sections() []string {
	var out []string
	for _, b := range m.Blocks {
		if b["type"] != "section" {
			continue
		}
		if t, ok := b["text"].(map[string]any); ok {
			s, _ := t["text"].(string)
			out = append(out, s)
		}
	}
	return out
}

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
