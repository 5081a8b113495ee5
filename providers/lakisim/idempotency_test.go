package lakisim_test

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

func idemPost(t *testing.T, f *lakisimtest.Fixture, url, key string, caller createdKey, body string) answer {
	t.Helper()
	return send(t, f, request{method: http.MethodPost, url: url, key: caller.value(), body: body,
		headers: map[string]string{lakiconnect.IdempotencyKeyHeader: key}})
}

func TestIdempotentReplayIsByteForByte(t *testing.T) {
	f := lakisimtest.Start(t)
	caller := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"rotator","scopes":["api_keys:write","api_keys:read","payments:read"]}`)
	body := `{"name":"checkout","scopes":["payments:read"]}`
	url := f.SandboxURL + "/api_keys"

	first := idemPost(t, f, url, "rotate-prod/checkout-v1-create", caller, body)
	f.Clock.Advance(23 * time.Hour)
	second := idemPost(t, f, url, "rotate-prod/checkout-v1-create", caller, body)
	if first.status != 201 || second.status != 201 || !bytes.Equal(first.body, second.body) {
		t.Fatalf("replay differs: %d %s / %d %s", first.status, first.body, second.status, second.body)
	}
	if first.header.Get(lakiconnect.IdempotentReplayedHeader) != "" || second.header.Get(lakiconnect.IdempotentReplayedHeader) != "true" {
		t.Fatalf("Idempotent-Replayed: first %q, second %q", first.header.Get(lakiconnect.IdempotentReplayedHeader), second.header.Get(lakiconnect.IdempotentReplayedHeader))
	}
	if first.header.Get(lakiconnect.RequestIDHeader) == second.header.Get(lakiconnect.RequestIDHeader) {
		t.Fatal("replay reused the Request-Id")
	}
	if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != 3 {
		t.Fatalf("%d keys, want 3 (management, caller, one created)", n)
	}

	// Same idempotency key, other body: refused, nothing created.
	idemPost(t, f, url, "rotate-prod/checkout-v1-create", caller, `{"name":"other","scopes":["payments:read"]}`).
		wantError(t, http.StatusUnprocessableEntity, lakiconnect.ErrTypeIdempotency, lakiconnect.CodeIdempotencyKeyReused)

	// Scoped per calling key: the management key with the same idempotency key creates its own.
	mgmt := createdKey{Secret: f.SandboxKey.Reveal()}
	other := idemPost(t, f, url, "rotate-prod/checkout-v1-create", mgmt, body)
	if other.status != 201 || bytes.Equal(other.body, first.body) {
		t.Fatalf("other caller got the first caller's answer: %d", other.status)
	}

	// After 24 h the key is forgotten.
	f.Clock.Advance(time.Hour)
	third := idemPost(t, f, url, "rotate-prod/checkout-v1-create", caller, body)
	if third.status != 201 || bytes.Equal(third.body, first.body) {
		t.Fatalf("after 24h: %d, same body %v", third.status, bytes.Equal(third.body, first.body))
	}
	if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != 5 {
		t.Fatalf("%d keys, want 5", n)
	}
}

func TestIdempotencyOnOtherPosts(t *testing.T) {
	f := lakisimtest.Start(t)
	ep, _, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, "https://hooks.example/laki", []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	mgmt := createdKey{Secret: f.SandboxKey.Reveal()}
	url := f.SandboxURL + "/webhook_endpoints/" + ep.ID + "/secrets"
	a := idemPost(t, f, url, "whsec-rotate-1", mgmt, "")
	b := idemPost(t, f, url, "whsec-rotate-1", mgmt, "")
	if a.status != 201 || !bytes.Equal(a.body, b.body) || b.header.Get(lakiconnect.IdempotentReplayedHeader) != "true" {
		t.Fatalf("secret create replay: %d %d", a.status, b.status)
	}
	if n := len(f.Sim.WebhookEndpoints(laki.Sandbox, f.MasterMerchantID)[0].Secrets); n != 2 {
		t.Fatalf("%d secrets, want 2", n)
	}
	// The same idempotency key on another path is another request.
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"x","scopes":["payments:read"]}`)
	idemPost(t, f, f.SandboxURL+"/api_keys/"+k.ID+"/revoke", "whsec-rotate-1", mgmt, "").
		wantError(t, http.StatusUnprocessableEntity, lakiconnect.ErrTypeIdempotency, lakiconnect.CodeIdempotencyKeyReused)
}

func TestIdempotencyKeyMustBePrintableASCII(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	mgmt := createdKey{Secret: f.SandboxKey.Reveal()}
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{string(long), "tab\there"} {
		idemPost(t, f, f.SandboxURL+"/api_keys", bad, mgmt, `{"name":"x","scopes":["payments:read"]}`).
			wantError(t, http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid)
	}
}

func TestRateLimitPerCallingKey(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithOptions(func(o *lakisim.Options) { o.RateLimit = 5 }))
	other := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"other","scopes":["payments:read"]}`)
	var limited answer
	for i := 0; i < 50; i++ { // far more than 5 within the test's first second
		a := get(t, f, f.SandboxURL+"/whoami", f.SandboxKey)
		if a.status == http.StatusTooManyRequests {
			limited = a
			break
		}
	}
	if limited.status == 0 {
		t.Fatal("no 429 after 50 rapid requests at 5/s")
	}
	limited.wantError(t, http.StatusTooManyRequests, lakiconnect.ErrTypeRateLimit, lakiconnect.CodeRateLimited)
	if limited.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	if a := get(t, f, f.SandboxURL+"/whoami", other.value()); a.status != 200 {
		t.Fatalf("another key was limited too: %d", a.status)
	}
}

func TestRateLimitOff(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithOptions(func(o *lakisim.Options) { o.RateLimit = -1 }))
	for i := 0; i < 150; i++ {
		if a := get(t, f, f.SandboxURL+"/whoami", f.SandboxKey); a.status != 200 {
			t.Fatalf("request %d: %d", i, a.status)
		}
	}
}
