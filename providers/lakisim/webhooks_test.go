package lakisim_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

var (
	whsecPattern = regexp.MustCompile(`^whsec_[A-Za-z0-9+/]{43}=$`)
	eventIDPat   = regexp.MustCompile(`^evt_[A-Za-z0-9]{24}$`)
)

// verifiedBy reports which of secrets produced a v1 in header, computed
// here from the README's construction, independent of the simulator.
func verifiedBy(t *testing.T, header string, body []byte, secrets ...secret.Value) []bool {
	t.Helper()
	parts := strings.Split(header, ",")
	ts, ok := strings.CutPrefix(parts[0], "t=")
	if !ok {
		t.Fatalf("header %q does not start with t=", header)
	}
	if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
		t.Fatalf("header t %q: %v", ts, err)
	}
	var sigs []string
	for _, p := range parts[1:] {
		v, ok := strings.CutPrefix(p, "v1=")
		if !ok {
			t.Fatalf("header part %q is not v1=", p)
		}
		sigs = append(sigs, v)
	}
	out := make([]bool, len(secrets))
	for i, s := range secrets {
		m := hmac.New(sha256.New, []byte(s.Reveal()))
		m.Write([]byte(ts + "."))
		m.Write(body)
		want := hex.EncodeToString(m.Sum(nil))
		for _, got := range sigs {
			if got == want {
				out[i] = true
			}
		}
	}
	if len(sigs) == 0 {
		t.Fatalf("header %q has no v1", header)
	}
	return out
}

func sigCount(header string) int { return strings.Count(header, "v1=") }

type createdSecret struct {
	laki.WebhookSecretInfo
	EndpointID string `json:"endpoint_id"`
	Secret     string `json:"secret"`
}

func testSignature(t *testing.T, f *lakisimtest.Fixture, epID string) laki.TestSignature {
	t.Helper()
	a := post(t, f, f.SandboxURL+"/webhook_endpoints/"+epID+"/test_signature", f.SandboxKey, "")
	if a.status != 200 {
		t.Fatalf("test_signature: %d %s", a.status, a.body)
	}
	var ts laki.TestSignature
	a.decode(t, &ts)
	return ts
}

func TestWebhookSecretRotation(t *testing.T) {
	f := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	ep, first, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, "https://hooks.example/laki", []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	if !whsecPattern.MatchString(first.Secret.Reveal()) {
		t.Fatal("seeded webhook secret is not whsec_ + 32 bytes base64")
	}

	ts := testSignature(t, f, ep.ID)
	var ev lakiconnect.Event
	if err := json.Unmarshal([]byte(ts.Payload), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != laki.EventTestPing || ev.MasterMerchantID != f.MasterMerchantID || !eventIDPat.MatchString(ev.ID) || ev.Created != lakisimtest.Epoch().Unix() {
		t.Fatalf("test.ping payload = %+v", ev)
	}
	if got := verifiedBy(t, ts.SignatureHeader, []byte(ts.Payload), first.Secret); !got[0] || sigCount(ts.SignatureHeader) != 1 {
		t.Fatalf("one secret: header %q", ts.SignatureHeader)
	}

	// A second secret: both sign, old first.
	a := post(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID+"/secrets", f.SandboxKey, "")
	if a.status != 201 {
		t.Fatalf("create secret: %d %s", a.status, a.body)
	}
	var second createdSecret
	a.decode(t, &second)
	if second.EndpointID != ep.ID || !whsecPattern.MatchString(second.Secret) || second.Status != laki.StatusActive || second.SecretLast4 != second.Secret[len(second.Secret)-4:] {
		t.Fatalf("created secret = %+v", second.WebhookSecretInfo)
	}
	ts = testSignature(t, f, ep.ID)
	header := ts.SignatureHeader
	if sigCount(header) != 2 {
		t.Fatalf("two secrets, header %q", header)
	}
	parts := strings.Split(header, ",")
	if got := verifiedBy(t, parts[0]+","+parts[1], []byte(ts.Payload), first.Secret, secret.New(second.Secret)); !got[0] || got[1] {
		t.Fatalf("first v1 is not the older secret's: %v", got)
	}
	if got := verifiedBy(t, parts[0]+","+parts[2], []byte(ts.Payload), secret.New(second.Secret)); !got[0] {
		t.Fatal("second v1 is not the newer secret's")
	}

	// A third is refused.
	post(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID+"/secrets", f.SandboxKey, "").
		wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeTooManySecrets)

	// Expire the old one in an hour: it still signs until then.
	expireURL := f.SandboxURL + "/webhook_endpoints/" + ep.ID + "/secrets/" + first.ID + "/expire"
	for _, bad := range []time.Duration{-time.Second, 7*24*time.Hour + time.Second} {
		post(t, f, expireURL, f.SandboxKey, mustJSON(t, map[string]any{"expires_at": lakisimtest.Epoch().Add(bad)})).
			wantError(t, http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid)
	}
	var after laki.WebhookEndpoint
	a = post(t, f, expireURL, f.SandboxKey, mustJSON(t, map[string]any{"expires_at": lakisimtest.Epoch().Add(time.Hour)}))
	a.decode(t, &after)
	if a.status != 200 || after.Secrets[0].Status != laki.StatusExpiring || after.Secrets[1].Status != laki.StatusActive {
		t.Fatalf("after expire: %d %+v", a.status, after)
	}
	if _, found := containsAny(a.body, first.Secret.Reveal(), second.Secret); found {
		t.Fatal("endpoint answer contains a secret")
	}
	// The new one cannot be expired now: it is the last that is not ending.
	post(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID+"/secrets/"+second.ID+"/expire", f.SandboxKey, "").
		wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeLastSecret)
	if n := sigCount(testSignature(t, f, ep.ID).SignatureHeader); n != 2 {
		t.Fatalf("before expires_at: %d signatures, want 2", n)
	}
	f.Clock.Advance(time.Hour)
	ts = testSignature(t, f, ep.ID)
	if got := verifiedBy(t, ts.SignatureHeader, []byte(ts.Payload), first.Secret, secret.New(second.Secret)); got[0] || !got[1] || sigCount(ts.SignatureHeader) != 1 {
		t.Fatalf("after expires_at: header %q, verified %v", ts.SignatureHeader, got)
	}
	// Now there is room for a new one; the revoked one cannot be expired again.
	post(t, f, expireURL, f.SandboxKey, "").wantError(t, http.StatusConflict, lakiconnect.ErrTypeConflict, lakiconnect.CodeKeyRevoked)
	if a := post(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID+"/secrets", f.SandboxKey, ""); a.status != 201 {
		t.Fatalf("create after expiry: %d %s", a.status, a.body)
	}
}

func TestWebhookEndpointsReadAndList(t *testing.T) {
	f := lakisimtest.Start(t)
	ep, _, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, "https://hooks.example/a", []string{laki.EventAPIKeyRevoked})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.Sim.AddWebhookEndpoint(laki.Production, f.MasterMerchantID, "https://hooks.example/b", []string{"*"}); err != nil {
		t.Fatal(err)
	}
	var list lakiconnect.List[laki.WebhookEndpoint]
	get(t, f, f.SandboxURL+"/webhook_endpoints", f.SandboxKey).decode(t, &list)
	if len(list.Data) != 1 || list.Data[0].ID != ep.ID || list.HasMore {
		t.Fatalf("sandbox endpoints = %+v", list)
	}
	var one laki.WebhookEndpoint
	get(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID, f.SandboxKey).decode(t, &one)
	if one.URL != "https://hooks.example/a" || len(one.Secrets) != 1 || one.Status != "enabled" {
		t.Fatalf("endpoint = %+v", one)
	}
	get(t, f, f.ProductionURL+"/webhook_endpoints/"+ep.ID, f.ProductionKey).
		wantError(t, http.StatusNotFound, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeResourceMissing)
}

// receiver is a TLS webhook receiver that verifies signatures itself.
type receiver struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	secret  secret.Value
	events  []lakiconnect.Event
	fail    int // answer 500 to this many deliveries first
	bad     []string
	arrived chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{t: t, arrived: make(chan struct{}, 100)}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.fail > 0 {
			r.fail--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		header := req.Header.Get(lakiconnect.SignatureHeader)
		if header == "" || !verifiedBy(t, header, body, r.secret)[0] {
			r.bad = append(r.bad, header)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev lakiconnect.Event
		if err := json.Unmarshal(body, &ev); err != nil {
			r.bad = append(r.bad, string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.events = append(r.events, ev)
		w.WriteHeader(http.StatusNoContent)
		r.arrived <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) waitFor(n int) []lakiconnect.Event {
	r.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got := len(r.events)
		r.mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-r.arrived:
		case <-deadline:
			r.t.Fatalf("waited 10s for %d deliveries, got %d", n, got)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bad) > 0 {
		r.t.Fatalf("deliveries that did not verify: %q", r.bad)
	}
	return append([]lakiconnect.Event(nil), r.events...)
}

func startWithReceiver(t *testing.T, events []string, opts ...func(*lakisim.Options)) (*lakisimtest.Fixture, *receiver) {
	r := newReceiver(t)
	f := lakisimtest.Start(t, lakisimtest.WithOptions(func(o *lakisim.Options) {
		o.DeliveryClient = r.srv.Client()
		o.DeliveryBackoff = time.Millisecond
		for _, x := range opts {
			x(o)
		}
	}))
	_, ws, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, r.srv.URL+"/laki", events)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = ws.Secret
	r.mu.Unlock()
	return f, r
}

func decodeData(t *testing.T, ev lakiconnect.Event, v any) {
	t.Helper()
	if err := json.Unmarshal(ev.Data, v); err != nil {
		t.Fatal(err)
	}
}

func TestRevokedAndExpiredKeysRaiseSignedEvents(t *testing.T) {
	f, r := startWithReceiver(t, []string{laki.EventAPIKeyRevoked})
	k1 := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"a","scopes":["payments:read"]}`)
	k2 := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"b","scopes":["payments:read"]}`)
	post(t, f, f.SandboxURL+"/api_keys/"+k1.ID+"/revoke", f.SandboxKey, "")
	post(t, f, f.SandboxURL+"/api_keys/"+k2.ID+"/expire", f.SandboxKey, mustJSON(t, map[string]any{"expires_at": lakisimtest.Epoch().Add(time.Hour)}))
	f.Clock.Advance(time.Hour) // the background sweep notices without a request

	got := r.waitFor(2)
	reasons := map[string]string{}
	for _, ev := range got {
		if ev.Type != laki.EventAPIKeyRevoked || ev.MasterMerchantID != f.MasterMerchantID || ev.Environment != laki.Sandbox || !eventIDPat.MatchString(ev.ID) || ev.IdempotencyKey == "" {
			t.Fatalf("event = %+v", ev)
		}
		var d lakiconnect.APIKeyRevokedData
		decodeData(t, ev, &d)
		reasons[d.KeyID] = d.Reason
	}
	if reasons[k1.ID] != "revoked_by_api" || reasons[k2.ID] != "expired" {
		t.Fatalf("reasons = %v", reasons)
	}
	// expiring_soon was raised too but this endpoint does not take it.
	var soon int
	for _, ev := range f.Sim.Events() {
		if ev.Type == laki.EventAPIKeyExpiringSoon {
			soon++
		}
	}
	if soon != 1 {
		t.Fatalf("%d expiring_soon events, want 1", soon)
	}
	if n := len(r.waitFor(2)); n != 2 {
		t.Fatalf("endpoint got %d events, want only the 2 it subscribed to", n)
	}
}

func TestExposeKeyDeliversTwiceWithTheSameIdentity(t *testing.T) {
	f, r := startWithReceiver(t, []string{"*"}, func(o *lakisim.Options) { o.DeliverTwice = true })
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"leaked","scopes":["payments:read"]}`)
	if _, err := f.Sim.ExposeKey(k.ID, "pastebin", ""); err == nil {
		t.Fatal("unknown source accepted")
	}
	id, err := f.Sim.ExposeKey(k.ID, "public_repository", "https://github.example/leak")
	if err != nil {
		t.Fatal(err)
	}
	got := r.waitFor(2)
	if got[0].ID != id || got[1].ID != id || got[0].IdempotencyKey != got[1].IdempotencyKey {
		t.Fatalf("deliveries = %+v", got)
	}
	var d lakiconnect.APIKeyExposedData
	decodeData(t, got[0], &d)
	if d.KeyID != k.ID || d.FoundIn != "public_repository" || d.URL != "https://github.example/leak" || !d.DetectedAt.Equal(lakisimtest.Epoch()) {
		t.Fatalf("data = %+v", d)
	}
	if _, found := containsAny(got[0].Data, k.Secret); found {
		t.Fatal("exposed event carries the secret")
	}
}

func TestDeliveryIsRetriedUntilAccepted(t *testing.T) {
	f, r := startWithReceiver(t, []string{"*"})
	r.mu.Lock()
	r.fail = 2
	r.mu.Unlock()
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"x","scopes":["payments:read"]}`)
	if _, err := f.Sim.ExposeKey(k.ID, "report", ""); err != nil {
		t.Fatal(err)
	}
	r.waitFor(1)
	d := waitDeliveries(t, f.Sim, 3)
	if len(d) != 3 || d[0].StatusCode != 500 || d[1].StatusCode != 500 || !d[2].Succeeded() || d[2].Attempt != 3 {
		t.Fatalf("deliveries = %+v", d)
	}
}

func TestAuthFailureSpikeAndCounts(t *testing.T) {
	f, r := startWithReceiver(t, []string{laki.EventAuthFailureSpike}, func(o *lakisim.Options) {
		o.AuthFailureSpikeThreshold = 5
		o.AuthFailureSpikeWindow = time.Minute
	})
	unknown := secret.New("lk_test_UNKNOWN" + strings.Repeat("x", 33))
	for range 5 {
		get(t, f, f.SandboxURL+"/whoami", unknown)
	}
	reader := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"reader","scopes":["payments:read"]}`)
	for range 2 {
		get(t, f, f.SandboxURL+"/api_keys", reader.value())
	}
	got := r.waitFor(1)
	var d lakiconnect.AuthFailureSpikeData
	decodeData(t, got[0], &d)
	if d.KeyID != nil || d.KeyPrefix != "lk_test_UNKN" || d.StatusCode != 401 || d.Count != 5 || d.WindowSeconds != 60 {
		t.Fatalf("spike = %+v", d)
	}

	f.Clock.Advance(time.Minute)
	a := get(t, f, f.SandboxURL+"/security/auth_failures?since="+lakisimtest.Epoch().Format(time.RFC3339), f.SandboxKey)
	var counts struct {
		Data []laki.AuthFailureCount `json:"data"`
	}
	a.decode(t, &counts)
	if len(counts.Data) != 2 {
		t.Fatalf("counts = %s", a.body)
	}
	for _, c := range counts.Data {
		switch c.StatusCode {
		case 401:
			if c.KeyID != nil || c.KeyPrefix != "lk_test_UNKN" || c.Count != 5 {
				t.Fatalf("401 row = %+v", c)
			}
		case 403:
			if c.KeyID == nil || *c.KeyID != reader.ID || c.KeyPrefix != reader.Secret[:12] || c.Count != 2 {
				t.Fatalf("403 row = %+v", c)
			}
		}
	}
	if _, found := containsAny(a.body, unknown.Reveal(), reader.Secret); found {
		t.Fatal("auth_failures shows a whole secret")
	}
	// until excludes later failures; since is required.
	a = get(t, f, f.SandboxURL+"/security/auth_failures?since="+lakisimtest.Epoch().Add(time.Second).Format(time.RFC3339), f.SandboxKey)
	a.decode(t, &counts)
	if len(counts.Data) != 0 {
		t.Fatalf("since after the failures: %s", a.body)
	}
	fr := lakisimtest.Start(t, lakisimtest.WithResponseContractOnly())
	get(t, fr, fr.SandboxURL+"/security/auth_failures", fr.SandboxKey).
		wantError(t, http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid)
}

// waitDeliveries waits until the simulator has recorded n delivery attempts
// (the receiver sees a delivery just before the simulator records it).
func waitDeliveries(t *testing.T, sim *lakisim.Simulator, n int) []lakisim.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := sim.Deliveries()
		if len(d) >= n || time.Now().After(deadline) {
			return d
		}
		time.Sleep(5 * time.Millisecond)
	}
}
