package contract_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/lakirotator/lakirotator/providers/lakiconnect/openapi"
	"github.com/lakirotator/lakirotator/providers/lakisim/contract"
)

const validWhoAmI = `{"key_id":"key_abc","environment":"sandbox","master_merchant_id":"mm_0123456789abcdef","scopes":["payments:read"],"status":"active","expires_at":null}`

// fixed answers with a canned status and body for every request.
func fixed(status int, body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Request-Id", "req_1")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

func exchange(t *testing.T, h http.Handler, method, path, body string, opts ...contract.Option) []contract.Violation {
	t.Helper()
	var mu sync.Mutex
	var got []contract.Violation
	mw, err := contract.Middleware(openapi.Spec(), func(v contract.Violation) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, v)
	}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(mw(h))
	defer srv.Close()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer x")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	mu.Lock()
	defer mu.Unlock()
	return got
}

func TestValidExchangePasses(t *testing.T) {
	for _, base := range []string{"/v1", "/sandbox/v1", "/production/v1"} {
		if v := exchange(t, fixed(200, validWhoAmI), "GET", base+"/whoami", ""); len(v) != 0 {
			t.Fatalf("%s: unexpected violations: %v", base, v)
		}
	}
	errBody := `{"error":{"type":"rate_limit_error","code":"rate_limited","message":"slow down"}}`
	if v := exchange(t, fixed(429, errBody), "GET", "/v1/api_keys/key_abcdefghijklmnopqrstuvwx", ""); len(v) != 0 {
		t.Fatalf("an Error answer with a status the operation does not list: %v", v)
	}
}

func TestResponseViolationsAreReported(t *testing.T) {
	cases := map[string]struct {
		status int
		body   string
	}{
		"missing field":       {200, `{"key_id":"key_abc","environment":"sandbox","scopes":[],"status":"active"}`},
		"bad enum":            {200, strings.Replace(validWhoAmI, `"active"`, `"alive"`, 1)},
		"bad merchant id":     {200, strings.Replace(validWhoAmI, "mm_0123456789abcdef", "mm_1", 1)},
		"error type unknown":  {401, `{"error":{"type":"auth_error","code":"x","message":"m"}}`},
		"error not in schema": {503, `oops`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v := exchange(t, fixed(c.status, c.body), "GET", "/v1/whoami", "")
			if len(v) == 0 {
				t.Fatal("no violation reported")
			}
			if v[0].Phase != contract.PhaseResponse || v[0].Operation != "whoAmI" || !strings.Contains(v[0].String(), "whoAmI") {
				t.Fatalf("violation = %s", v[0])
			}
		})
	}
}

func TestRequestViolationsAreReported(t *testing.T) {
	created := `{"error":{"type":"invalid_request_error","code":"parameter_invalid","message":"m"}}`
	v := exchange(t, fixed(400, created), "POST", "/v1/api_keys", `{"name":"","scopes":[]}`)
	if len(v) == 0 || v[0].Phase != contract.PhaseRequest || v[0].Operation != "createApiKey" {
		t.Fatalf("violations = %v", v)
	}
	if v := exchange(t, fixed(400, created), "POST", "/v1/api_keys", `{"name":"","scopes":[]}`, contract.ResponsesOnly()); len(v) != 0 {
		t.Fatalf("ResponsesOnly still checked the request: %v", v)
	}
	if v := exchange(t, fixed(404, created), "GET", "/v1/no_such_thing", ""); len(v) == 0 || !strings.Contains(v[0].Err.Error(), "no operation") {
		t.Fatalf("unknown path: %v", v)
	}
}

func TestMissingRequestIDIsReported(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, validWhoAmI)
	})
	v := exchange(t, h, "GET", "/v1/whoami", "")
	if len(v) != 1 || !strings.Contains(v[0].Err.Error(), "Request-Id") {
		t.Fatalf("violations = %v", v)
	}
}
