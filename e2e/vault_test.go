package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/vaultserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/vaultstore"
)

const (
	vaultMount      = "lakirotator" // the mount deploy/vault/lakirotator.hcl is written for
	vaultMgmt       = "production/management"
	vaultAPIKey     = "production/orders-api"
	vaultWebhook    = "production/orders-webhook"
	vaultPolicyFile = "deploy/vault/lakirotator.hcl"
)

// The real binary with store.kind: vault: a Vault server over TLS (the
// CA in ca_file), a token holding only the project's Vault policy, secrets
// onboarded by hand and found by discovery; the daemon rotates an API key
// and a webhook signing secret end to end.
func TestVaultStoreEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts devvault, lakisim and the daemon")
	}
	ctx := context.Background()
	w := &world{t: t, dir: t.TempDir()}
	w.port = freePort(t)
	w.apiURL = fmt.Sprintf("http://127.0.0.1:%d", w.port)
	w.token = secret.New("e2e-api-" + randomHex(t, 16))
	w.remember(w.token.Reveal())
	defer func() {
		if t.Failed() {
			t.Log(w.daemonTail())
			t.Log(w.auditTail())
		}
	}()

	srv := vaultserver.Start(t, vaultserver.Options{TLS: true})
	admin := srv.Client(t)
	if err := vaultserver.MountKVv2(admin, vaultMount); err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(filepath.Join("..", vaultPolicyFile))
	if err != nil {
		t.Fatal(err)
	}
	vaultToken, err := vaultserver.PolicyToken(ctx, admin, "lakirotator", string(policy))
	if err != nil {
		t.Fatal(err)
	}
	w.remember(vaultToken)
	writeFile(t, filepath.Join(w.dir, "vault-token"), vaultToken+"\n")

	sim := startVaultSim(w)
	seedVault := func(name string, c secretstore.Credential, tags map[string]string) {
		t.Helper()
		v, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := vaultserver.Create(ctx, admin, vaultMount, name, "", tags, &v); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	seedVault(vaultMgmt, secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "production", MasterMerchantID: merchant,
		KeyID: sim.mgmtKeyID, Secret: w.mgmtKey, Scopes: sim.mgmtScopes, CreatedAt: now}, nil)
	var key struct {
		laki.APIKey
		Secret string `json:"secret"`
	}
	w.simAdmin("POST", "/_sim/keys", map[string]any{
		"environment": "production", "master_merchant_id": merchant, "name": "seed orders", "scopes": []string{"payments:read"},
	}, &key)
	w.remember(key.Secret)
	managed := func(kind, policy string) map[string]string {
		return map[string]string{inventory.TagManaged: "true", inventory.TagKind: kind, inventory.TagEnvironment: "production",
			inventory.TagMasterMerchant: merchant, inventory.TagPolicy: policy, inventory.TagOwners: "alice"}
	}
	seedVault(vaultAPIKey, secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "production", MasterMerchantID: merchant,
		KeyID: key.ID, Secret: secret.New(key.Secret), Scopes: []string{"payments:read"}, CreatedAt: now}, managed("api_key", "keys"))
	hookTags := managed("webhook_secret", "hooks")
	hookTags[inventory.TagEndpointID] = sim.endpointID
	seedVault(vaultWebhook, secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: "production", MasterMerchantID: merchant,
		EndpointID: sim.endpointID, SecretID: sim.webhookSecretID, Secret: w.whSec, CreatedAt: now}, hookTags)

	writeVaultWorldFiles(w, srv.Addr, srv.CAFile)
	w.startDaemon()

	// What the operator checks, read with the root token.
	reader, err := vaultstore.New(vaultstore.Config{Address: srv.Addr, CAFile: srv.CAFile, Mount: vaultMount,
		Auth: vaultstore.Auth{Method: vaultstore.AuthToken, Token: secret.New(srv.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	current := func(name string) (secretstore.Credential, secretstore.Version) {
		t.Helper()
		v, err := reader.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
		if err != nil {
			t.Fatal(err)
		}
		c, err := secretstore.DecodeCredential(name, v.Value)
		if err != nil {
			t.Fatal(err)
		}
		w.remember(c.Secret.Reveal())
		return c, v
	}

	t.Run("api_key", func(t *testing.T) {
		w := w.with(t)
		res := w.cli("", append([]string{"rotate", vaultAPIKey, "--reason", "e2e vault rotation"}, w.apiArgs()...)...)
		if res.code != 0 {
			t.Fatalf("rotate %s: want exit 0\n%s\n%s", vaultAPIKey, res, w.daemonTail())
		}
		c, v := current(vaultAPIKey)
		if c.KeyID == key.ID || v.ID == "kv-1" {
			t.Fatalf("AWSCURRENT is still the seeded key %s (version %s)", c.KeyID, v.ID)
		}
		if !w.whoami(c.Secret) {
			t.Errorf("the new AWSCURRENT key does not authenticate")
		}
		if old := w.simKey(key.ID); old.Status != laki.StatusExpiring {
			t.Errorf("old key %s is %s, want expiring (grace 1h)", key.ID, old.Status)
		}
		prev, err := reader.Get(ctx, vaultAPIKey, secretstore.ByStage(secretstore.StagePrevious))
		if err != nil || prev.ID != "kv-1" {
			t.Errorf("AWSPREVIOUS = %s, %v; want the seeded version kv-1", prev.ID, err)
		}
		// The view in custom metadata tells people which KV version is current.
		meta, err := admin.KVv2(vaultMount).GetMetadata(ctx, vaultAPIKey)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(meta.CustomMetadata["lakirotator-current"]); got != "2" {
			t.Errorf("custom metadata lakirotator-current = %s, want 2 (all %v)", got, meta.CustomMetadata)
		}
	})

	t.Run("webhook_secret", func(t *testing.T) {
		w := w.with(t)
		res := w.cli("", append([]string{"rotate", vaultWebhook, "--reason", "e2e vault rotation"}, w.apiArgs()...)...)
		if res.code != 0 {
			t.Fatalf("rotate %s: want exit 0\n%s\n%s", vaultWebhook, res, w.daemonTail())
		}
		c, _ := current(vaultWebhook)
		if c.SecretID == sim.webhookSecretID || c.Secret.Equal(w.whSec) {
			t.Fatalf("AWSCURRENT still holds the seeded signing secret %s", sim.webhookSecretID)
		}
		var ep laki.WebhookEndpoint
		if st := w.simAPI(w.mgmtKey, "GET", "/webhook_endpoints/"+sim.endpointID, &ep); st != 200 {
			t.Fatalf("GET endpoint: %d", st)
		}
		found := false
		for _, s := range ep.Secrets {
			if s.ID == c.SecretID {
				found = true
			}
		}
		if !found {
			t.Errorf("the endpoint does not sign with the new secret %s: %+v", c.SecretID, ep.Secrets)
		}
	})

	t.Run("audit_and_no_leaks", func(t *testing.T) {
		w := w.with(t)
		for _, name := range []string{vaultAPIKey, vaultWebhook} {
			recs := w.findAudit(func(r auditRecord) bool {
				return r.Event.Secret == name && r.Event.Step == "rotation" && r.Event.Outcome == "succeeded"
			})
			if len(recs) != 1 {
				t.Errorf("%s: %d successful rotations in the audit, want 1\n%s", name, len(recs), w.auditTail())
			}
		}
		var all strings.Builder
		for _, f := range []string{"audit.jsonl", "daemon-1.stderr.log", "daemon-1.stdout.log"} {
			b, _ := os.ReadFile(filepath.Join(w.dir, f))
			all.Write(b)
		}
		w.mu.Lock()
		for _, o := range w.outputs {
			all.WriteString(o)
		}
		vals := append([]string(nil), w.secrets...)
		w.mu.Unlock()
		for _, v := range vals {
			if strings.Contains(all.String(), v) {
				t.Errorf("a secret value (…%s) appears in the audit, logs or CLI output", v[len(v)-4:])
			}
		}
	})
}

type vaultSim struct {
	mgmtKeyID       string
	mgmtScopes      []string
	endpointID      string
	webhookSecretID string
}

// startVaultSim runs lakisim with one merchant, its production management
// key and one webhook endpoint.
func startVaultSim(w *world) vaultSim {
	t := w.t
	seed := fmt.Sprintf(`merchants:
  - id: %s
    keys:
      - environment: production
        name: lakirotator management (production)
        scopes: [api_keys:read, api_keys:write, payments:read, webhooks:read, webhooks:write]
    webhook_endpoints:
      - environment: production
        url: https://hooks.example.test/orders
        enabled_events: [api_key.exposed]
`, merchant)
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
			KeyID  string   `json:"key_id"`
			Secret string   `json:"secret"`
			Scopes []string `json:"scopes"`
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
	_ = os.Remove(credsPath)
	w.simURL = strings.TrimSuffix(creds.AdminURL, "/_sim")
	w.mgmtKey = secret.New(creds.Keys[0].Secret)
	w.whSec = secret.New(creds.WebhookSecrets[0].Secret)
	w.whID = creds.WebhookSecrets[0].EndpointID
	w.remember(w.mgmtKey.Reveal(), w.whSec.Reveal())
	return vaultSim{mgmtKeyID: creds.Keys[0].KeyID, mgmtScopes: creds.Keys[0].Scopes,
		endpointID: creds.WebhookSecrets[0].EndpointID, webhookSecretID: creds.WebhookSecrets[0].SecretID}
}

// writeVaultWorldFiles writes the policies and the config with store.kind: vault.
func writeVaultWorldFiles(w *world, addr, caFile string) {
	dir := filepath.Join(w.dir, "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		w.t.Fatal(err)
	}
	writeFile(w.t, filepath.Join(dir, "keys.yaml"), `name: keys
description: Rotated by triggers only during the test.
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
	writeFile(w.t, filepath.Join(dir, "hooks.yaml"), `name: hooks
description: Webhook signing secrets, rotated by triggers only during the test.
kind: webhook_secret
environments: [production]
max_age: 90d
schedule: "0 2 1 * *"
grace:
  scheduled: 72h
  personnel: 4h
  compromise: 0s
`)
	writeFile(w.t, filepath.Join(w.dir, "api-token"), w.token.Reveal()+"\n")
	cfg := fmt.Sprintf(`version: 1
store:
  kind: vault
environments:
  production:
    vault:
      address: %s
      ca_file: %s
      mount: %s
      paths: [production]
      auth:
        method: token
        token: {file: vault-token}
    lakiconnect:
      base_url: %s/production/v1
      timeout: 10s
      master_merchants:
        - id: %s
          management_key:
            secret: %s
policies_dir: policies
discovery:
  enabled: true
  refresh_interval: 1m
engine:
  workers: 4
  attempts: 2
  backoff_initial: 1s
  backoff_max: 2s
sweep:
  schedule: "0 0 1 1 *"
policy_scan:
  schedule: "0 0 1 1 *"
auth_watch:
  poll_interval: 1h
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
`, addr, caFile, vaultMount, w.simURL, merchant, vaultMgmt, w.port)
	writeFile(w.t, filepath.Join(w.dir, "lakirotator.yaml"), cfg)
}
