package lakiconnect_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	lc "github.com/lakirotator/lakirotator/providers/lakiconnect"
)

const testKey = "lk_test_AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJ"

// fakeAPI is an httptest TLS server whose handler the test scripts per attempt.
type fakeAPI struct {
	srv    *httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	reqs   []recordedRequest
	sleeps []time.Duration
	// routes are the OnRequest calls: "METHOD route status".
	routes []string
}

type recordedRequest struct {
	Method, Path, RawQuery, Auth, IdemKey, Body string
	HasIdemKey                                  bool
}

func newFakeAPI(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) *fakeAPI {
	t.Helper()
	f := &fakeAPI{}
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(f.hits.Add(1))
		b, _ := io.ReadAll(r.Body)
		_, has := r.Header[lc.IdempotencyKeyHeader]
		f.mu.Lock()
		f.reqs = append(f.reqs, recordedRequest{
			Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
			Auth: r.Header.Get("Authorization"), IdemKey: r.Header.Get(lc.IdempotencyKeyHeader),
			HasIdemKey: has, Body: string(b),
		})
		f.mu.Unlock()
		w.Header().Set(lc.RequestIDHeader, "req_"+strconv.Itoa(n))
		h(n, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) config(mut ...func(*lc.Config)) lc.Config {
	cfg := lc.Config{
		BaseURL:   f.srv.URL + "/v1",
		APIKey:    secret.New(testKey),
		Transport: f.srv.Client().Transport,
		Sleep: func(ctx context.Context, d time.Duration) error {
			f.mu.Lock()
			f.sleeps = append(f.sleeps, d)
			f.mu.Unlock()
			return ctx.Err()
		},
		OnRequest: func(method, path string, status int, err error) {
			f.mu.Lock()
			f.routes = append(f.routes, fmt.Sprintf("%s %s %d", method, path, status))
			f.mu.Unlock()
		},
	}
	for _, m := range mut {
		m(&cfg)
	}
	return cfg
}

func (f *fakeAPI) client(t *testing.T, mut ...func(*lc.Config)) *lc.Client {
	t.Helper()
	c, err := lc.NewClient(f.config(mut...))
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (f *fakeAPI) requests() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.reqs...)
}

func (f *fakeAPI) recordedSleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeAPIError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "code": code, "message": msg}})
}

// dropConnection closes the TCP connection without an answer.
func dropConnection(t *testing.T, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	_ = conn.Close()
}

var whoami = map[string]any{
	"key_id": "key_AAAAAAAAAAAAAAAAAAAAAAAA", "environment": "sandbox",
	"master_merchant_id": "mm_AAAAAAAAAAAAAAAA", "scopes": []string{"api_keys:read"}, "status": "active",
}

func TestWhoAmISendsBearerKeyAndDecodes(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, whoami) })
	got, err := f.client(t).WhoAmI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID != "key_AAAAAAAAAAAAAAAAAAAAAAAA" || got.Environment != laki.Sandbox || got.Status != laki.StatusActive ||
		len(got.Scopes) != 1 || got.Scopes[0] != laki.ScopeAPIKeysRead {
		t.Fatalf("decoded %+v", got)
	}
	r := f.requests()[0]
	if r.Method != "GET" || r.Path != "/v1/whoami" || r.Auth != "Bearer "+testKey || r.HasIdemKey {
		t.Fatalf("request %+v", r)
	}
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.Header().Set("Retry-After", "7")
			writeAPIError(w, 429, lc.ErrTypeRateLimit, lc.CodeRateLimited, "slow down")
			return
		}
		writeJSON(w, 200, whoami)
	})
	if _, err := f.client(t).WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.hits.Load() != 3 {
		t.Fatalf("%d attempts, want 3", f.hits.Load())
	}
	if s := f.recordedSleeps(); len(s) != 2 || s[0] != 7*time.Second || s[1] != 7*time.Second {
		t.Fatalf("slept %v, want [7s 7s]", s)
	}
}

func TestRetryAfterIsCapped(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "86400")
			writeAPIError(w, 429, lc.ErrTypeRateLimit, lc.CodeRateLimited, "slow down")
			return
		}
		writeJSON(w, 200, whoami)
	})
	if _, err := f.client(t).WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := f.recordedSleeps(); len(s) != 1 || s[0] != time.Minute {
		t.Fatalf("slept %v, want [1m0s]", s)
	}
}

func TestRetry5xxWithCappedJitteredBackoff(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n <= 4 {
			writeAPIError(w, 500+n, lc.ErrTypeAPI, lc.CodeInternal, "oops")
			return
		}
		writeJSON(w, 200, whoami)
	})
	if _, err := f.client(t).WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f.hits.Load() != 5 {
		t.Fatalf("%d attempts, want 5", f.hits.Load())
	}
	s := f.recordedSleeps()
	if len(s) != 4 {
		t.Fatalf("slept %v, want 4 waits", s)
	}
	for i, d := range s {
		ceiling := 250 * time.Millisecond << i
		if d < 0 || d > ceiling {
			t.Fatalf("wait %d = %v, outside [0, %v]", i, d, ceiling)
		}
	}
}

func TestRetryDroppedConnection(t *testing.T) {
	t.Run("GET", func(t *testing.T) {
		f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				dropConnection(t, w)
				return
			}
			writeJSON(w, 200, whoami)
		})
		if _, err := f.client(t).WhoAmI(context.Background()); err != nil {
			t.Fatal(err)
		}
		if f.hits.Load() != 2 {
			t.Fatalf("%d attempts, want 2", f.hits.Load())
		}
	})
	t.Run("POST with idempotency key resends the same key", func(t *testing.T) {
		f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				dropConnection(t, w)
				return
			}
			writeJSON(w, 201, createdKey("lk_test_"+strings.Repeat("s", 40)))
		})
		if _, err := f.client(t).CreateAPIKey(context.Background(), "rotate-x-v1-create", laki.CreateAPIKeyRequest{Name: "x", Scopes: []laki.Scope{laki.ScopePaymentsRead}}); err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		if len(reqs) != 2 || reqs[0].IdemKey != "rotate-x-v1-create" || reqs[1].IdemKey != reqs[0].IdemKey || reqs[1].Body != reqs[0].Body {
			t.Fatalf("requests %+v", reqs)
		}
	})
}

func TestNoRetryWithoutIdempotencyKey(t *testing.T) {
	for _, fail := range []string{"503", "drop"} {
		t.Run(fail, func(t *testing.T) {
			f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if fail == "drop" {
					dropConnection(t, w)
					return
				}
				writeAPIError(w, 503, lc.ErrTypeAPI, lc.CodeInternal, "unavailable")
			})
			c := f.client(t)
			ctx := context.Background()
			calls := map[string]func() error{
				"expire": func() error { _, err := c.ExpireAPIKey(ctx, "", "key_1", nil); return err },
				"revoke": func() error { _, err := c.RevokeAPIKey(ctx, "", "key_1"); return err },
				"expire webhook secret": func() error {
					_, err := c.ExpireWebhookSecret(ctx, "", "we_1", "whs_1", nil)
					return err
				},
				"test signature": func() error { _, err := c.TestWebhookSignature(ctx, "", "we_1"); return err },
			}
			for name, do := range calls {
				before := f.hits.Load()
				if err := do(); err == nil {
					t.Fatalf("%s: no error", name)
				}
				if got := f.hits.Load() - before; got != 1 {
					t.Fatalf("%s: %d attempts, want 1", name, got)
				}
			}
			for _, r := range f.requests() {
				if r.HasIdemKey {
					t.Fatalf("%s %s carried an Idempotency-Key header", r.Method, r.Path)
				}
			}
			if len(f.recordedSleeps()) != 0 {
				t.Fatalf("slept %v", f.recordedSleeps())
			}
		})
	}
}

func TestNoRetryOn4xxAndErrorDecoding(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 403, map[string]any{"error": map[string]any{
			"type": lc.ErrTypePermission, "code": lc.CodeScopeEscalation,
			"message": "cannot grant payouts:write", "param": "scopes",
		}})
	})
	_, err := f.client(t).CreateAPIKey(context.Background(), "idem-1", laki.CreateAPIKeyRequest{Name: "x", Scopes: []laki.Scope{laki.ScopePayoutsWrite}})
	var apiErr *lc.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v is not an *APIError", err)
	}
	want := lc.APIError{StatusCode: 403, Type: lc.ErrTypePermission, Code: lc.CodeScopeEscalation,
		Message: "cannot grant payouts:write", Param: "scopes", RequestID: "req_1"}
	if *apiErr != want {
		t.Fatalf("decoded %+v, want %+v", *apiErr, want)
	}
	if f.hits.Load() != 1 {
		t.Fatalf("%d attempts, want 1", f.hits.Load())
	}
}

func TestNonAPIErrorBodyIsNotEchoed(t *testing.T) {
	const page = "<html>upstream said: lk_test_leaked</html>"
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(404)
		_, _ = io.WriteString(w, page)
	})
	_, err := f.client(t).GetAPIKey(context.Background(), "key_1")
	var apiErr *lc.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), "leaked") {
		t.Fatalf("error echoes the body: %v", err)
	}
}

func TestGiveUpAfterMaxRetriesWithLastError(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, 502, lc.ErrTypeAPI, lc.CodeInternal, "attempt "+strconv.Itoa(n))
	})
	_, err := f.client(t, func(c *lc.Config) { c.MaxRetries = 2 }).GetWebhookEndpoint(context.Background(), "we_1")
	var apiErr *lc.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 502 || apiErr.Message != "attempt 3" {
		t.Fatalf("error %v, want the third attempt's 502", err)
	}
	if !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("error %q does not say it gave up", err)
	}
	if f.hits.Load() != 3 {
		t.Fatalf("%d attempts, want 3", f.hits.Load())
	}

	g := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, 503, lc.ErrTypeAPI, lc.CodeInternal, "down")
	})
	if _, err := g.client(t, func(c *lc.Config) { c.MaxRetries = -1 }).WhoAmI(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if g.hits.Load() != 1 {
		t.Fatalf("MaxRetries -1: %d attempts, want 1", g.hits.Load())
	}

	d := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, 503, lc.ErrTypeAPI, lc.CodeInternal, "down")
	})
	_, _ = d.client(t).WhoAmI(context.Background())
	if d.hits.Load() != 1+lc.DefaultMaxRetries {
		t.Fatalf("default: %d attempts, want %d", d.hits.Load(), 1+lc.DefaultMaxRetries)
	}
}

func TestContextCancelledDuringBackoff(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, 503, lc.ErrTypeAPI, lc.CodeInternal, "down")
	})
	ctx, cancel := context.WithCancel(context.Background())
	c := f.client(t, func(cfg *lc.Config) {
		cfg.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
	})
	_, err := c.WhoAmI(ctx)
	var apiErr *lc.APIError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &apiErr) {
		t.Fatalf("error %v, want context.Canceled carrying the last 503", err)
	}
	if f.hits.Load() != 1 {
		t.Fatalf("%d attempts, want 1", f.hits.Load())
	}
}

func TestPerAttemptTimeout(t *testing.T) {
	release := make(chan struct{})
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	_, err := f.client(t, func(c *lc.Config) { c.Timeout = 50 * time.Millisecond; c.MaxRetries = 1 }).WhoAmI(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "GET /whoami") {
		t.Fatalf("error %q does not name method and path", err)
	}
	if f.hits.Load() != 2 {
		t.Fatalf("%d attempts, want 2 (a timed-out attempt is retried)", f.hits.Load())
	}
}

func TestRedirectIsNotFollowed(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusFound)
	})
	_, err := f.client(t).WhoAmI(context.Background())
	var apiErr *lc.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 302 {
		t.Fatalf("error %v, want a 302 APIError", err)
	}
	if f.hits.Load() != 1 {
		t.Fatalf("%d requests", f.hits.Load())
	}
}

func TestResponseBodyIsSizeLimited(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		_, _ = io.WriteString(w, `{"key_id":"`)
		_, _ = w.Write(bytes.Repeat([]byte("a"), lc.MaxResponseBytes))
		_, _ = io.WriteString(w, `"}`)
	})
	_, err := f.client(t, func(c *lc.Config) { c.MaxRetries = -1 }).WhoAmI(context.Background())
	if err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("error %v, want a size limit error", err)
	}
}

func TestRequiredArgumentsSendNothing(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, whoami) })
	c := f.client(t)
	ctx := context.Background()
	req := laki.CreateAPIKeyRequest{Name: "x", Scopes: []laki.Scope{laki.ScopePaymentsRead}}
	cases := map[string]func() error{
		"create key without idempotency key":    func() error { _, err := c.CreateAPIKey(ctx, "", req); return err },
		"create secret without idempotency key": func() error { _, err := c.CreateWebhookSecret(ctx, "", "we_1"); return err },
		"idempotency key too long":              func() error { _, err := c.CreateAPIKey(ctx, strings.Repeat("k", 256), req); return err },
		"idempotency key with newline":          func() error { _, err := c.RevokeAPIKey(ctx, "a\nb", "key_1"); return err },
		"empty key id":                          func() error { _, err := c.GetAPIKey(ctx, ""); return err },
		"empty secret id": func() error {
			_, err := c.ExpireWebhookSecret(ctx, "k", "we_1", "", nil)
			return err
		},
		"zero since": func() error { _, err := c.ListAuthFailures(ctx, time.Time{}, time.Time{}); return err },
		"until before since": func() error {
			now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			_, err := c.ListAuthFailures(ctx, now, now.Add(-time.Hour))
			return err
		},
		"empty API key via WithAPIKey": func() error { _, err := c.WithAPIKey(secret.Value{}).WhoAmI(ctx); return err },
	}
	for name, do := range cases {
		if err := do(); err == nil || !strings.Contains(err.Error(), "nothing was sent") {
			t.Errorf("%s: error %v, want one saying nothing was sent", name, err)
		}
	}
	if f.hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", f.hits.Load())
	}
}

func TestRequestShapes(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/auth_failures"):
			writeJSON(w, 200, map[string]any{"data": []map[string]any{{"key_id": nil, "key_prefix": "lk_test_XXXX", "status_code": 401, "count": 3,
				"first_seen_at": "2026-06-01T00:00:00Z", "last_seen_at": "2026-06-01T00:01:00Z"}}})
		default:
			writeJSON(w, 200, map[string]any{})
		}
	})
	c := f.client(t)
	ctx := context.Background()
	paris := time.FixedZone("CEST", 2*3600)
	at := time.Date(2026, 6, 2, 14, 0, 0, 0, paris)
	since := time.Date(2026, 6, 1, 2, 0, 0, 0, paris)
	if _, err := c.ExpireAPIKey(ctx, "exp-1", "key_a/b", &at); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExpireWebhookSecret(ctx, "exp-2", "we_1", "whs_1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RevokeAPIKey(ctx, "rev-1", "key_1"); err != nil {
		t.Fatal(err)
	}
	got, err := c.ListAuthFailures(ctx, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].KeyID != nil || got[0].Count != 3 || got[0].StatusCode != 401 {
		t.Fatalf("auth failures %+v", got)
	}
	if _, err := c.ListAuthFailures(ctx, since, since.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	want := []recordedRequest{
		{Method: "POST", Path: "/v1/api_keys/key_a%2Fb/expire", IdemKey: "exp-1", HasIdemKey: true, Body: `{"expires_at":"2026-06-02T12:00:00Z"}`},
		{Method: "POST", Path: "/v1/webhook_endpoints/we_1/secrets/whs_1/expire", IdemKey: "exp-2", HasIdemKey: true, Body: `{}`},
		{Method: "POST", Path: "/v1/api_keys/key_1/revoke", IdemKey: "rev-1", HasIdemKey: true},
		{Method: "GET", Path: "/v1/security/auth_failures", RawQuery: "since=2026-06-01T00%3A00%3A00Z"},
		{Method: "GET", Path: "/v1/security/auth_failures", RawQuery: "since=2026-06-01T00%3A00%3A00Z&until=2026-06-01T01%3A00%3A00Z"},
	}
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		w.Auth = "Bearer " + testKey
		if reqs[i] != w {
			t.Errorf("request %d = %+v\nwant %+v", i, reqs[i], w)
		}
	}
}

func TestWithAPIKeySwitchesOnlyTheKey(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, whoami) })
	c := f.client(t)
	other := "lk_test_ZZZZYYYYXXXXWWWWVVVVUUUUTTTTSSSSRRRRQQQQ"
	if _, err := c.WithAPIKey(secret.New(other)).WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if reqs[0].Auth != "Bearer "+other || reqs[1].Auth != "Bearer "+testKey {
		t.Fatalf("auth headers %q, %q", reqs[0].Auth, reqs[1].Auth)
	}
}

func TestOnRequestSeesEveryAttemptWithRouteTemplates(t *testing.T) {
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			writeAPIError(w, 500, lc.ErrTypeAPI, lc.CodeInternal, "x")
			return
		}
		writeJSON(w, 200, map[string]any{"id": "key_1"})
	})
	if _, err := f.client(t).GetAPIKey(context.Background(), "key_1"); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	want := []string{"GET /api_keys/{key_id} 500", "GET /api_keys/{key_id} 200"}
	if strings.Join(f.routes, "|") != strings.Join(want, "|") {
		t.Fatalf("OnRequest saw %v, want %v", f.routes, want)
	}
}

func keyPage(ids []string, hasMore bool) map[string]any {
	data := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		data = append(data, map[string]any{"id": id, "object": "api_key", "status": "active"})
	}
	return map[string]any{"data": data, "has_more": hasMore}
}

func TestListAPIKeysWalksEveryPage(t *testing.T) {
	var all []string
	for i := range 250 {
		all = append(all, fmt.Sprintf("key_%03d", i))
	}
	serve := func(n int, w http.ResponseWriter, r *http.Request) {
		limit, err := strconv.Atoi(r.URL.Query().Get("limit"))
		if err != nil {
			writeAPIError(w, 400, lc.ErrTypeInvalidRequest, lc.CodeParameterInvalid, "limit")
			return
		}
		start := 0
		if after := r.URL.Query().Get("starting_after"); after != "" {
			for i, id := range all {
				if id == after {
					start = i + 1
				}
			}
		}
		end := min(start+limit, len(all))
		writeJSON(w, 200, keyPage(all[start:end], end < len(all)))
	}
	f := newFakeAPI(t, serve)
	c := f.client(t)
	var got []string
	for k, err := range c.ListAPIKeys(context.Background(), laki.ListAPIKeysOptions{Status: laki.StatusActive}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k.ID)
	}
	if strings.Join(got, ",") != strings.Join(all, ",") {
		t.Fatalf("listed %d keys, want %d in order", len(got), len(all))
	}
	reqs := f.requests()
	wantQ := []string{"limit=100&status=active", "limit=100&starting_after=key_099&status=active", "limit=100&starting_after=key_199&status=active"}
	if len(reqs) != 3 {
		t.Fatalf("%d pages fetched, want 3", len(reqs))
	}
	for i, q := range wantQ {
		if reqs[i].RawQuery != q {
			t.Fatalf("page %d query %q, want %q", i+1, reqs[i].RawQuery, q)
		}
	}

	// A consumer that stops early fetches no further page.
	g := newFakeAPI(t, serve)
	for range g.client(t).ListAPIKeys(context.Background(), laki.ListAPIKeysOptions{PageSize: 10}) {
		break
	}
	if g.hits.Load() != 1 {
		t.Fatalf("early stop fetched %d pages", g.hits.Load())
	}
}

func TestListPaginationErrors(t *testing.T) {
	t.Run("error mid-walk is yielded last", func(t *testing.T) {
		f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 1 {
				writeJSON(w, 200, map[string]any{"data": []map[string]any{{"id": "we_1"}}, "has_more": true})
				return
			}
			writeAPIError(w, 403, lc.ErrTypePermission, lc.CodeMissingScope, "needs webhooks:read")
		})
		var ids []string
		var lastErr error
		for e, err := range f.client(t).ListWebhookEndpoints(context.Background(), 0) {
			if err != nil {
				lastErr = err
				continue
			}
			ids = append(ids, e.ID)
		}
		var apiErr *lc.APIError
		if len(ids) != 1 || !errors.As(lastErr, &apiErr) || apiErr.Code != lc.CodeMissingScope || !strings.Contains(lastErr.Error(), "page 2") {
			t.Fatalf("ids %v, err %v", ids, lastErr)
		}
	})
	t.Run("has_more with an empty page", func(t *testing.T) {
		f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"data": []any{}, "has_more": true})
		})
		var lastErr error
		for _, err := range f.client(t).ListAPIKeys(context.Background(), laki.ListAPIKeysOptions{}) {
			lastErr = err
		}
		if lastErr == nil || !strings.Contains(lastErr.Error(), "page is empty") || f.hits.Load() != 1 {
			t.Fatalf("err %v after %d pages", lastErr, f.hits.Load())
		}
	})
	t.Run("page size out of range", func(t *testing.T) {
		f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {})
		for _, size := range []int{-1, 101} {
			var lastErr error
			for _, err := range f.client(t).ListAPIKeys(context.Background(), laki.ListAPIKeysOptions{PageSize: size}) {
				lastErr = err
			}
			if lastErr == nil || !strings.Contains(lastErr.Error(), "page size") {
				t.Fatalf("size %d: err %v", size, lastErr)
			}
		}
		if f.hits.Load() != 0 {
			t.Fatalf("%d requests sent", f.hits.Load())
		}
	})
}

func TestBaseURLLoopbackOnlyForHTTP(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"https://sandbox.api.lakiconnect.example/v1", true},
		{"https://api.lakiconnect.example/v1/", true},
		{"http://127.0.0.1:8080/v1", true},
		{"http://127.9.9.9/v1", true},
		{"http://localhost:9000/v1", true},
		{"http://[::1]:9000/v1", true},
		{"http://sandbox.api.lakiconnect.example/v1", false},
		{"http://10.0.0.1/v1", false},
		{"http://localhost.attacker.example/v1", false},
		{"http://[::ffff:10.0.0.1]/v1", false},
		{"ftp://127.0.0.1/v1", false},
		{"https:///v1", false},
		{"https://user:pw@api.lakiconnect.example/v1", false},
		{"https://api.lakiconnect.example/v1?x=1", false},
		{"", false},
	}
	for _, tc := range tests {
		_, err := lc.NewClient(lc.Config{BaseURL: tc.url, APIKey: secret.New(testKey)})
		if (err == nil) != tc.ok {
			t.Errorf("BaseURL %q: err %v, want ok=%v", tc.url, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "BaseURL") {
			t.Errorf("BaseURL %q: error %q does not name the field", tc.url, err)
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error %q echoes URL credentials", err)
		}
	}
}

func TestPlainHTTPToLoopbackWorks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, whoami) }))
	defer srv.Close()
	c, err := lc.NewClient(lc.Config{BaseURL: srv.URL + "/v1", APIKey: secret.New(testKey)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigRejectsBadKeys(t *testing.T) {
	for name, k := range map[string]secret.Value{
		"empty":     {},
		"newline":   secret.New(testKey + "\r\nX-Evil: 1"),
		"space":     secret.New("lk_test_ abc"),
		"non-ascii": secret.New("lk_test_é"),
	} {
		_, err := lc.NewClient(lc.Config{BaseURL: "https://api.lakiconnect.example/v1", APIKey: k})
		if err == nil || !strings.Contains(err.Error(), "APIKey") {
			t.Errorf("%s: err %v", name, err)
		}
		if err != nil && k.Reveal() != "" && strings.Contains(err.Error(), k.Reveal()) {
			t.Errorf("%s: error echoes the key", name)
		}
	}
}

func TestRefusesTLS11Server(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, whoami) }))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()

	// Control: the server does answer a TLS 1.1 handshake, so the refusal
	// below is the client's minimum version and not a broken server.
	base := srv.Client().Transport.(*http.Transport).TLSClientConfig
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{RootCAs: base.RootCAs, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11, ServerName: "example.com"})
	if err != nil {
		t.Skipf("this TLS stack cannot do TLS 1.1 at all (%v); nothing to prove", err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS11 {
		t.Fatalf("control handshake negotiated %s", tls.VersionName(v))
	}
	_ = conn.Close()

	c, err := lc.NewClient(lc.Config{BaseURL: srv.URL + "/v1", APIKey: secret.New(testKey), Transport: srv.Client().Transport, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WhoAmI(context.Background())
	if err == nil {
		t.Fatal("client talked to a TLS 1.1 server")
	}
	if !strings.Contains(err.Error(), "tls:") || !strings.Contains(err.Error(), "version") {
		t.Fatalf("error %q is not a TLS version handshake failure", err)
	}
}

func TestRefusesInsecureTransports(t *testing.T) {
	base := "https://api.lakiconnect.example/v1"
	tests := map[string]http.RoundTripper{
		"skip verify":         &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // the point of the test
		"TLS 1.1 minimum":     &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS11}},
		"custom verify":       &http.Transport{TLSClientConfig: &tls.Config{VerifyPeerCertificate: func([][]byte, [][]*x509.Certificate) error { return nil }}},
		"custom TLS dialer":   &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return nil, errors.New("x") }},
		"opaque RoundTripper": roundTripFunc(func(r *http.Request) (*http.Response, error) { return nil, errors.New("x") }),
	}
	for name, rt := range tests {
		_, err := lc.NewClient(lc.Config{BaseURL: base, APIKey: secret.New(testKey), Transport: rt})
		if err == nil || !strings.Contains(err.Error(), "Transport") {
			t.Errorf("%s: err %v, want a Transport refusal", name, err)
		}
	}
	// An opaque RoundTripper is fine where no TLS is involved.
	if _, err := lc.NewClient(lc.Config{BaseURL: "http://127.0.0.1:1/v1", APIKey: secret.New(testKey), Transport: tests["opaque RoundTripper"]}); err != nil {
		t.Fatalf("opaque RoundTripper to loopback http: %v", err)
	}
}

func TestUntrustedCertificateIsRefused(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, whoami) }))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	// Default transport: system roots, which do not hold httptest's certificate.
	c, err := lc.NewClient(lc.Config{BaseURL: srv.URL + "/v1", APIKey: secret.New(testKey), MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(context.Background()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err %v, want a certificate verification failure", err)
	}
	// RootCAs makes it trusted.
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err = lc.NewClient(lc.Config{BaseURL: srv.URL + "/v1", APIKey: secret.New(testKey), RootCAs: roots})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WhoAmI(context.Background()); err != nil {
		t.Fatal(err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func createdKey(sec string) map[string]any {
	return map[string]any{
		"id": "key_BBBBBBBBBBBBBBBBBBBBBBBB", "object": "api_key", "name": "x", "environment": "sandbox",
		"master_merchant_id": "mm_AAAAAAAAAAAAAAAA", "scopes": []string{"payments:read"}, "status": "active",
		"created_at": "2026-06-01T00:00:00Z", "secret_last4": sec[len(sec)-4:], "secret": sec,
	}
}

func TestSecretsNeverReachLogsOrErrors(t *testing.T) {
	const newSecret = "lk_test_NEWSECRETnewsecretNEWSECRETnewsecret12"
	const whSecret = "whsec_c2VjcmV0IHZhbHVlIGZvciBsb2cgdGVzdHMhISEhISEhISE="
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFakeAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch {
		case n == 1:
			writeAPIError(w, 503, lc.ErrTypeAPI, lc.CodeInternal, "busy")
		case r.URL.Path == "/v1/api_keys":
			w.Header().Set(lc.IdempotentReplayedHeader, "true")
			writeJSON(w, 201, createdKey(newSecret))
		case strings.HasSuffix(r.URL.Path, "/secrets"):
			writeJSON(w, 201, map[string]any{"id": "whs_1", "status": "active", "created_at": "2026-06-01T00:00:00Z",
				"secret_last4": whSecret[len(whSecret)-4:], "endpoint_id": "we_1", "secret": whSecret})
		default:
			dropConnection(t, w)
		}
	})
	c := f.client(t, func(cfg *lc.Config) { cfg.Logger = logger })
	ctx := context.Background()
	got, err := c.CreateAPIKey(ctx, "rotate-a-v1-create", laki.CreateAPIKeyRequest{Name: "a", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret.Reveal() != newSecret || got.SecretLast4 != newSecret[len(newSecret)-4:] {
		t.Fatalf("create decoded %q / %q", got.Secret.Reveal(), got.SecretLast4)
	}
	ws, err := c.CreateWebhookSecret(ctx, "rotate-w-v1-create", "we_1")
	if err != nil {
		t.Fatal(err)
	}
	if ws.Secret.Reveal() != whSecret {
		t.Fatal("webhook secret not decoded")
	}
	var errs []error
	_, err = c.WithAPIKey(secret.New(newSecret)).RevokeAPIKey(ctx, "", "key_1") // dropped, not retried
	errs = append(errs, err)
	_, err = c.WithAPIKey(secret.New(newSecret)).GetAPIKey(ctx, "key_1") // dropped every time
	errs = append(errs, err)
	if !strings.Contains(errs[0].Error(), "POST /api_keys/{key_id}/revoke") || !strings.Contains(errs[1].Error(), "GET /api_keys/{key_id}") {
		t.Fatalf("transport errors do not name method and path: %v / %v", errs[0], errs[1])
	}
	// Log the results too, as a careless caller would.
	logger.Info("created", "key", got, "webhook_secret", ws)

	logged := buf.String()
	if !strings.Contains(logged, "rotate") && !strings.Contains(logged, "/api_keys") {
		t.Fatalf("nothing useful was logged: %s", logged)
	}
	if !strings.Contains(logged, `"idempotent_replayed":true`) {
		t.Fatalf("replay not logged at debug: %s", logged)
	}
	for _, s := range []string{newSecret, whSecret, testKey, strings.TrimPrefix(newSecret, "lk_test_"), strings.TrimPrefix(whSecret, "whsec_")} {
		if strings.Contains(logged, s) {
			t.Fatalf("log contains a secret:\n%s", logged)
		}
		for _, e := range errs {
			if e == nil {
				t.Fatal("expected an error")
			}
			if strings.Contains(e.Error(), s) || strings.Contains(fmt.Sprintf("%+v", e), s) {
				t.Fatalf("error %q contains a secret", e)
			}
		}
	}
}
