package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	w := newBareWorld(t)
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
	seedVault(vaultMgmt, apiKeyCredential(laki.Production, merchant, sim.mgmtKeyID, w.mgmtKey, sim.mgmtScopes), nil)
	keyID, keyValue := createSimKey(t, w.simURL, laki.Production, merchant, "orders")
	w.remember(keyValue.Reveal())
	seedVault(vaultAPIKey, apiKeyCredential(laki.Production, merchant, keyID, keyValue, []string{"payments:read"}),
		managedTags("api_key", laki.Production, merchant, "keys", "alice"))
	hookTags := managedTags("webhook_secret", laki.Production, merchant, "hooks", "alice")
	hookTags[inventory.TagEndpointID] = sim.endpointID
	seedVault(vaultWebhook, webhookCredential(laki.Production, merchant, sim.endpointID, sim.webhookSecretID, w.whSec), hookTags)

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
		if c.KeyID == keyID || v.ID == "kv-1" {
			t.Fatalf("AWSCURRENT is still the seeded key %s (version %s)", c.KeyID, v.ID)
		}
		if !w.whoami(c.Secret) {
			t.Errorf("the new AWSCURRENT key does not authenticate")
		}
		if old := w.simKey(keyID); old.Status != laki.StatusExpiring {
			t.Errorf("old key %s is %s, want expiring (grace 1h)", keyID, old.Status)
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
	creds := w.startOneMerchantSim("api_keys:read, api_keys:write, payments:read, webhooks:read, webhooks:write",
		"https://hooks.example.test/orders", "api_key.exposed")
	return vaultSim{mgmtKeyID: creds.Keys[0].KeyID, mgmtScopes: creds.Keys[0].Scopes,
		endpointID: creds.WebhookSecrets[0].EndpointID, webhookSecretID: creds.WebhookSecrets[0].SecretID}
}

// writeVaultWorldFiles writes the policies and the config with store.kind: vault.
func writeVaultWorldFiles(w *world, addr, caFile string) {
	writePolicy(w.t, w.dir, "keys", policyYAML("keys", "Rotated by triggers only during the test.",
		"api_key", "45d", "0 3 1 * *", "24h", "1h"))
	writePolicy(w.t, w.dir, "hooks", policyYAML("hooks", "Webhook signing secrets, rotated by triggers only during the test.",
		"webhook_secret", "90d", "0 2 1 * *", "72h", "4h"))
	writeFile(w.t, filepath.Join(w.dir, "api-token"), w.token.Reveal()+"\n")
	environment := fmt.Sprintf(`  production:
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
`, addr, caFile, vaultMount, w.simURL, merchant, vaultMgmt)
	cfg := serveConfig{
		environments: []string{environment},
		store:        "vault",
		engine:       "  workers: 4\n  attempts: 2\n  backoff_initial: 1s\n  backoff_max: 2s\n",
		port:         w.port, tokenName: "e2e-cli", audit: "audit.jsonl",
	}.yaml()
	writeFile(w.t, filepath.Join(w.dir, "lakirotator.yaml"), cfg)
}
