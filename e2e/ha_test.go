package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/ha"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

const (
	// Secrets in the scheduled batch, split over two master merchants:
	// LakiConnect allows 50 keys that are not revoked per merchant, so each
	// takes 30 plus its management key, the emergency's key and 4
	// rotations in flight (a rotation holds two keys).
	haBatch       = 60
	haPerMerchant = 30
	haBatchName   = "ha/batch-"
	haEmergency   = "ha/emergency-key"
	haTTL         = 6 * time.Second
	// The second merchant and its management key's secret.
	haMerchant2   = "mm_E2ETEST000000002"
	haMgmtSecret2 = "e2e/production/management-2"
)

// smCounter sits between the replicas and moto and counts the Secrets
// Manager calls that name a secret, by secret and operation: the calls
// AWS would bill, whichever replica made them.
type smCounter struct {
	mu    sync.Mutex
	calls map[string]map[string]int // secret → operation → count
}

func (c *smCounter) wrap(t *testing.T, target string) string {
	return startProxy(t, target, func(r *http.Request, body []byte) bool {
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
		var in struct{ SecretId string }
		_ = json.Unmarshal(body, &in)
		if in.SecretId != "" {
			c.mu.Lock()
			if c.calls[in.SecretId] == nil {
				c.calls[in.SecretId] = map[string]int{}
			}
			c.calls[in.SecretId][op]++
			c.mu.Unlock()
		}
		return true
	})
}

// batch counts the calls and the writes on the batch's secrets.
func (c *smCounter) batch() (calls, writes int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, ops := range c.calls {
		if !strings.HasPrefix(name, haBatchName) {
			continue
		}
		for op, n := range ops {
			calls += n
			if op == "PutSecretValue" || op == "UpdateSecretVersionStage" || op == "TagResource" {
				writes += n
			}
		}
	}
	return calls, writes
}

// haReplica is one `lakirotator serve` of the shared deployment.
type haReplica struct {
	*daemonProc
	no     int
	url    string
	client *httpapi.Client
}

// logLines are the replica's JSON log records with the given message.
func (r *haReplica) logLines(msg string) []map[string]any {
	recs, _ := readJSONLines[map[string]any](r.log)
	var out []map[string]any
	for _, rec := range recs {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

func (r *haReplica) alive() bool { return r.running() }

// holding: the replica took the lease and has not said its holding ended.
func (r *haReplica) holding() bool {
	return r.alive() && len(r.logLines("lease held: this replica runs scheduled slots, sweeps and scans")) > len(r.logLines("lease holding ended: no new scheduled work starts here"))
}

type haWorld struct {
	*world
	counter  *smCounter
	replicas []*haReplica
	mgmtKey2 secret.Value // the second merchant's management key
}

// haMerchantOf is the master merchant of the i-th batch secret (from 1).
func haMerchantOf(i int) string {
	if i <= haPerMerchant {
		return merchant
	}
	return haMerchant2
}

// newHAWorld is moto (behind a counting proxy for Secrets Manager), the
// simulator, the batch's secrets and one emergency secret, and a config
// with a DynamoDB lease; no replica runs yet.
func newHAWorld(t *testing.T) *haWorld {
	w := newMotoWorld(t)
	ddb := dynamodb.New(dynamodb.Options{Region: motoserver.Region, BaseEndpoint: aws.String(w.moto), Credentials: motoCredentials()})
	if err := ha.CreateTable(context.Background(), ddb, "lakirotator-lease"); err != nil {
		t.Fatal(err)
	}
	hw := &haWorld{world: w, counter: &smCounter{calls: map[string]map[string]int{}}}
	w.startSim()
	// The second merchant, with a management key of the same scopes as the
	// first's.
	w.simAdmin("POST", "/_sim/merchants", map[string]any{"id": haMerchant2}, nil)
	mgmtScopes := []string{"api_keys:read", "api_keys:write", "payments:read"}
	var mgmt2 struct {
		laki.APIKey
		Secret string `json:"secret"`
	}
	w.simAdmin("POST", "/_sim/keys", map[string]any{
		"environment": laki.Production, "master_merchant_id": haMerchant2, "name": "lakirotator management (production)", "scopes": mgmtScopes,
	}, &mgmt2)
	w.remember(mgmt2.Secret)
	hw.mgmtKey2 = secret.New(mgmt2.Secret)
	w.createSecret(haMgmtSecret2, apiKeyCredential(laki.Production, haMerchant2, mgmt2.ID, hw.mgmtKey2, mgmtScopes), nil)
	w.seedKey(haEmergency, "steady", "ha-team")
	for i := 1; i <= haBatch; i++ {
		name := fmt.Sprintf("%s%02d", haBatchName, i)
		if haMerchantOf(i) == merchant {
			w.seedKey(name, "batch", "ha-team")
			continue
		}
		id, value := createSimKey(t, w.simURL, laki.Production, haMerchant2, name)
		w.remember(value.Reveal())
		w.createSecret(name, apiKeyCredential(laki.Production, haMerchant2, id, value, []string{"payments:read"}),
			managedTags("api_key", laki.Production, haMerchant2, "batch", "ha-team"))
	}
	w.writePolicies()
	writePolicy(t, w.dir, "batch", policyYAML("batch", "A slot every minute, so that the test sees two.",
		"api_key", "1d", "* * * * *", "0s", "0s"))
	w.writeConfig()
	// The replicas reach Secrets Manager through the counter; the lease
	// goes to moto directly.
	b, err := os.ReadFile(filepath.Join(w.dir, "lakirotator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "endpoint: "+w.moto, "endpoint: "+hw.counter.wrap(t, w.moto), 1)
	cfg = strings.Replace(cfg, "workers: 8", "workers: 4", 1)
	// The second merchant: its management key, no security webhook.
	const merchantsAt = "      master_merchants:\n"
	if !strings.Contains(cfg, merchantsAt) {
		t.Fatalf("the world's config has no master_merchants list:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, merchantsAt, merchantsAt+fmt.Sprintf("        - id: %s\n          management_key:\n            secret: %s\n", haMerchant2, haMgmtSecret2), 1)
	cfg += fmt.Sprintf("ha: {kind: dynamodb, table: lakirotator-lease, region: %s, endpoint: %q, ttl: %s}\n", motoserver.Region, w.moto, haTTL)
	writeFile(t, filepath.Join(w.dir, "lakirotator.yaml"), cfg)
	return hw
}

// startReplica runs one more `lakirotator serve` on its own port (the
// first on the port the security webhook points at) and waits until ready.
func (hw *haWorld) startReplica() *haReplica {
	t := hw.t
	no := len(hw.replicas) + 1
	port := hw.port
	if no > 1 {
		port = freePort(t)
	}
	b, err := os.ReadFile(filepath.Join(hw.dir, "lakirotator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(hw.dir, fmt.Sprintf("replica-%d.yaml", no))
	writeFile(t, cfgPath, strings.Replace(string(b), fmt.Sprintf("listen: 127.0.0.1:%d", hw.port), fmt.Sprintf("listen: 127.0.0.1:%d", port), 1))
	r := &haReplica{no: no, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	r.daemonProc = startServe(t, hw.dir, cfgPath, fmt.Sprintf("replica-%d", no), hw.daemonEnv())
	r.client, err = httpapi.NewClient(r.url, hw.token, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, r.daemonProc, r.url, fmt.Sprintf("replica %d", no), func() string { return hw.replicaTail(r) })
	hw.replicas = append(hw.replicas, r)
	return r
}

func (hw *haWorld) replicaTail(r *haReplica) string {
	return logTail(r.log, fmt.Sprintf("replica %d log", r.no), 30)
}

func (hw *haWorld) holders() []*haReplica {
	var out []*haReplica
	for _, r := range hw.replicas {
		if r.holding() {
			out = append(out, r)
		}
	}
	return out
}

// rotatorKeys counts, per batch secret, the keys the rotator made for it,
// at both merchants.
func (hw *haWorld) rotatorKeys() map[string]int {
	out := map[string]int{}
	keys := hw.simKeys()
	keys = append(keys, hw.merchantKeys(hw.mgmtKey2)...)
	for _, k := range keys {
		if k.Metadata[rotator.MetaCreatedBy] == rotator.MetaCreatedByValue {
			out[k.Metadata[rotator.MetaSecret]]++
		}
	}
	return out
}

// merchantKeys lists every key of the merchant whose management key this
// is, at the simulator.
func (hw *haWorld) merchantKeys(mgmt secret.Value) []laki.APIKey {
	hw.t.Helper()
	return allSimKeys(func(path string, page *lakiconnect.List[laki.APIKey]) {
		if st := hw.simAPI(mgmt, "GET", path, page); st != 200 {
			hw.t.Fatalf("GET %s: status %d", path, st)
		}
	})
}

// batchRotated says whether every batch secret has exactly n rotator keys
// and AWSCURRENT on the newest; more than n fails the test at once.
func (hw *haWorld) batchRotated(n int) bool {
	keys := hw.rotatorKeys()
	done := 0
	for i := 1; i <= haBatch; i++ {
		name := fmt.Sprintf("%s%02d", haBatchName, i)
		if keys[name] > n {
			hw.t.Fatalf("%s has %d keys made by the rotator after %d slot(s): a duplicate rotation", name, keys[name], n)
		}
		if keys[name] == n {
			done++
		}
	}
	return done == haBatch
}

func (hw *haWorld) slotsFired(r *haReplica) int {
	n := 0
	for _, rec := range r.logLines("scheduled rotations due") {
		if rec["policy"] == "batch" {
			n++
		}
	}
	return n
}

// Three replicas of the real binary share a DynamoDB lease in moto: one
// holds it at a time; the holder alone runs the minute's slot, at the
// cost of one daemon; an emergency sent to a replica without the lease is
// carried out there at once; killing the holder mid-slot hands the lease
// over within the TTL and the slot finishes with every secret rotated once.
func TestHAReplicasShareOneLease(t *testing.T) {
	hw := newHAWorld(t)
	for range 3 {
		hw.startReplica()
	}
	eventually(t, 2*haTTL, "a replica holds the lease", func() bool { return len(hw.holders()) == 1 })
	holder := hw.holders()[0]
	t.Logf("replica %d holds the lease", holder.no)

	// An emergency to a replica without the lease: carried out there,
	// at once, whatever the holder does.
	var other *haReplica
	for _, r := range hw.replicas {
		if r != holder {
			other = r
			break
		}
	}
	oldKey := hw.currentKeyID(haEmergency)
	asked := time.Now()
	if _, err := other.client.Trigger(context.Background(), httpapi.TriggerRequest{
		Secret: haEmergency, Cause: events.CauseCompromise, Requester: "sec@example", Reason: "key pasted in a ticket",
	}); err != nil {
		t.Fatal(err)
	}
	var revoked laki.APIKey
	eventually(t, 20*time.Second, "the compromised key is revoked", func() bool {
		revoked = hw.simKey(oldKey)
		return revoked.Status == laki.StatusRevoked
	}, func() string { return hw.replicaTail(other) })
	if revoked.RevokedAt == nil {
		t.Fatalf("key %s is revoked with no revoked_at", oldKey)
	}
	// The simulator stamps the revocation; it runs on this machine's clock.
	took := revoked.RevokedAt.Sub(asked)
	t.Logf("compromise sent to replica %d (not the holder): old key revoked %s after the request", other.no, took.Round(time.Millisecond))
	if took >= 2*time.Second {
		t.Errorf("the compromise sent to a replica without the lease revoked the key %s after the request; the bound is 2s", took)
	}

	// The first slot: the holder alone runs it, at a single daemon's cost.
	eventually(t, 75*time.Second, "the holder fires the minute's slot", func() bool { return hw.slotsFired(holder) >= 1 },
		func() string { return hw.replicaTail(holder) })
	eventually(t, 40*time.Second, "every batch secret is rotated once", func() bool { return hw.batchRotated(1) },
		func() string { return hw.replicaTail(holder) })
	time.Sleep(time.Second) // stragglers would show in the counts
	calls, writes := hw.counter.batch()
	t.Logf("first slot: %d Secrets Manager calls and %d writes on %d secrets across %d replicas", calls, writes, haBatch, len(hw.replicas))
	if calls != 3*haBatch || writes != 2*haBatch {
		t.Errorf("the slot cost %d calls and %d writes on its %d secrets; one daemon spends 3 and 2 per rotation (%d and %d)",
			calls, writes, haBatch, 3*haBatch, 2*haBatch)
	}
	for _, r := range hw.replicas {
		if r != holder && hw.slotsFired(r) > 0 {
			t.Errorf("replica %d fired the slot without the lease", r.no)
		}
	}

	// The second slot: the holder is killed as it starts.
	eventually(t, 75*time.Second, "the holder fires the next slot", func() bool { return hw.slotsFired(holder) >= 2 })
	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-holder.done
	keys := hw.rotatorKeys()
	rotatedBefore := 0
	for name, n := range keys {
		if strings.HasPrefix(name, haBatchName) && n == 2 {
			rotatedBefore++
		}
	}
	var next *haReplica
	eventually(t, 3*haTTL, "another replica takes the lease", func() bool {
		hs := hw.holders()
		if len(hs) > 1 {
			t.Fatalf("%d replicas hold the lease at once", len(hs))
		}
		if len(hs) == 1 {
			next = hs[0]
		}
		return next != nil
	})
	// When the new holder's lease write succeeded, by its own log record
	// (this machine's clock, as the kill's).
	taken := next.logLines("lease taken")
	if len(taken) == 0 {
		t.Fatalf("replica %d holds the lease but never logged taking it", next.no)
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(taken[len(taken)-1]["time"]))
	if err != nil {
		t.Fatalf("replica %d's lease record has no time: %v", next.no, err)
	}
	gap := at.Sub(killed)
	t.Logf("holder killed with %d of %d secrets of the slot rotated; replica %d took the lease %s later (TTL %s)",
		rotatedBefore, haBatch, next.no, gap.Round(time.Millisecond), haTTL)
	// Within one TTL of the holder's last renewal (package ha: a contender
	// takes the lease TTL - 2 polls after it saw that renewal, at most a
	// poll late), so within one TTL of the kill, which came after it.
	if gap > haTTL {
		t.Errorf("takeover took %s after the kill; the lease TTL is %s", gap, haTTL)
	}
	eventually(t, 60*time.Second, "the new holder finishes the slot: every secret rotated exactly once more", func() bool { return hw.batchRotated(2) },
		func() string { return hw.replicaTail(next) })
	for i := 1; i <= haBatch; i++ {
		name := fmt.Sprintf("%s%02d", haBatchName, i)
		if st := hw.stages(name); len(st) == 0 {
			t.Errorf("%s has no versions", name)
		}
		hw.currentKeyID(name) // AWSCURRENT readable and remembered for the leak scan
	}
	if n := len(hw.holders()); n != 1 {
		t.Errorf("%d replicas hold the lease after the takeover", n)
	}
	for _, r := range hw.replicas {
		b, _ := os.ReadFile(r.log)
		hw.mu.Lock()
		for _, s := range hw.secrets {
			if len(s) >= 8 && strings.Contains(string(b), s) {
				t.Errorf("replica %d's log holds a secret value", r.no)
			}
		}
		hw.mu.Unlock()
	}
}
