package e2e

// The fleet: moto, lakisim, fake Slack and any number of `lakirotator
// serve` replicas on one store, with API keys and webhook secrets in
// sandbox and production, for the chaos and replica tests. Sandbox lives
// in its own AWS account (a role assumed through moto's STS), as in
// config/example.yaml.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

const (
	fleetMerchant    = "mm_FLEETTEST0000001"
	sandboxRoleARN   = "arn:aws:iam::111111111111:role/lakirotator-sandbox"
	fleetTokenName   = "fleet-api"
	fleetRotations   = "#fleet-rotations"
	fleetSecurity    = "#fleet-security"
	fleetOwnerAll    = "fleet-team" // owns every managed secret of the fleet
	fleetOwnerPeople = "ursula"     // owns a mixed subset: the personnel trigger
)

var envs = []laki.Environment{laki.Production, laki.Sandbox}

// fleetSecret is one managed secret of the fleet.
type fleetSecret struct {
	name       string
	kind       string // api_key | webhook_secret
	env        laki.Environment
	policy     string
	owners     []string
	endpointID string // webhook secrets
}

// fleet is the shared world of the chaos and replica tests.
type fleet struct {
	t       *testing.T
	dir     string
	moto    string
	sm      map[laki.Environment]*sm.Client
	simURL  string // base, without /{env}/v1
	slack   *fakeSlack
	token   secret.Value
	signing secret.Value
	slackTk secret.Value
	mgmt    map[laki.Environment]secret.Value
	secHook map[laki.Environment]struct {
		endpointID string
		secret     secret.Value
	}
	secrets  []fleetSecret
	replicas []*replica
	schedule string // the cron spec of the "slot" policy (replica tests)
	engine   string // extra config lines of the engine block

	mu       sync.Mutex
	versions map[string]string // secret name + "\x00" + version id → credential id (values never change)
}

// replica is one `lakirotator serve` configuration and its current process.
type replica struct {
	no     int
	port   int
	apiURL string
	cfg    string
	audit  string
	laki   string // the LakiConnect base it calls (the simulator, or a delaying proxy)
	aws    string // the Secrets Manager endpoint it calls (moto, or a delaying proxy)
	proc   *daemonProc
	starts int
}

type fleetOptions struct {
	replicas int
	// lakiProxy / awsProxy put a delaying proxy between a replica and
	// LakiConnect / moto, keyed by replica number.
	lakiProxy map[int]*delayProxy
	awsProxy  map[int]*delayProxy
	// schedule of the "slot" policy; empty: not due during a test.
	schedule string
	// engine holds extra lines of the config's engine block.
	engine string
}

// newFleet starts moto, the simulator and fake Slack, seeds managed secrets,
// and writes one config per replica. It starts no daemon.
func newFleet(t *testing.T, o fleetOptions) *fleet {
	f := &fleet{t: t, dir: t.TempDir(), slack: newFakeSlack(t), versions: map[string]string{}, schedule: o.schedule, engine: o.engine}
	f.moto = motoserver.Start(t)
	f.token = secret.New("fleet-api-" + randomHex(t, 16))
	f.signing = secret.New(randomHex(t, 20))
	f.slackTk = secret.New("xoxb-fleet-" + randomHex(t, 12))
	if o.replicas == 0 {
		o.replicas = 1
	}
	for i := 0; i < o.replicas; i++ {
		port := freePort(t)
		r := &replica{no: i, port: port, apiURL: fmt.Sprintf("http://127.0.0.1:%d", port),
			cfg: filepath.Join(f.dir, fmt.Sprintf("replica-%d.yaml", i)), audit: fmt.Sprintf("audit-%d.jsonl", i)}
		f.replicas = append(f.replicas, r)
	}
	f.sm = map[laki.Environment]*sm.Client{
		laki.Production: smClient(f.moto),
		laki.Sandbox:    f.assumedClient(sandboxRoleARN),
	}
	f.startSim()
	f.seed()
	f.writePolicies()
	for _, r := range f.replicas {
		r.laki, r.aws = f.simURL, f.moto
		if p := o.lakiProxy[r.no]; p != nil {
			r.laki = p.start(t, f.simURL)
		}
		if p := o.awsProxy[r.no]; p != nil {
			r.aws = p.start(t, f.moto)
		}
		f.writeConfig(r)
	}
	return f
}

// assumedClient is a Secrets Manager client in the account of role, through
// moto's STS, as the daemon reaches the sandbox account.
func (f *fleet) assumedClient(role string) *sm.Client {
	c, err := smClientInRole(f.moto, role)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

func (f *fleet) receiverURL(r *replica, env laki.Environment) string {
	return fmt.Sprintf("%s/v1/lakiconnect/events/%s/%s", r.apiURL, env, fleetMerchant)
}

// startSim runs lakisim seeded with a management key and a security
// webhook endpoint per environment (delivering to replica 0), and one
// managed webhook endpoint per environment.
func (f *fleet) startSim() {
	t := f.t
	scopes := "[api_keys:read, api_keys:write, webhooks:read, webhooks:write, payments:read]"
	var b strings.Builder
	fmt.Fprintf(&b, "merchants:\n  - id: %s\n    keys:\n", fleetMerchant)
	for _, env := range envs {
		fmt.Fprintf(&b, "      - environment: %s\n        name: lakirotator management (%s)\n        scopes: %s\n", env, env, scopes)
	}
	b.WriteString("    webhook_endpoints:\n")
	for _, env := range envs {
		fmt.Fprintf(&b, "      - environment: %s\n        url: %s\n        enabled_events: [api_key.exposed, api_key.revoked]\n", env, f.receiverURL(f.replicas[0], env))
		fmt.Fprintf(&b, "      - environment: %s\n        url: https://orders.example.invalid/%s/hooks\n        enabled_events: [test.ping]\n", env, env)
	}
	creds := startLakisim(t, f.dir, b.String())
	f.simURL = creds.baseURL()
	f.mgmt = map[laki.Environment]secret.Value{}
	f.secHook = map[laki.Environment]struct {
		endpointID string
		secret     secret.Value
	}{}
	for _, k := range creds.Keys {
		f.mgmt[k.Environment] = secret.New(k.Secret)
		f.createSecret(k.Environment, mgmtName(k.Environment), apiKeyCredential(k.Environment, fleetMerchant, k.KeyID, secret.New(k.Secret), k.Scopes), nil)
	}
	for _, ws := range creds.WebhookSecrets {
		c := webhookCredential(ws.Environment, fleetMerchant, ws.EndpointID, ws.SecretID, secret.New(ws.Secret))
		if strings.Contains(ws.URL, "/v1/lakiconnect/events/") {
			f.secHook[ws.Environment] = struct {
				endpointID string
				secret     secret.Value
			}{ws.EndpointID, secret.New(ws.Secret)}
			f.createSecret(ws.Environment, secHookName(ws.Environment), c, nil)
			continue
		}
		fs := fleetSecret{name: fmt.Sprintf("orders/%s/webhook-secret", ws.Environment), kind: "webhook_secret", env: ws.Environment,
			policy: "hooks", owners: []string{fleetOwnerAll}, endpointID: ws.EndpointID}
		if ws.Environment == laki.Sandbox {
			fs.owners = append(fs.owners, fleetOwnerPeople)
		}
		f.createSecret(ws.Environment, fs.name, c, fs.tags())
		f.secrets = append(f.secrets, fs)
	}
	if len(f.mgmt) != 2 || len(f.secHook) != 2 || len(f.secrets) != 2 {
		t.Fatalf("lakisim seeded %d management keys, %d security endpoints, %d webhook endpoints; want 2, 2, 2", len(f.mgmt), len(f.secHook), len(f.secrets))
	}
}

func mgmtName(env laki.Environment) string {
	return "lakirotator/" + string(env) + "/management"
}
func secHookName(env laki.Environment) string {
	return "lakirotator/" + string(env) + "/security-webhook"
}

func (s fleetSecret) tags() map[string]string {
	tags := managedTags(s.kind, s.env, fleetMerchant, s.policy, s.owners...)
	if s.endpointID != "" {
		tags[inventory.TagEndpointID] = s.endpointID
	}
	return tags
}

func (f *fleet) createSecret(env laki.Environment, name string, c secretstore.Credential, tags map[string]string) {
	f.t.Helper()
	if err := createSecret(f.sm[env], name, c, tags); err != nil {
		f.t.Fatalf("%s: %v", env, err)
	}
}

// seed makes the managed API keys: two in production, one in sandbox under
// the trigger policy, and one per environment under the "slot" policy.
func (f *fleet) seed() {
	add := func(name string, env laki.Environment, policy string, owners ...string) {
		id, value := createSimKey(f.t, f.simURL, env, fleetMerchant, name)
		fs := fleetSecret{name: name, kind: "api_key", env: env, policy: policy, owners: owners}
		f.createSecret(env, name, apiKeyCredential(env, fleetMerchant, id, value, []string{"payments:read"}), fs.tags())
		f.secrets = append(f.secrets, fs)
	}
	add("payments/production/checkout", laki.Production, "keys", fleetOwnerAll)
	add("payments/production/refunds", laki.Production, "keys", fleetOwnerAll, fleetOwnerPeople)
	add("payments/sandbox/checkout", laki.Sandbox, "keys", fleetOwnerAll, fleetOwnerPeople)
	if f.schedule != "" {
		for _, step := range slotSteps {
			add(slotSecret(step), laki.Production, "slot", "slot-team")
		}
	}
}

// slotSteps are the steps at which a late replica is held back in the
// scheduled slot, one managed secret each (named after its step).
var slotSteps = []string{"create", "put", "read", "promote", "expire"}

func slotSecret(step string) string { return "reports/production/slot-" + step }

func (f *fleet) writePolicies() {
	// Short graces, distinct per cause: the tests rotate the same secrets
	// again and again, and replaced keys must end soon or they would fill
	// LakiConnect's 50 live keys per merchant.
	grace := "grace:\n  scheduled: 6s\n  personnel: 3s\n  compromise: 0s\n"
	// Monthly, on a day two weeks away: no slot is due or missed while a test runs.
	monthly := fmt.Sprintf("schedule: \"0 3 %d * *\"\n", (time.Now().UTC().Day()+13)%28+1)
	writePolicy(f.t, f.dir, "keys", "name: keys\nkind: api_key\nscopes: [payments:read]\nenvironments: [sandbox, production]\nmax_age: 45d\n"+monthly+grace)
	// Webhook secrets end a few seconds after a rotation, so that the
	// tests may rotate an endpoint again soon (LakiConnect keeps at most 2
	// live secrets per endpoint): a 409 then is the rotator's, not the grace's.
	writePolicy(f.t, f.dir, "hooks", "name: hooks\nkind: webhook_secret\nenvironments: [sandbox, production]\nmax_age: 90d\n"+monthly+
		"grace:\n  scheduled: 3s\n  personnel: 2s\n  compromise: 0s\n")
	if f.schedule != "" {
		writePolicy(f.t, f.dir, "slot", fmt.Sprintf("name: slot\nkind: api_key\nscopes: [payments:read]\nenvironments: [sandbox, production]\nmax_age: 45d\nschedule: %q\n%s", f.schedule, grace))
	}
}

func (f *fleet) writeConfig(r *replica) {
	writeFile(f.t, filepath.Join(f.dir, "api-token"), f.token.Reveal()+"\n")
	var environments []string
	for _, env := range envs {
		role := ""
		if env == laki.Sandbox {
			role = sandboxRoleARN
		}
		environments = append(environments, awsEnvironment(env, r.aws, role, r.laki, fleetMerchant, mgmtName(env), f.secHook[env].endpointID, secHookName(env)))
	}
	cfg := serveConfig{
		environments:  environments,
		store:         "aws",
		engine:        "  workers: 8\n  attempts: 3\n  max_failures: 5\n  backoff_initial: 1s\n  backoff_max: 2s\n" + f.engine,
		notifications: slackNotifications(f.slack.URL, fleetRotations, fleetSecurity, "{severities: [critical]}", ""),
		port:          r.port, tokenName: fleetTokenName, audit: r.audit,
	}.yaml()
	writeFile(f.t, r.cfg, cfg)
}

func (f *fleet) daemonEnv() []string {
	// The sandbox role is assumed at moto's STS (aws.endpoint covers Secrets Manager only).
	return serveEnv(f.dir, f.slackTk, f.signing, "AWS_ENDPOINT_URL_STS="+f.moto)
}

// start runs `lakirotator serve` for r and waits until it is ready (or,
// with wait false, only until the process runs). Every process is stopped
// when the test ends.
func (f *fleet) start(r *replica, wait bool) {
	r.starts++
	r.proc = startServe(f.t, f.dir, r.cfg, fmt.Sprintf("replica-%d-run-%d", r.no, r.starts), f.daemonEnv())
	if wait {
		f.waitReady(r)
	}
}

func (f *fleet) waitReady(r *replica) {
	waitReady(f.t, r.proc, r.apiURL, fmt.Sprintf("replica %d", r.no), func() string { return f.tail(r) })
}

// kill sends SIGKILL to r's process and waits for it to be gone.
func (f *fleet) kill(r *replica) {
	if r.proc != nil {
		r.proc.kill()
	}
}

// stop sends SIGTERM and waits.
func (f *fleet) stop(r *replica) {
	if r.proc == nil || !r.proc.running() {
		return
	}
	if !r.proc.terminate(30 * time.Second) {
		f.t.Errorf("replica %d did not exit within 30s of SIGTERM", r.no)
	}
}

// tail is the end of r's current log.
func (f *fleet) tail(r *replica) string {
	if r.proc == nil {
		return ""
	}
	return logTail(r.proc.log, fmt.Sprintf("replica %d log", r.no), 30)
}

// simAdmin calls the simulator's admin API.
func (f *fleet) simAdmin(method, path string, body, out any) {
	f.t.Helper()
	callSimAdmin(f.t, f.simURL, method, path, body, out)
}

// simGet reads the Management API of env with its management key.
func (f *fleet) simGet(env laki.Environment, path string, out any) {
	f.t.Helper()
	if st, b := callSimAPI(f.t, f.simURL, env, f.mgmt[env], "GET", path, out); st != 200 {
		f.t.Fatalf("lakisim GET %s %s: %d %s", env, path, st, b)
	}
}

// keys lists every key of the merchant in env.
func (f *fleet) keys(env laki.Environment) []laki.APIKey {
	return allSimKeys(func(path string, page *lakiconnect.List[laki.APIKey]) { f.simGet(env, path, page) })
}

func (f *fleet) endpoint(env laki.Environment, id string) laki.WebhookEndpoint {
	var ep laki.WebhookEndpoint
	f.simGet(env, "/webhook_endpoints/"+id, &ep)
	return ep
}

// simRequest is one API request the simulator answered (or saw cut off).
type simRequest struct {
	Method  string    `json:"method"`
	Path    string    `json:"path"`
	Status  int       `json:"status"`
	Faulted bool      `json:"faulted"`
	At      time.Time `json:"at"`
}

// simRequests are the API requests the simulator answered (or saw cut off).
func (f *fleet) simRequests() []simRequest {
	var out []simRequest
	f.simAdmin("GET", "/_sim/requests", nil, &out)
	return out
}

// versionState is one stored version of a secret: its stages and the
// credential (key id or webhook secret id) it holds.
type versionState struct {
	id     string
	stages []string
	cred   string
}

func (v versionState) has(stage string) bool {
	for _, s := range v.stages {
		if s == stage {
			return true
		}
	}
	return false
}

// storedVersions lists every version of a secret (deprecated ones too) and
// the credential each holds.
func (f *fleet) storedVersions(s fleetSecret) []versionState {
	f.t.Helper()
	ctx := context.Background()
	c := f.sm[s.env]
	var out []versionState
	var token *string
	for {
		page, err := c.ListSecretVersionIds(ctx, &sm.ListSecretVersionIdsInput{SecretId: aws.String(s.name), IncludeDeprecated: aws.Bool(true), NextToken: token})
		if err != nil {
			f.t.Fatalf("ListSecretVersionIds %s: %v", s.name, err)
		}
		for _, v := range page.Versions {
			vs := versionState{id: aws.ToString(v.VersionId), stages: v.VersionStages}
			vs.cred = f.credentialOf(s, vs.id)
			out = append(out, vs)
		}
		// moto answers an empty token on the last page; a repeated one ends too.
		if aws.ToString(page.NextToken) == "" || aws.ToString(page.NextToken) == aws.ToString(token) {
			break
		}
		token = page.NextToken
	}
	return out
}

func (f *fleet) credentialOf(s fleetSecret, version string) string {
	key := s.name + "\x00" + version
	f.mu.Lock()
	id, ok := f.versions[key]
	f.mu.Unlock()
	if ok {
		return id
	}
	out, err := f.sm[s.env].GetSecretValue(context.Background(), &sm.GetSecretValueInput{SecretId: aws.String(s.name), VersionId: aws.String(version)})
	if err != nil {
		f.t.Fatalf("GetSecretValue %s version %s: %v", s.name, version, err)
	}
	c, err := secretstore.DecodeCredential(s.name, secret.New(aws.ToString(out.SecretString)))
	if err != nil {
		f.t.Fatalf("%s version %s: %v", s.name, version, err)
	}
	id = c.KeyID
	if c.Type == secretstore.TypeWebhookSecret {
		id = c.SecretID
	}
	f.mu.Lock()
	f.versions[key] = id
	f.mu.Unlock()
	return id
}

// current is the version holding AWSCURRENT ("" when none).
func current(vs []versionState) versionState {
	for _, v := range vs {
		if v.has("AWSCURRENT") {
			return v
		}
	}
	return versionState{}
}

// rotatedOnce checks that a secret went through exactly one rotation
// between two looks: AWSCURRENT moved from the old current straight to one
// new version (the old one is now AWSPREVIOUS), and any other new version
// was abandoned before anyone could read it as current (it has no stage).
// It returns what is wrong, or "".
func rotatedOnce(before, after []versionState) string {
	known := map[string]bool{}
	for _, v := range before {
		known[v.id] = true
	}
	var fresh []string
	currents, staged := 0, 0
	for _, v := range after {
		if known[v.id] {
			continue
		}
		fresh = append(fresh, fmt.Sprintf("%s%v", v.id, v.stages))
		switch {
		case v.has("AWSCURRENT"):
			currents++
		case len(v.stages) > 0:
			staged++
		}
	}
	old := current(before)
	if old.id == "" {
		return fmt.Sprintf("no version held AWSCURRENT before (a broken state left by an earlier step); new versions %v", fresh)
	}
	var oldStages []string
	for _, v := range after {
		if v.id == old.id {
			oldStages = v.stages
		}
	}
	oldNow := versionState{stages: oldStages}
	if currents != 1 || staged != 0 || !oldNow.has("AWSPREVIOUS") {
		return fmt.Sprintf("new versions %v, the old current %s now %v; want one new AWSCURRENT, the old one AWSPREVIOUS, any other new version without a stage", fresh, old.id, oldStages)
	}
	return ""
}

// currentCount counts versions holding AWSCURRENT: a consumer needs exactly one.
func (f *fleet) currentCount(s fleetSecret) (int, error) {
	out, err := f.sm[s.env].DescribeSecret(context.Background(), &sm.DescribeSecretInput{SecretId: aws.String(s.name)})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, stages := range out.VersionIdsToStages {
		for _, st := range stages {
			if st == "AWSCURRENT" {
				n++
			}
		}
	}
	return n, nil
}

// trigger asks replica r for a rotation through the HTTP API.
func (f *fleet) trigger(r *replica, body map[string]any) (status int, ack map[string]any, raw string) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", r.apiURL+"/v1/triggers", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+f.token.Reveal())
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(rb, &ack)
	return resp.StatusCode, ack, string(rb)
}

// postEvent delivers a signed security event to replica r, as LakiConnect does.
func (f *fleet) postEvent(r *replica, env laki.Environment, body []byte) int {
	req, _ := http.NewRequest("POST", f.receiverURL(r, env), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(lakiconnect.SignatureHeader, webhooksig.Sign(time.Now(), body, f.secHook[env].secret))
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// audit reads replica r's audit file. Line by line: a SIGKILL may leave
// a torn line in the middle of the file, and the records after it count.
func (f *fleet) audit(r *replica) []auditRecord {
	recs, _ := readJSONLines[auditRecord](filepath.Join(f.dir, r.audit))
	return recs
}

func (f *fleet) secret(name string) fleetSecret {
	for _, s := range f.secrets {
		if s.name == name {
			return s
		}
	}
	f.t.Fatalf("no fleet secret %s", name)
	return fleetSecret{}
}

func (f *fleet) owned(owner string) []fleetSecret {
	var out []fleetSecret
	for _, s := range f.secrets {
		for _, o := range s.owners {
			if o == owner {
				out = append(out, s)
			}
		}
	}
	return out
}

// delayProxy stands between one replica and LakiConnect or moto and holds
// back the requests that match, so that one replica runs late at a chosen step.
type delayProxy struct {
	mu    sync.Mutex
	delay time.Duration
	match func(r *http.Request, body []byte) bool
}

func (p *delayProxy) set(delay time.Duration, match func(r *http.Request, body []byte) bool) {
	p.mu.Lock()
	p.delay, p.match = delay, match
	p.mu.Unlock()
}

func (p *delayProxy) start(t *testing.T, target string) string {
	return startProxy(t, target, func(r *http.Request, body []byte) bool {
		p.mu.Lock()
		delay, match := p.delay, p.match
		p.mu.Unlock()
		if delay > 0 && match != nil && match(r, body) {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return false
			}
		}
		return true
	})
}
