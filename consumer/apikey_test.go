package consumer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/consumer"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func apiKeyCredential(t *testing.T, fx *lakisimtest.Fixture, name string) secretstore.Credential {
	t.Helper()
	k, err := fx.Sim.CreateKey(laki.Sandbox, fx.MasterMerchantID, name, []laki.Scope{laki.ScopePaymentsRead})
	if err != nil {
		t.Fatal(err)
	}
	return secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "sandbox", MasterMerchantID: fx.MasterMerchantID,
		KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}
}

func whoami(t *testing.T, c *http.Client, fx *lakisimtest.Fixture) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fx.SandboxURL+"/whoami", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var who struct {
		KeyID string `json:"key_id"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&who)
	return resp.StatusCode, who.KeyID
}

// A key replaced and ended while the cache still holds it costs one 401
// and one re-read, not a failed call; a key ended without a replacement is
// the caller's 401 after one call (nothing to retry with).
func TestTransportRereadsAWSCURRENTOnceAfterA401(t *testing.T) {
	fx := lakisimtest.Start(t)
	s := store{t, smClient()}
	name := secretName(t, "api")
	first := apiKeyCredential(t, fx, "first")
	s.create(name, first)
	k, err := consumer.NewAPIKey(smClient(), name, consumer.APIKeyOptions{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: k.Transport(nil)}
	if code, id := whoami(t, c, fx); code != 200 || id != first.KeyID {
		t.Fatalf("before the rotation: %d %s", code, id)
	}
	second := apiKeyCredential(t, fx, "second")
	s.putPending(name, second)
	s.promote(name, second)
	// The cache (TTL 1 h) still serves the first key, which keeps working in its grace.
	if code, id := whoami(t, c, fx); code != 200 || id != first.KeyID {
		t.Fatalf("in the grace: %d %s", code, id)
	}
	if err := fx.Sim.RevokeKey(first.KeyID, "revoked_by_api"); err != nil {
		t.Fatal(err)
	}
	before := fx.Sim.RequestCount(http.MethodGet, "/whoami")
	if code, id := whoami(t, c, fx); code != 200 || id != second.KeyID {
		t.Fatalf("after the old key ended: %d %s, want 200 from %s", code, id, second.KeyID)
	}
	if n := fx.Sim.RequestCount(http.MethodGet, "/whoami") - before; n != 2 {
		t.Fatalf("%d /whoami requests for one call, want 2 (the 401 and the retry)", n)
	}
	// Later calls use the new key at once, though the cache has not caught up.
	before = fx.Sim.RequestCount(http.MethodGet, "/whoami")
	if code, id := whoami(t, c, fx); code != 200 || id != second.KeyID {
		t.Fatalf("next call: %d %s", code, id)
	}
	if n := fx.Sim.RequestCount(http.MethodGet, "/whoami") - before; n != 1 {
		t.Fatalf("%d requests for the next call, want 1", n)
	}
	key, err := k.Key(context.Background())
	if err != nil || key.Reveal() != second.Secret.Reveal() {
		t.Fatalf("Key after the 401: %v, want the second key", err)
	}
	// Revoked with no rotation: one 401, no retry (AWSCURRENT is the same key).
	if err := fx.Sim.RevokeKey(second.KeyID, "revoked_by_dashboard"); err != nil {
		t.Fatal(err)
	}
	before = fx.Sim.RequestCount(http.MethodGet, "/whoami")
	if code, _ := whoami(t, c, fx); code != http.StatusUnauthorized {
		t.Fatalf("revoked without a replacement: %d, want 401", code)
	}
	if n := fx.Sim.RequestCount(http.MethodGet, "/whoami") - before; n != 1 {
		t.Fatalf("%d requests, want 1", n)
	}
}

// A POST with a body is replayed with its body on the retry.
func TestTransportReplaysTheBodyOnTheRetry(t *testing.T) {
	fx := lakisimtest.Start(t)
	s := store{t, smClient()}
	name := secretName(t, "api")
	first, second := apiKeyCredential(t, fx, "first"), apiKeyCredential(t, fx, "second")
	s.create(name, first)
	k, _ := consumer.NewAPIKey(smClient(), name, consumer.APIKeyOptions{TTL: time.Hour})
	if _, err := k.Key(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.putPending(name, second)
	s.promote(name, second)
	if err := fx.Sim.RevokeKey(first.KeyID, "revoked_by_api"); err != nil {
		t.Fatal(err)
	}
	// Ending a key needs a scope this key lacks: 403 after the retry proves the body arrived and was judged.
	body := `{"expires_at":"2030-01-01T00:00:00Z"}`
	req, _ := http.NewRequest(http.MethodPost, fx.SandboxURL+"/api_keys/"+second.KeyID+"/expire", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "consumer-test-1")
	resp, err := (&http.Client{Transport: k.Transport(nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("retried POST: %d, want 403 (missing scope) from the new key", resp.StatusCode)
	}
}

func TestAPIKeyRefusesAWebhookSecret(t *testing.T) {
	s := store{t, smClient()}
	name := secretName(t, "hook")
	s.create(name, webhookSecret("whs_x", "whsec_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
	k, _ := consumer.NewAPIKey(smClient(), name, consumer.APIKeyOptions{})
	if _, err := k.Key(context.Background()); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("Key of a webhook secret: %v", err)
	}
}
