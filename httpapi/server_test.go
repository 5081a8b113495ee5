package httpapi_test

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/httpapi/openapitest"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/trigger"
)

type hashTokens map[string][32]byte

func (h hashTokens) Match(p string) (string, bool) {
	sum := sha256.Sum256([]byte(p))
	for name, want := range h {
		if subtle.ConstantTimeCompare(sum[:], want[:]) == 1 {
			return name, true
		}
	}
	return "", false
}

type fakeController struct {
	mu       sync.Mutex
	triggers map[string]trigger.Status
	got      []trigger.Request
}

func (f *fakeController) Trigger(_ context.Context, req trigger.Request) (trigger.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if req.Secret == "" && req.Owner == "" && !req.All {
		return trigger.Status{}, trigger.Refusef("name a secret, an owner, or all")
	}
	f.got = append(f.got, req)
	id := fmt.Sprintf("trg-%d", len(f.got))
	st := trigger.Status{ID: id, State: trigger.StateSucceeded, Cause: req.Cause, Source: req.Source, Actor: req.Actor, OnBehalfOf: req.OnBehalfOf, Total: 1, Done: 1}
	f.triggers[id] = st
	return st, nil
}

func (f *fakeController) TriggerStatus(id string) (trigger.Status, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.triggers[id]
	return st, ok
}

func (f *fakeController) Inventory(context.Context) (httpapi.Inventory, error) {
	return httpapi.Inventory{Secrets: []httpapi.SecretStatus{{Name: "checkout/sandbox", Kind: "api_key", Environment: "sandbox", CurrentVersionID: "v1"}}}, nil
}

const goodToken = "tok-for-tests-0123456789"

func newServer(t *testing.T) (*httptest.Server, *fakeController, *events.Recorder) {
	t.Helper()
	ctrl := &fakeController{triggers: map[string]trigger.Status{}}
	rec := &events.Recorder{}
	h := httpapi.NewHandler(httpapi.Options{
		Controller:   ctrl,
		Tokens:       hashTokens{"ops": sha256.Sum256([]byte(goodToken))},
		Events:       rec,
		MaxBodyBytes: 1024,
	})
	srv := httptest.NewServer(openapitest.Wrap(t, h))
	t.Cleanup(srv.Close)
	return srv, ctrl, rec
}

func do(t *testing.T, method, url, token, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = fmt.Fprint(&b, mustRead(t, resp))
	return resp, b.String()
}

// mustRead returns the answer's body; for an error answer, its message.
func mustRead(t *testing.T, resp *http.Response) string {
	var m json.RawMessage
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	var eb httpapi.ErrorBody
	if json.Unmarshal(m, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	return string(m)
}

func TestRefusedRequestsAreAnsweredAndRecorded(t *testing.T) {
	srv, ctrl, rec := newServer(t)
	cases := []struct{ name, token string }{{"no token", ""}, {"wrong token", "not-the-token"}}
	for _, c := range cases {
		resp, body := do(t, "POST", srv.URL+"/v1/triggers", c.token, `{"secret":"x","cause":"manual"}`)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, c.name)
		assert.Contains(t, body, "token", c.name)
	}
	assert.Empty(t, ctrl.got, "no refused request reaches the controller")
	evs := rec.Events()
	require.Len(t, evs, 2)
	for _, e := range evs {
		assert.Equal(t, events.StepAuth, e.Step)
		assert.Equal(t, events.OutcomeRefused, e.Outcome)
		assert.NotContains(t, fmt.Sprint(e), "not-the-token", "a presented token is never recorded")
	}
}

func TestTriggerAcceptedWithRequesterFromToken(t *testing.T) {
	srv, ctrl, _ := newServer(t)
	resp, body := do(t, "POST", srv.URL+"/v1/triggers", goodToken, `{"owner":"alice","cause":"personnel","reason":"left"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body)
	assert.Equal(t, "/v1/triggers/trg-1", resp.Header.Get("Location"))
	require.Len(t, ctrl.got, 1)
	assert.Equal(t, "token:ops", ctrl.got[0].Actor)
	assert.Empty(t, ctrl.got[0].OnBehalfOf)

	resp, body = do(t, "GET", srv.URL+"/v1/triggers/trg-1", goodToken, "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, body, `"state":"succeeded"`)
	resp, _ = do(t, "GET", srv.URL+"/v1/triggers/nope", goodToken, "")
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
}

func TestBadRequestsSayWhatIsWrong(t *testing.T) {
	srv, _, _ := newServer(t)
	cases := []struct {
		body   string
		status int
		want   string
	}{
		{`{"secret":`, 400, "not valid JSON"},
		{`{"secret":1}`, 400, `field "secret" must be a string`},
		{`{"secrett":"x"}`, 400, `unknown field "secrett"`},
		{``, 400, "empty"},
		{`{"cause":"manual"}`, 400, "name a secret, an owner, or all"},
		{`{"secret":"` + strings.Repeat("a", 2000) + `"}`, 413, "larger than 1024 bytes"},
	}
	for _, c := range cases {
		resp, body := do(t, "POST", srv.URL+"/v1/triggers", goodToken, c.body)
		assert.Equal(t, c.status, resp.StatusCode, c.body)
		assert.Contains(t, body, c.want, c.body)
	}
}

// /readyz is computed in the background: however often it is called, the
// checks run once per interval; anyone learns ready or not, and only an
// authenticated caller learns which check failed and why.
func TestReadinessIsComputedInTheBackgroundAndDetailsNeedAuth(t *testing.T) {
	var calls atomic.Int64
	ready := httpapi.NewReadiness([]httpapi.ReadinessCheck{
		{Name: "lakiconnect:production:mm_0123456789abcdef", Check: func(context.Context) error {
			calls.Add(1)
			return errors.New("dial tcp 10.1.2.3:443: connection refused")
		}},
	}, time.Minute, clock.NewFake(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)))
	ctrl := &fakeController{triggers: map[string]trigger.Status{}}
	srv := httptest.NewServer(openapitest.Wrap(t, httpapi.NewHandler(httpapi.Options{Controller: ctrl, Ready: ready,
		Tokens: hashTokens{"ops": sha256.Sum256([]byte(goodToken))}})))
	defer srv.Close()

	resp, body := do(t, "GET", srv.URL+"/readyz", "", "")
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "not ready before the first computation")
	ready.Compute(context.Background())
	for range 1000 {
		resp, body = do(t, "GET", srv.URL+"/readyz", "", "")
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	}
	assert.Equal(t, int64(1), calls.Load(), "1,000 calls of /readyz cost one check")
	assert.JSONEq(t, `{"status":"not ready"}`, body, "an outsider learns nothing more")
	_, body = do(t, "GET", srv.URL+"/readyz", "not-the-token", "")
	assert.JSONEq(t, `{"status":"not ready"}`, body)
	_, body = do(t, "GET", srv.URL+"/readyz", goodToken, "")
	assert.Contains(t, body, "mm_0123456789abcdef")
	assert.Contains(t, body, "connection refused")
	resp, _ = do(t, "GET", srv.URL+"/healthz", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// A slow check slows the background computation, not the answer.
func TestReadinessAnswersAtOnceWhileACheckIsSlow(t *testing.T) {
	release := make(chan struct{})
	var slow atomic.Bool
	ready := httpapi.NewReadiness([]httpapi.ReadinessCheck{
		{Name: "slow", Check: func(ctx context.Context) error {
			if !slow.Load() {
				return nil
			}
			select {
			case <-release:
			case <-ctx.Done():
			}
			return nil
		}},
	}, time.Minute, nil)
	ready.Compute(context.Background())
	slow.Store(true)
	srv := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Controller: &fakeController{}, Ready: ready}))
	defer srv.Close()
	go ready.Compute(context.Background())
	start := time.Now()
	resp, _ := do(t, "GET", srv.URL+"/readyz", "", "")
	close(release)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the last computed state answers")
	assert.Less(t, time.Since(start), time.Second)
}

// /metrics can ask for the API's credentials.
func TestMetricsCanRequireAuth(t *testing.T) {
	metricsBody := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, `{"m":1}`) })
	open := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Controller: &fakeController{}, Metrics: metricsBody}))
	defer open.Close()
	resp, _ := do(t, "GET", open.URL+"/metrics", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	closed := httptest.NewServer(httpapi.NewHandler(httpapi.Options{Controller: &fakeController{}, Metrics: metricsBody, MetricsAuth: true,
		Tokens: hashTokens{"prometheus": sha256.Sum256([]byte(goodToken))}}))
	defer closed.Close()
	resp, _ = do(t, "GET", closed.URL+"/metrics", "", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	resp, _ = do(t, "GET", closed.URL+"/metrics", goodToken, "")
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestClientRoundTrip(t *testing.T) {
	srv, _, _ := newServer(t)
	c, err := httpapi.NewClient(srv.URL, secret.New(goodToken), nil)
	require.NoError(t, err)
	ctx := context.Background()
	st, err := c.Trigger(ctx, httpapi.TriggerRequest{Secret: "checkout/sandbox", Cause: events.CauseManual, Reason: "test"})
	require.NoError(t, err)
	final, err := c.Wait(ctx, st.ID, time.Millisecond, nil)
	require.NoError(t, err)
	assert.Equal(t, httpapi.StateSucceeded, final.State)
	inv, err := c.Inventory(ctx)
	require.NoError(t, err)
	require.Len(t, inv.Secrets, 1)

	_, err = c.Trigger(ctx, httpapi.TriggerRequest{Cause: events.CauseManual})
	var apiErr *httpapi.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 400, apiErr.StatusCode)

	bad, err := httpapi.NewClient(srv.URL, secret.New("wrong"), nil)
	require.NoError(t, err)
	_, err = bad.Inventory(ctx)
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 401, apiErr.StatusCode)
}

func TestClientRefusesPlainHTTPToNonLoopback(t *testing.T) {
	_, err := httpapi.NewClient("http://rotator.internal:8443", secret.Value{}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "loopback")
}

func TestAllowedClientsOnly(t *testing.T) {
	rec := &events.Recorder{}
	ctrl := &fakeController{triggers: map[string]trigger.Status{}}
	allowed := httpapi.NewHandler(httpapi.Options{Controller: ctrl, Events: rec,
		AllowedClients: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	srv := httptest.NewServer(openapitest.Wrap(t, allowed))
	defer srv.Close()
	resp, _ := do(t, "GET", srv.URL+"/healthz", "", "")
	assert.Equal(t, http.StatusOK, resp.StatusCode, "loopback is allowed")

	refused := httpapi.NewHandler(httpapi.Options{Controller: ctrl, Events: rec,
		AllowedClients: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	srv2 := httptest.NewServer(openapitest.Wrap(t, refused))
	defer srv2.Close()
	resp, body := do(t, "GET", srv2.URL+"/healthz", "", "")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, body, "not allowed")
	require.Len(t, rec.Events(), 1)
	assert.Equal(t, events.OutcomeRefused, rec.Events()[0].Outcome)
}
