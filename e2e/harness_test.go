package e2e

// The parts every e2e world is built from: Secrets Manager clients on moto,
// lakisim started from a seed, secrets created as an operator onboards
// them, `lakirotator serve` run as a process, and reads of the simulator
// and of JSON-lines files. world (one daemon), fleet (replicas, two
// environments), haWorld and the Vault test put them together differently.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// motoCredentials are the static credentials moto accepts.
func motoCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
}

// smClient is a Secrets Manager client of moto's default account.
func smClient(endpoint string) *sm.Client {
	return sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: motoCredentials()})
}

// simCredentials is what lakisim writes to its -credentials-out file.
type simCredentials struct {
	AdminURL string `json:"admin_url"`
	Keys     []struct {
		Environment laki.Environment `json:"environment"`
		KeyID       string           `json:"key_id"`
		Secret      string           `json:"secret"`
		Scopes      []string         `json:"scopes"`
	} `json:"keys"`
	WebhookSecrets []struct {
		Environment laki.Environment `json:"environment"`
		EndpointID  string           `json:"endpoint_id"`
		URL         string           `json:"url"`
		SecretID    string           `json:"secret_id"`
		Secret      string           `json:"secret"`
	} `json:"webhook_secrets"`
}

// baseURL is the simulator's base URL, without /{env}/v1.
func (c simCredentials) baseURL() string { return strings.TrimSuffix(c.AdminURL, "/_sim") }

// requireOneEach fails the test unless lakisim seeded one key and one webhook secret.
func (c simCredentials) requireOneEach(t *testing.T) {
	t.Helper()
	if len(c.Keys) != 1 || len(c.WebhookSecrets) != 1 {
		t.Fatalf("lakisim seeded %d keys and %d webhook secrets, want 1 and 1", len(c.Keys), len(c.WebhookSecrets))
	}
}

// startLakisim runs lakisim in dir from seed (YAML), with rate limits and
// auth-failure spikes off, until the test ends, and returns the
// credentials it seeded. Their file is removed: it holds secrets and
// nothing else needs it.
func startLakisim(t *testing.T, dir, seed string) simCredentials {
	t.Helper()
	seedPath := filepath.Join(dir, "seed.yaml")
	writeFile(t, seedPath, seed)
	credsPath := filepath.Join(dir, "sim-credentials.json")
	logf, err := os.Create(filepath.Join(dir, "lakisim.log"))
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
	var creds simCredentials
	eventually(t, 20*time.Second, "lakisim writes its credentials file", func() bool {
		b, err := os.ReadFile(credsPath)
		return err == nil && json.Unmarshal(b, &creds) == nil
	})
	_ = os.Remove(credsPath)
	return creds
}

// callSimAdmin calls the admin API of the simulator at base; any status
// from 300 up fails the test.
func callSimAdmin(t *testing.T, base, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("lakisim %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("lakisim %s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("lakisim %s %s: %v", method, path, err)
		}
	}
}

// callSimAPI calls env's Management API at the simulator at base with key.
// It returns the status and the body, and decodes a 2xx body into out.
func callSimAPI(t *testing.T, base string, env laki.Environment, key secret.Value, method, path string, out any) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, base+"/"+string(env)+"/v1"+path, nil)
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("lakisim %s %s %s: %v", method, env, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("lakisim %s %s %s: %v", method, env, path, err)
		}
	}
	return resp.StatusCode, b
}

// allSimKeys pages through a merchant's keys; getPage reads one page.
func allSimKeys(getPage func(path string, page *lakiconnect.List[laki.APIKey])) []laki.APIKey {
	var all []laki.APIKey
	after := ""
	for {
		path := "/api_keys?limit=100"
		if after != "" {
			path += "&starting_after=" + url.QueryEscape(after)
		}
		var page lakiconnect.List[laki.APIKey]
		getPage(path, &page)
		all = append(all, page.Data...)
		if !page.HasMore || len(page.Data) == 0 {
			return all
		}
		after = page.Data[len(page.Data)-1].ID
	}
}

// createSimKey makes a payments:read key at the simulator at base, as a
// consumer holds one before it is onboarded; it returns the key's id and value.
func createSimKey(t *testing.T, base string, env laki.Environment, merchant, name string) (string, secret.Value) {
	t.Helper()
	var key struct {
		laki.APIKey
		Secret string `json:"secret"`
	}
	callSimAdmin(t, base, "POST", "/_sim/keys", map[string]any{
		"environment": env, "master_merchant_id": merchant, "name": "seed " + name, "scopes": []string{"payments:read"},
	}, &key)
	return key.ID, secret.New(key.Secret)
}

// apiKeyCredential is the stored form of an API key created now.
func apiKeyCredential(env laki.Environment, merchant, keyID string, value secret.Value, scopes []string) secretstore.Credential {
	return secretstore.Credential{
		Type: secretstore.TypeAPIKey, Environment: string(env), MasterMerchantID: merchant,
		KeyID: keyID, Secret: value, Scopes: scopes, CreatedAt: time.Now().UTC(),
	}
}

// webhookCredential is the stored form of a webhook signing secret created now.
func webhookCredential(env laki.Environment, merchant, endpointID, secretID string, value secret.Value) secretstore.Credential {
	return secretstore.Credential{
		Type: secretstore.TypeWebhookSecret, Environment: string(env), MasterMerchantID: merchant,
		EndpointID: endpointID, SecretID: secretID, Secret: value, CreatedAt: time.Now().UTC(),
	}
}

// managedTags are the discovery tags of a managed secret.
func managedTags(kind string, env laki.Environment, merchant, policy string, owners ...string) map[string]string {
	return map[string]string{
		inventory.TagManaged: "true", inventory.TagKind: kind, inventory.TagEnvironment: string(env),
		inventory.TagMasterMerchant: merchant, inventory.TagPolicy: policy, inventory.TagOwners: strings.Join(owners, " "),
	}
}

// createSecret stores cred under name with tags (in a stable order), as
// an operator onboards a secret.
func createSecret(c *sm.Client, name string, cred secretstore.Credential, tags map[string]string) error {
	v, err := cred.Encode()
	if err != nil {
		return fmt.Errorf("encode %s: %w", name, err)
	}
	in := &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if _, err := c.CreateSecret(context.Background(), in); err != nil {
		return fmt.Errorf("CreateSecret %s: %w", name, err)
	}
	return nil
}

// serveEnv is a daemon's whole environment: moto's credentials, no AWS
// config files, and the Slack secrets in the variables the configs name.
func serveEnv(home string, slackToken, slackSigning secret.Value, extra ...string) []string {
	return append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + motoserver.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + motoserver.SecretAccessKey,
		"AWS_REGION=" + motoserver.Region, "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"E2E_SLACK_TOKEN=" + slackToken.Reveal(), "E2E_SLACK_SIGNING_SECRET=" + slackSigning.Reveal(),
	}, extra...)
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

// startServe runs `lakirotator serve --config cfg` in dir with env; its
// stderr and stdout go to files in dir named after name. However the test
// ends, no daemon outlives it.
func startServe(t *testing.T, dir, cfg, name string, env []string) *daemonProc {
	t.Helper()
	d := &daemonProc{
		log:  filepath.Join(dir, name+".stderr.log"),
		out:  filepath.Join(dir, name+".stdout.log"),
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
	d.cmd = exec.Command(bin("lakirotator"), "serve", "--config", cfg)
	d.cmd.Dir = dir
	d.cmd.Env = env
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
	t.Cleanup(func() {
		if d.running() {
			d.terminate(30 * time.Second)
		}
	})
	return d
}

func (d *daemonProc) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// terminate sends SIGTERM and waits up to bound for the exit; after that
// it kills the process and reports false.
func (d *daemonProc) terminate(bound time.Duration) bool {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return true
	case <-time.After(bound):
		_ = d.cmd.Process.Kill()
		<-d.done
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (d *daemonProc) kill() {
	if d.running() {
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// waitReady waits until the daemon d, called who in messages, answers
// /readyz at apiURL; if it exits first the test fails with tail().
func waitReady(t *testing.T, d *daemonProc, apiURL, who string, tail func() string) {
	t.Helper()
	eventually(t, 30*time.Second, who+" answers /readyz", func() bool {
		if !d.running() {
			t.Fatalf("%s exited with %d before it was ready\n%s", who, d.code, tail())
		}
		resp, err := http.Get(apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// logTail is the last n lines of the file at path under a heading, for
// failure messages.
func logTail(path, heading string, n int) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "--- " + heading + " (last lines) ---\n" + strings.Join(lines, "\n")
}

// readJSONLines decodes every line of the file at path into a T. A line
// that does not decode (being written, or torn by a kill) is passed over:
// the lines after it count. A missing file has no lines.
func readJSONLines[T any](path string) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		var v T
		if json.Unmarshal(sc.Bytes(), &v) == nil {
			out = append(out, v)
		}
	}
	return out, sc.Err()
}

// serveConfig is what the e2e configs of `lakirotator serve` differ in;
// yaml renders it with what they share: discovery on, the sweep and the
// policy scan not due during a test, a slow 401/403 watch, plain HTTP on
// loopback with one API token from the file api-token, JSON logs.
type serveConfig struct {
	environments  []string // entries of the environments block
	store         string   // store.kind
	engine        string   // lines of the engine block
	notifications string   // the notifications block, "" for none
	port          int
	tokenName     string
	audit         string // the audit file
}

func (c serveConfig) yaml() string {
	return fmt.Sprintf(`version: 1
environments:
%sstore:
  kind: %s
policies_dir: policies
discovery:
  enabled: true
  refresh_interval: 1m
engine:
%ssweep:
  schedule: "0 0 1 1 *"
policy_scan:
  schedule: "0 0 1 1 *"
auth_watch:
  poll_interval: 1h
%shttp:
  listen: 127.0.0.1:%d
  allow_plaintext: true
  tokens:
    - name: %s
      token: {file: api-token}
audit:
  file: %s
log:
  format: json
  level: info
`, strings.Join(c.environments, ""), c.store, c.engine, c.notifications, c.port, c.tokenName, c.audit)
}

// awsEnvironment is an entry of a config's environments block: Secrets
// Manager at awsEndpoint (in role's account; "" for moto's default one)
// and one merchant at lakiBase with its management key and security webhook.
func awsEnvironment(env laki.Environment, awsEndpoint, role, lakiBase, merchant, mgmtSecret, hookEndpointID, hookSecret string) string {
	if role != "" {
		role = "\n      role_arn: " + role
	}
	return fmt.Sprintf(`  %s:
    aws:
      region: %s
      endpoint: %s%s
      max_attempts: 3
      timeout: 10s
    lakiconnect:
      base_url: %s/%s/v1
      timeout: 10s
      master_merchants:
        - id: %s
          management_key:
            secret: %s
          security_webhook:
            endpoint_id: %s
            secret: %s
`, env, motoserver.Region, awsEndpoint, role, lakiBase, env, merchant, mgmtSecret, hookEndpointID, hookSecret)
}

// slackNotifications is a notifications block on the fake Slack at
// slackURL: rotations' outcomes to the rotations channel, what
// securityMatch matches to the security channel; people are extra lines
// of the block (a people map).
func slackNotifications(slackURL, rotations, security, securityMatch, people string) string {
	return fmt.Sprintf(`notifications:
  slack:
    api_url: %s/
    token: {env: E2E_SLACK_TOKEN}
    signing_secret: {env: E2E_SLACK_SIGNING_SECRET}
    channel: "%s"
    allowed_users: [%s]
%s  receivers:
    - name: rotations
      kind: slack
    - name: security
      kind: slack
      channel: "%s"
  routes:
    - match: {steps: [rotation], outcomes: [succeeded, failed]}
      receiver: rotations
    - match: %s
      receiver: security
  dedup_window: 0s
`, slackURL, rotations, slackUser, people, security, securityMatch)
}

// smClientInRole is a Secrets Manager client in the account of role,
// assumed at moto's STS, as the daemon reaches another account.
func smClientInRole(endpoint, role string) (*sm.Client, error) {
	st := sts.New(sts.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint), Credentials: motoCredentials()})
	out, err := st.AssumeRole(context.Background(), &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("e2e")})
	if err != nil {
		return nil, fmt.Errorf("AssumeRole %s at moto: %w", role, err)
	}
	c := out.Credentials
	return sm.New(sm.Options{
		Region: motoserver.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken)),
	}), nil
}

// startProxy is a reverse proxy to target on loopback until the test
// ends. forward sees each request and its body first; it may hold the
// request back, and drops it by returning false.
func startProxy(t *testing.T, target string, forward func(r *http.Request, body []byte) bool) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	// A killed replica's calls end mid-way; that is the test, not news.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if forward(r, body) {
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// policyYAML is a policy file for production: kind with, for API keys,
// the scope payments:read; grace scheduled and personnel as given, none
// for a compromise.
func policyYAML(name, description, kind, maxAge, schedule, scheduledGrace, personnelGrace string) string {
	scopes := ""
	if kind == "api_key" {
		scopes = "scopes: [payments:read]\n"
	}
	return fmt.Sprintf("name: %s\ndescription: %s\nkind: %s\n%senvironments: [production]\nmax_age: %s\nschedule: %q\n"+
		"grace:\n  scheduled: %s\n  personnel: %s\n  compromise: 0s\n", name, description, kind, scopes, maxAge, schedule, scheduledGrace, personnelGrace)
}

// writePolicy writes the policy file name.yaml to root's policies directory.
func writePolicy(t *testing.T, root, name, yaml string) {
	t.Helper()
	dir := filepath.Join(root, "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, name+".yaml"), yaml)
}
