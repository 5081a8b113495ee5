package lakisim_test

// The rules of LakiConnect's contract (README.md and openapi.yaml of the
// design docs) that a schema cannot say, each held against the simulator
// the way the rotator meets them, so that the simulator is never kinder than
// LakiConnect: a rotator that passes here only by luck would break there.

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// replayed checks that again is first once more, byte for byte, marked as a replay.
func replayed(t *testing.T, what string, first, again answer) {
	t.Helper()
	if again.status != first.status || !bytes.Equal(again.body, first.body) {
		t.Fatalf("%s: the replay is not the first answer: first %d %s, replay %d %s", what, first.status, first.body, again.status, again.body)
	}
	if got := again.header.Get(lakiconnect.IdempotentReplayedHeader); got != "true" {
		t.Fatalf("%s: replay has %s %q, want \"true\"", what, lakiconnect.IdempotentReplayedHeader, got)
	}
	if got := first.header.Get(lakiconnect.IdempotentReplayedHeader); got != "" {
		t.Fatalf("%s: the first answer has %s %q", what, lakiconnect.IdempotentReplayedHeader, got)
	}
}

func withIdem(key string) map[string]string {
	return map[string]string{lakiconnect.IdempotencyKeyHeader: key}
}

// fillToKeyLimit creates keys until the sandbox merchant has the most keys
// that are not revoked, and returns the ids it made.
func fillToKeyLimit(t *testing.T, f *lakisimtest.Fixture) []string {
	t.Helper()
	live := 0
	for _, k := range f.Sim.Keys(laki.Sandbox, f.MasterMerchantID) {
		if k.Status != laki.StatusRevoked {
			live++
		}
	}
	var ids []string
	for i := live; i < laki.MaxKeysPerMerchant; i++ {
		ids = append(ids, createKey(t, f, laki.Sandbox, f.SandboxKey, fmt.Sprintf(`{"name":"filler %d","scopes":["payments:read"]}`, i)).ID)
	}
	return ids
}

// A 409 key_limit_reached is the first answer of its idempotency key: a
// retry with the same key gets that 409 again even once room is made, and
// creates nothing. Only a new idempotency key (the next attempt) creates.
func TestContractReplayKeepsKeyLimitConflict(t *testing.T) {
	f := lakisimtest.Start(t)
	fillers := fillToKeyLimit(t, f)
	url := f.SandboxURL + "/api_keys"
	body := `{"name":"rotate checkout","scopes":["payments:read"]}`
	create := func(idem string) answer {
		return send(t, f, request{method: http.MethodPost, url: url, key: f.SandboxKey, body: body, headers: withIdem(idem)})
	}

	first := create("rotate-checkout-v2-create-attempt-1")
	first.wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyLimitReached)

	// Room is made: one filler revoked.
	post(t, f, f.SandboxURL+"/api_keys/"+fillers[0]+"/revoke", f.SandboxKey, "")
	before := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID))

	again := create("rotate-checkout-v2-create-attempt-1")
	replayed(t, "409 key_limit_reached", first, again)
	if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != before {
		t.Fatalf("the replayed 409 created a key: %d keys, was %d", n, before)
	}

	// The next attempt's key is a new request: it creates.
	if a := create("rotate-checkout-v2-create-attempt-2"); a.status != http.StatusCreated {
		t.Fatalf("a new idempotency key after room was made: %d %s, want 201", a.status, a.body)
	}
}

// A 409 too_many_secrets on a webhook endpoint is replayed as that 409 even
// after an old secret is expired: a rotator that retries with the same key
// can never rotate the endpoint; it must move to the next attempt.
func TestContractReplayKeepsTooManySecrets(t *testing.T) {
	f := lakisimtest.Start(t)
	ep, firstSecret, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, "https://hooks.example/laki", []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := f.SandboxURL + "/webhook_endpoints/" + ep.ID + "/secrets"
	createSecret := func(idem string) answer {
		return send(t, f, request{method: http.MethodPost, url: secrets, key: f.SandboxKey, headers: withIdem(idem)})
	}
	if a := createSecret("rotate-hook-v2-create-attempt-1"); a.status != http.StatusCreated {
		t.Fatalf("second secret: %d %s", a.status, a.body)
	}
	first := createSecret("rotate-hook-v3-create-attempt-1")
	first.wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeTooManySecrets)

	// The old secret ends now: one live secret is left, so a create would fit.
	if a := post(t, f, secrets+"/"+firstSecret.ID+"/expire", f.SandboxKey, ""); a.status != http.StatusOK {
		t.Fatalf("expire the first secret: %d %s", a.status, a.body)
	}
	again := createSecret("rotate-hook-v3-create-attempt-1")
	replayed(t, "409 too_many_secrets", first, again)
	if n := f.Sim.WebhookEndpoints(laki.Sandbox, f.MasterMerchantID)[0].Secrets; len(n) != 2 {
		t.Fatalf("the replayed 409 changed the endpoint: %d secrets, want 2", len(n))
	}
	if a := createSecret("rotate-hook-v3-create-attempt-2"); a.status != http.StatusCreated {
		t.Fatalf("the next attempt: %d %s, want 201", a.status, a.body)
	}
}

// Other error answers of an operation replay too: 404 of an unknown key,
// 409 key_revoked, and a 400 refusal of the body.
func TestContractReplayKeepsOtherErrors(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"victim","scopes":["payments:read"]}`)
	expireURL := f.SandboxURL + "/api_keys/" + k.ID + "/expire"
	post(t, f, f.SandboxURL+"/api_keys/"+k.ID+"/revoke", f.SandboxKey, "")

	cases := []struct {
		name, url, body string
		status          int
		code            string
	}{
		{"404 resource_missing", f.SandboxURL + "/api_keys/key_AAAAAAAAAAAAAAAAAAAAAAAA/expire", "", http.StatusNotFound, lakiconnect.CodeResourceMissing},
		{"409 key_revoked", expireURL, "", http.StatusConflict, lakiconnect.CodeKeyRevoked},
		{"400 expires_at too far", f.SandboxURL + "/api_keys", `{"name":"x","scopes":["payments:read"],"expires_at":"2099-01-01T00:00:00Z"}`, http.StatusBadRequest, lakiconnect.CodeParameterInvalid},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := request{method: http.MethodPost, url: c.url, key: f.SandboxKey, body: c.body, headers: withIdem(fmt.Sprintf("err-%d", i))}
			first := send(t, f, r)
			if first.status != c.status {
				t.Fatalf("first: %d %s, want %d", first.status, first.body, c.status)
			}
			if _, code := first.errorCode(t); code != c.code {
				t.Fatalf("first: code %s, want %s", code, c.code)
			}
			replayed(t, c.name, first, send(t, f, r))
		})
	}
}

// Same idempotency key, other body: 422 idempotency_key_reused, whether the
// first answer was a success or an error, and nothing is created.
func TestContractSameKeyOtherBodyIs422(t *testing.T) {
	f := lakisimtest.Start(t)
	url := f.SandboxURL + "/api_keys"
	ok := send(t, f, request{method: http.MethodPost, url: url, key: f.SandboxKey, body: `{"name":"a","scopes":["payments:read"]}`, headers: withIdem("k-ok")})
	if ok.status != http.StatusCreated {
		t.Fatalf("first create: %d %s", ok.status, ok.body)
	}
	fillToKeyLimit(t, f)
	bad := send(t, f, request{method: http.MethodPost, url: url, key: f.SandboxKey, body: `{"name":"b","scopes":["payments:read"]}`, headers: withIdem("k-err")})
	bad.wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyLimitReached)
	before := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID))
	for _, idem := range []string{"k-ok", "k-err"} {
		a := send(t, f, request{method: http.MethodPost, url: url, key: f.SandboxKey, body: `{"name":"other","scopes":["payments:read"]}`, headers: withIdem(idem)})
		a.wantError(t, http.StatusUnprocessableEntity, lakiconnect.ErrTypeIdempotency, lakiconnect.CodeIdempotencyKeyReused)
	}
	if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != before {
		t.Fatalf("a 422 created a key: %d keys, was %d", n, before)
	}
}

// At most 50 keys that are not revoked: an expiring key still counts until
// its expires_at passes by the clock, then its room is free again.
func TestContractKeyLimitCountsUntilExpiryByTheClock(t *testing.T) {
	f := lakisimtest.Start(t)
	fillers := fillToKeyLimit(t, f)
	url := f.SandboxURL + "/api_keys"
	post(t, f, url, f.SandboxKey, `{"name":"one too many","scopes":["payments:read"]}`).
		wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyLimitReached)

	expiresAt := f.Clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if a := post(t, f, url+"/"+fillers[0]+"/expire", f.SandboxKey, `{"expires_at":"`+expiresAt+`"}`); a.status != http.StatusOK {
		t.Fatalf("expire in 1h: %d %s", a.status, a.body)
	}
	post(t, f, url, f.SandboxKey, `{"name":"still too many","scopes":["payments:read"]}`).
		wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyLimitReached)

	f.Clock.Advance(time.Hour)
	if a := post(t, f, url, f.SandboxKey, `{"name":"fits now","scopes":["payments:read"]}`); a.status != http.StatusCreated {
		t.Fatalf("after the expiring key ended: %d %s, want 201", a.status, a.body)
	}
}

// At most 2 webhook secrets that are not revoked per endpoint; an expiring
// one counts (and signs) until its expires_at passes by the clock.
func TestContractTwoLiveSecretsUntilExpiryByTheClock(t *testing.T) {
	f := lakisimtest.Start(t)
	ep, oldSecret, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, "https://hooks.example/laki", []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	secrets := f.SandboxURL + "/webhook_endpoints/" + ep.ID + "/secrets"
	if a := post(t, f, secrets, f.SandboxKey, ""); a.status != http.StatusCreated {
		t.Fatalf("second secret: %d %s", a.status, a.body)
	}
	post(t, f, secrets, f.SandboxKey, "").wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeTooManySecrets)

	expiresAt := f.Clock.Now().Add(30 * time.Minute).UTC().Format(time.RFC3339)
	if a := post(t, f, secrets+"/"+oldSecret.ID+"/expire", f.SandboxKey, `{"expires_at":"`+expiresAt+`"}`); a.status != http.StatusOK {
		t.Fatalf("expire the old secret in 30m: %d %s", a.status, a.body)
	}
	post(t, f, secrets, f.SandboxKey, "").wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeTooManySecrets)
	sig := post(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID+"/test_signature", f.SandboxKey, "")
	var ts laki.TestSignature
	sig.decode(t, &ts)
	if n := bytes.Count([]byte(ts.SignatureHeader), []byte("v1=")); n != 2 {
		t.Fatalf("while expiring, %d signatures, want 2 (old and new)", n)
	}

	f.Clock.Advance(30 * time.Minute)
	if a := post(t, f, secrets, f.SandboxKey, ""); a.status != http.StatusCreated {
		t.Fatalf("after the old secret's expires_at: %d %s, want 201", a.status, a.body)
	}
}

// A key made with expires_at works until then and gets 401 after, by the
// clock alone (no call to LakiConnect in between).
func TestContractKeyExpiresByTheClock(t *testing.T) {
	f := lakisimtest.Start(t)
	expiresAt := f.Clock.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"short","scopes":["payments:read"],"expires_at":"`+expiresAt+`"}`)
	if a := get(t, f, f.SandboxURL+"/whoami", k.value()); a.status != http.StatusOK {
		t.Fatalf("before expires_at: %d", a.status)
	}
	f.Clock.Advance(2 * time.Hour)
	get(t, f, f.SandboxURL+"/whoami", k.value()).wantError(t, http.StatusUnauthorized, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey)
	if got, _ := f.Sim.Key(k.ID); got.Status != laki.StatusRevoked {
		t.Fatalf("after expires_at the key is %s, want revoked", got.Status)
	}
}
