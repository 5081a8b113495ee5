package lakisim_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

func TestFaultStatusTimesAndRetryAfter(t *testing.T) {
	f := lakisimtest.Start(t)
	if err := f.Sim.InjectFault(lakisim.Fault{Method: "post", PathPrefix: "/api_keys", Status: 503, Times: 2}); err != nil {
		t.Fatal(err)
	}
	body := `{"name":"x","scopes":["payments:read"]}`
	for range 2 {
		post(t, f, f.SandboxURL+"/api_keys", f.SandboxKey, body).wantError(t, 503, lakiconnect.ErrTypeAPI, lakiconnect.CodeInternal)
	}
	// GETs are not hit; the third POST goes through.
	if a := get(t, f, f.SandboxURL+"/api_keys", f.SandboxKey); a.status != 200 {
		t.Fatalf("GET hit by a POST fault: %d", a.status)
	}
	createKey(t, f, laki.Sandbox, f.SandboxKey, body)
	if n := f.Sim.RequestCount("POST", "/api_keys"); n != 3 {
		t.Fatalf("RequestCount(POST /api_keys) = %d, want 3", n)
	}

	if err := f.Sim.InjectFault(lakisim.Fault{PathPrefix: "/whoami", Status: 429, RetryAfter: 1500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	for range 3 { // Times 0: until cleared
		a := get(t, f, f.SandboxURL+"/whoami", f.SandboxKey)
		a.wantError(t, 429, lakiconnect.ErrTypeRateLimit, lakiconnect.CodeRateLimited)
		if ra := a.header.Get("Retry-After"); ra != "2" {
			t.Fatalf("Retry-After = %q, want 2 (1.5s rounded up)", ra)
		}
	}
	f.Sim.ClearFaults()
	if a := get(t, f, f.SandboxURL+"/whoami", f.SandboxKey); a.status != 200 {
		t.Fatalf("after ClearFaults: %d", a.status)
	}
	for _, bad := range []lakisim.Fault{{}, {Status: 200}, {Status: 500, Drop: true}, {PathPrefix: "api_keys", Status: 500}} {
		if err := f.Sim.InjectFault(bad); err == nil {
			t.Fatalf("fault %+v accepted", bad)
		}
	}
}

func TestFaultLatency(t *testing.T) {
	f := lakisimtest.Start(t)
	if err := f.Sim.InjectFault(lakisim.Fault{PathPrefix: "/whoami", Latency: 300 * time.Millisecond, Times: 1}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", f.SandboxURL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+f.SandboxKey.Reveal())
	client := &http.Client{Timeout: 100 * time.Millisecond}
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("a client with a 100ms timeout got an answer despite 300ms latency")
	}
	if a := get(t, f, f.SandboxURL+"/whoami", f.SandboxKey); a.status != 200 {
		t.Fatalf("after the one-shot latency: %d", a.status)
	}
}

func TestDroppedAnswerAfterProcessingThenIdempotentRetry(t *testing.T) {
	for _, tls := range []bool{false, true} {
		opts := []lakisimtest.Option{}
		if tls {
			opts = append(opts, lakisimtest.WithTLS())
		}
		f := lakisimtest.Start(t, opts...)
		if err := f.Sim.InjectFault(lakisim.Fault{Method: "POST", PathPrefix: "/api_keys", Drop: true, AfterProcessing: true, Times: 1}); err != nil {
			t.Fatal(err)
		}
		body := `{"name":"lost answer","scopes":["payments:read"]}`
		req, _ := http.NewRequest("POST", f.SandboxURL+"/api_keys", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.SandboxKey.Reveal())
		req.Header.Set(lakiconnect.IdempotencyKeyHeader, "create-1")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := f.Server.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("tls=%v: dropped connection answered %d", tls, resp.StatusCode)
		}
		if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != 2 {
			t.Fatalf("tls=%v: the create behind the dropped answer did not happen (%d keys)", tls, n)
		}
		a := send(t, f, request{method: "POST", url: f.SandboxURL + "/api_keys", key: f.SandboxKey, body: body,
			headers: map[string]string{lakiconnect.IdempotencyKeyHeader: "create-1"}})
		if a.status != 201 || a.header.Get(lakiconnect.IdempotentReplayedHeader) != "true" {
			t.Fatalf("tls=%v: retry: %d %s", tls, a.status, a.body)
		}
		if n := len(f.Sim.Keys(laki.Sandbox, f.MasterMerchantID)); n != 2 {
			t.Fatalf("tls=%v: retry created another key (%d keys)", tls, n)
		}
		reqs := f.Sim.Requests()
		if !reqs[0].Faulted || reqs[0].Status != 201 || reqs[1].Faulted || !reqs[1].Replayed {
			t.Fatalf("tls=%v: recorded = %+v", tls, reqs)
		}
	}
}

func TestLogsAndRecordsNeverHoldSecrets(t *testing.T) {
	var logs syncbuf.Buffer
	r := newReceiver(t)
	f := lakisimtest.Start(t, lakisimtest.WithOptions(func(o *lakisim.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		o.DeliveryClient = r.srv.Client()
		o.AuthFailureSpikeThreshold = 2
	}))
	ep, ws, err := f.Sim.AddWebhookEndpoint(laki.Sandbox, f.MasterMerchantID, r.srv.URL, []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.secret = ws.Secret
	r.mu.Unlock()
	secrets := []string{f.SandboxKey.Reveal(), f.ProductionKey.Reveal(), ws.Secret.Reveal()}
	k := createKey(t, f, laki.Sandbox, f.SandboxKey, `{"name":"x","scopes":["payments:read"]}`)
	secrets = append(secrets, k.Secret)
	var s2 createdSecret
	post(t, f, f.SandboxURL+"/webhook_endpoints/"+ep.ID+"/secrets", f.SandboxKey, "").decode(t, &s2)
	secrets = append(secrets, s2.Secret)
	get(t, f, f.ProductionURL+"/whoami", k.value()) // wrong environment: 401
	post(t, f, f.SandboxURL+"/api_keys/"+k.ID+"/revoke", f.SandboxKey, "")
	get(t, f, f.SandboxURL+"/whoami", k.value()) // revoked: 401
	get(t, f, f.SandboxURL+"/whoami", k.value()) // and a spike
	r.waitFor(2)

	out := []byte(logs.String())
	if !bytes.Contains(out, []byte("lakisim: request")) {
		t.Fatalf("no request log lines captured: %s", out)
	}
	if s, found := containsAny(out, secrets...); found {
		t.Fatalf("a log line holds the secret ending %s", s[len(s)-4:])
	}
	for _, needle := range []string{"Bearer", "Authorization"} {
		if bytes.Contains(out, []byte(needle)) {
			t.Fatalf("logs mention %s", needle)
		}
	}
	rec := mustJSON(t, f.Sim.Requests()) + mustJSON(t, f.Sim.Events()) + mustJSON(t, f.Sim.Deliveries()) + mustJSON(t, f.Sim.Keys(laki.Sandbox, f.MasterMerchantID))
	if s, found := containsAny([]byte(rec), secrets...); found {
		t.Fatalf("introspection holds the secret ending %s", s[len(s)-4:])
	}
}
