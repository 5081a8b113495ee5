package lakiconnect_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	lc "github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// simHarness is a simulator over TLS and clients that record their waits,
// attempts and logs, so that tests can assert on them and scan them for secrets.
type simHarness struct {
	fx     *lakisimtest.Fixture
	mu     sync.Mutex
	sleeps []time.Duration
	calls  []string
	logs   bytes.Buffer
	logger *slog.Logger
}

func startSim(t *testing.T, opts ...lakisimtest.Option) *simHarness {
	t.Helper()
	h := &simHarness{fx: lakisimtest.Start(t, append([]lakisimtest.Option{lakisimtest.WithTLS()}, opts...)...)}
	h.logger = slog.New(slog.NewTextHandler(lockedWriter{h}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return h
}

type lockedWriter struct{ h *simHarness }

func (w lockedWriter) Write(p []byte) (int, error) {
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	return w.h.logs.Write(p)
}

func (h *simHarness) client(t *testing.T, env laki.Environment, key secret.Value) *lc.Client {
	t.Helper()
	c, err := lc.NewClient(lc.Config{
		BaseURL:   h.fx.URL(env),
		APIKey:    key,
		Transport: h.fx.Server.Client().Transport,
		Logger:    h.logger,
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			return ctx.Err()
		},
		OnRequest: func(method, path string, status int, err error) {
			h.mu.Lock()
			h.calls = append(h.calls, fmt.Sprintf("%s %s %d", method, path, status))
			h.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (h *simHarness) sandbox(t *testing.T) *lc.Client {
	return h.client(t, laki.Sandbox, h.fx.SandboxKey)
}

func (h *simHarness) takeCalls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := h.calls
	h.calls = nil
	return out
}

// assertNoSecrets scans everything the client logged for every secret the test saw.
func (h *simHarness) assertNoSecrets(t *testing.T, secrets ...secret.Value) {
	t.Helper()
	h.mu.Lock()
	logged := h.logs.String()
	h.mu.Unlock()
	if logged == "" {
		t.Fatal("the client logged nothing; the scan would prove nothing")
	}
	for _, s := range append(secrets, h.fx.SandboxKey, h.fx.ProductionKey) {
		if s.IsZero() {
			continue
		}
		if strings.Contains(logged, s.Reveal()) {
			t.Fatalf("a secret (last4 %s) reached the client's log", s.Last4())
		}
	}
}

func apiErrorCode(t *testing.T, err error) (int, string) {
	t.Helper()
	var apiErr *lc.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v is not an *APIError", err)
	}
	return apiErr.StatusCode, apiErr.Code
}

func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	gotStatus, gotCode := apiErrorCode(t, err)
	if gotStatus != status || (code != "" && gotCode != code) {
		t.Fatalf("error %v, want %d %s", err, status, code)
	}
	wantKinds(t, err, gotStatus, gotCode)
}

// wantKinds checks that the answer matches exactly the laki error kinds its
// status and code mean: every refusal the simulator gives in these tests
// proves the classification the engine relies on.
func wantKinds(t *testing.T, err error, status int, code string) {
	t.Helper()
	want := map[error]bool{
		laki.ErrRefused:              true,
		laki.ErrUnauthorized:         status == 401,
		laki.ErrForbidden:            status == 403,
		laki.ErrNotFound:             status == 404,
		laki.ErrConflict:             status == 409,
		laki.ErrKeyLimit:             code == lc.CodeKeyLimitReached,
		laki.ErrTooManySecrets:       code == lc.CodeTooManySecrets,
		laki.ErrKeyRevoked:           code == lc.CodeKeyRevoked,
		laki.ErrIdempotencyKeyReused: code == lc.CodeIdempotencyKeyReused || status == 422,
		laki.ErrRateLimited:          status == 429,
		laki.ErrUnavailable:          status >= 500,
	}
	for kind, is := range want {
		if errors.Is(err, kind) != is {
			t.Errorf("%d %s: errors.Is(err, %q) = %v, want %v", status, code, kind, !is, is)
		}
	}
}

func TestSimKeyLifecycle(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)

	me, err := mgmt.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if me.KeyID != h.fx.SandboxKeyID || me.MasterMerchantID != h.fx.MasterMerchantID || me.Environment != laki.Sandbox || len(me.Scopes) != len(laki.AllScopes) {
		t.Fatalf("whoami %+v", me)
	}

	scopes := []laki.Scope{laki.ScopePaymentsRead, laki.ScopeRefundsWrite}
	created, err := mgmt.CreateAPIKey(ctx, "rotate-app-v1-create", laki.CreateAPIKeyRequest{
		Name: "app", Scopes: scopes, Metadata: map[string]string{"secret": "app/lakiconnect"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(created.Secret.Reveal(), "lk_test_") || created.SecretLast4 != created.Secret.Last4() ||
		created.Status != laki.StatusActive || created.CreatedBy == nil || *created.CreatedBy != h.fx.SandboxKeyID ||
		!slices.Equal(created.Scopes, scopes) || created.Metadata["secret"] != "app/lakiconnect" {
		t.Fatalf("created %+v", created.APIKey)
	}

	newKey := h.client(t, laki.Sandbox, created.Secret)
	who, err := newKey.WhoAmI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if who.KeyID != created.ID || !slices.Equal(who.Scopes, scopes) || who.Status != laki.StatusActive {
		t.Fatalf("whoami with the new key %+v", who)
	}
	// The same key means nothing in production.
	_, err = h.client(t, laki.Production, created.Secret).WhoAmI(ctx)
	wantAPIError(t, err, 401, "")

	got, err := mgmt.GetAPIKey(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != created.ID || got.SecretLast4 != created.SecretLast4 || got.LastUsedAt == nil {
		t.Fatalf("get %+v (last_used_at should be set by the whoami)", got)
	}

	revoked, err := mgmt.RevokeAPIKey(ctx, "revoke-app-v1", created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.Status != laki.StatusRevoked || revoked.RevokedAt == nil {
		t.Fatalf("revoked %+v", revoked)
	}
	_, err = newKey.WhoAmI(ctx)
	wantAPIError(t, err, 401, "")
	// Revoking again is idempotent.
	if again, err := mgmt.RevokeAPIKey(ctx, "", created.ID); err != nil || again.Status != laki.StatusRevoked {
		t.Fatalf("second revoke: %+v, %v", again, err)
	}
	_, err = mgmt.GetAPIKey(ctx, "key_AAAAAAAAAAAAAAAAAAAAAAAA")
	wantAPIError(t, err, 404, "")

	h.assertNoSecrets(t, created.Secret)
}

func TestSimRBAC(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)

	reader, err := mgmt.CreateAPIKey(ctx, "reader", laki.CreateAPIKeyRequest{Name: "reader", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	var listErr error
	for _, err := range h.client(t, laki.Sandbox, reader.Secret).ListAPIKeys(ctx, laki.ListAPIKeysOptions{}) {
		listErr = err
	}
	wantAPIError(t, listErr, 403, lc.CodeMissingScope)

	limited, err := mgmt.CreateAPIKey(ctx, "limited", laki.CreateAPIKeyRequest{Name: "limited", Scopes: []laki.Scope{laki.ScopeAPIKeysWrite, laki.ScopePaymentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.client(t, laki.Sandbox, limited.Secret).CreateAPIKey(ctx, "escalate", laki.CreateAPIKeyRequest{Name: "x", Scopes: []laki.Scope{laki.ScopePayoutsWrite}})
	wantAPIError(t, err, 403, lc.CodeScopeEscalation)
	// 403s are not retried.
	calls := h.takeCalls()
	if n := countPrefix(calls, "POST /api_keys 403"); n != 1 {
		t.Fatalf("escalation attempts %d, calls %v", n, calls)
	}
	h.assertNoSecrets(t, reader.Secret, limited.Secret)
}

func countPrefix(calls []string, p string) int {
	n := 0
	for _, c := range calls {
		if strings.HasPrefix(c, p) {
			n++
		}
	}
	return n
}

func TestSimKeyLimit(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)
	// The management key is the first; the API allows 50 that are not revoked.
	var secrets []secret.Value
	for i := 2; i <= laki.MaxKeysPerMerchant; i++ {
		k, err := mgmt.CreateAPIKey(ctx, fmt.Sprintf("limit-%d", i), laki.CreateAPIKeyRequest{Name: fmt.Sprintf("k%d", i), Scopes: []laki.Scope{laki.ScopePaymentsRead}})
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		secrets = append(secrets, k.Secret)
	}
	_, err := mgmt.CreateAPIKey(ctx, "limit-51", laki.CreateAPIKeyRequest{Name: "k51", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
	wantAPIError(t, err, 409, lc.CodeKeyLimitReached)
	h.assertNoSecrets(t, secrets...)
}

func TestSimIdempotency(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)
	req := laki.CreateAPIKeyRequest{Name: "svc", Scopes: []laki.Scope{laki.ScopeCustomersRead}}
	first, err := mgmt.CreateAPIKey(ctx, "rotate-svc-v7-create", req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := mgmt.CreateAPIKey(ctx, "rotate-svc-v7-create", req)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || !again.Secret.Equal(first.Secret) {
		t.Fatalf("replay gave key %s, first %s (or another secret)", again.ID, first.ID)
	}
	// Only the first create owns the key: the engine tells an owner from a
	// replica (or its own restart) by this.
	if first.Replayed || !again.Replayed {
		t.Fatalf("Replayed: first %v, again %v; want false, true", first.Replayed, again.Replayed)
	}
	if n := len(h.fx.Sim.Keys(laki.Sandbox, h.fx.MasterMerchantID)); n != 2 {
		t.Fatalf("%d keys after a replayed create, want 2", n)
	}
	req.Name = "svc-other"
	_, err = mgmt.CreateAPIKey(ctx, "rotate-svc-v7-create", req)
	wantAPIError(t, err, 422, lc.CodeIdempotencyKeyReused)
	h.mu.Lock()
	replayLogged := strings.Contains(h.logs.String(), "idempotent_replayed=true")
	h.mu.Unlock()
	if !replayLogged {
		t.Fatal("the replay was not logged at debug")
	}
	h.assertNoSecrets(t, first.Secret)
}

func TestSimExpireTakesEffectByTheClock(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)
	k, err := mgmt.CreateAPIKey(ctx, "old", laki.CreateAPIKeyRequest{Name: "old", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	at := h.fx.Clock.Now().Add(time.Hour)
	exp, err := mgmt.ExpireAPIKey(ctx, "expire-old", k.ID, &at)
	if err != nil {
		t.Fatal(err)
	}
	if exp.Status != laki.StatusExpiring || exp.ExpiresAt == nil || !exp.ExpiresAt.Equal(at) {
		t.Fatalf("expire answered %+v", exp)
	}
	old := h.client(t, laki.Sandbox, k.Secret)
	who, err := old.WhoAmI(ctx)
	if err != nil {
		t.Fatalf("an expiring key must still work: %v", err)
	}
	if who.Status != laki.StatusExpiring || who.ExpiresAt == nil || !who.ExpiresAt.Equal(at) {
		t.Fatalf("whoami of the expiring key %+v", who)
	}

	h.fx.Clock.Set(at.Add(time.Second))
	_, err = old.WhoAmI(ctx)
	wantAPIError(t, err, 401, "")
	after, err := mgmt.GetAPIKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != laki.StatusRevoked {
		t.Fatalf("after expires_at the key is %s, want revoked", after.Status)
	}
	_, err = mgmt.ExpireAPIKey(ctx, "expire-old-again", k.ID, nil)
	wantAPIError(t, err, 409, lc.CodeKeyRevoked)
	// expires_at beyond 7 days is refused with the field named.
	k2, err := mgmt.CreateAPIKey(ctx, "k2", laki.CreateAPIKeyRequest{Name: "k2", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	far := h.fx.Clock.Now().Add(8 * 24 * time.Hour)
	_, err = mgmt.ExpireAPIKey(ctx, "expire-far", k2.ID, &far)
	var apiErr *lc.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Param != "expires_at" {
		t.Fatalf("far expiry: %v", err)
	}
	h.assertNoSecrets(t, k.Secret, k2.Secret)
}

func TestSimPaginationOverMoreThan100Keys(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	// Seed through the simulator: 120 revoked keys plus the management key
	// (the limit counts only keys that are not revoked).
	for i := range 120 {
		k, err := h.fx.Sim.CreateKey(laki.Sandbox, h.fx.MasterMerchantID, fmt.Sprintf("seed-%03d", i), []laki.Scope{laki.ScopePaymentsRead})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.fx.Sim.RevokeKey(k.ID, "revoked_by_dashboard"); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for _, k := range h.fx.Sim.Keys(laki.Sandbox, h.fx.MasterMerchantID) {
		want = append(want, k.ID)
	}
	if len(want) != 121 {
		t.Fatalf("seeded %d keys", len(want))
	}
	mgmt := h.sandbox(t)
	for _, tc := range []struct {
		opts      laki.ListAPIKeysOptions
		wantN     int
		wantPages int
	}{
		{laki.ListAPIKeysOptions{}, 121, 2},
		{laki.ListAPIKeysOptions{PageSize: 7}, 121, 18},
		{laki.ListAPIKeysOptions{Status: laki.StatusRevoked, PageSize: 50}, 120, 3},
		{laki.ListAPIKeysOptions{Status: laki.StatusActive}, 1, 1},
	} {
		h.takeCalls()
		var got []string
		for k, err := range mgmt.ListAPIKeys(ctx, tc.opts) {
			if err != nil {
				t.Fatal(err)
			}
			if tc.opts.Status != "" && k.Status != tc.opts.Status {
				t.Fatalf("%+v: listed a %s key", tc.opts, k.Status)
			}
			got = append(got, k.ID)
		}
		if len(got) != tc.wantN {
			t.Fatalf("%+v: listed %d keys, want %d", tc.opts, len(got), tc.wantN)
		}
		if tc.opts.Status == "" && !slices.Equal(got, want) {
			t.Fatalf("%+v: listing order differs from the simulator's", tc.opts)
		}
		if n := countPrefix(h.takeCalls(), "GET /api_keys 200"); n != tc.wantPages {
			t.Fatalf("%+v: %d pages, want %d", tc.opts, n, tc.wantPages)
		}
	}
}

// A replayed webhook secret create says so, as a replayed key create does.
func TestSimWebhookSecretCreateReportsReplay(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	ep, _, err := h.fx.Sim.AddWebhookEndpoint(laki.Sandbox, h.fx.MasterMerchantID, "https://hooks.merchant.example/laki", []string{})
	if err != nil {
		t.Fatal(err)
	}
	mgmt := h.sandbox(t)
	first, err := mgmt.CreateWebhookSecret(ctx, "rotate-wh-v1-create", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	again, err := mgmt.CreateWebhookSecret(ctx, "rotate-wh-v1-create", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || first.Replayed || !again.Replayed {
		t.Fatalf("secrets %s, %s; Replayed %v, %v; want one secret, false then true", first.ID, again.ID, first.Replayed, again.Replayed)
	}
	h.assertNoSecrets(t, first.Secret)
}

func TestSimWebhookSecrets(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	ep, first, err := h.fx.Sim.AddWebhookEndpoint(laki.Sandbox, h.fx.MasterMerchantID, "https://hooks.merchant.example/laki", []string{})
	if err != nil {
		t.Fatal(err)
	}
	mgmt := h.sandbox(t)
	verify := webhooksig.Verifier{Clock: h.fx.Clock}

	var listed []string
	for e, err := range mgmt.ListWebhookEndpoints(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		listed = append(listed, e.ID)
	}
	if !slices.Equal(listed, []string{ep.ID}) {
		t.Fatalf("listed endpoints %v", listed)
	}
	got, err := mgmt.GetWebhookEndpoint(ctx, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Secrets) != 1 || got.Secrets[0].ID != first.ID || got.Secrets[0].SecretLast4 != first.SecretLast4 {
		t.Fatalf("endpoint %+v", got)
	}

	second, err := mgmt.CreateWebhookSecret(ctx, "rotate-hook-v2-create", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if second.EndpointID != ep.ID || second.Status != laki.StatusActive || !strings.HasPrefix(second.Secret.Reveal(), "whsec_") || second.Secret.Equal(first.Secret) {
		t.Fatalf("new secret %+v", second.WebhookSecretInfo)
	}
	replay, err := mgmt.CreateWebhookSecret(ctx, "rotate-hook-v2-create", ep.ID)
	if err != nil || replay.ID != second.ID || !replay.Secret.Equal(second.Secret) {
		t.Fatalf("replayed create: %+v, %v", replay.WebhookSecretInfo, err)
	}
	_, err = mgmt.CreateWebhookSecret(ctx, "rotate-hook-v3-create", ep.ID)
	wantAPIError(t, err, 409, lc.CodeTooManySecrets)

	// Both secrets sign during the overlap.
	sig, err := mgmt.TestWebhookSignature(ctx, "", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]secret.Value{"first": first.Secret, "second": second.Secret} {
		if err := verify.Verify(sig.SignatureHeader, []byte(sig.Payload), s); err != nil {
			t.Fatalf("overlap: %s secret does not verify: %v", name, err)
		}
	}
	parsed, err := webhooksig.ParseHeader(sig.SignatureHeader)
	if err != nil || len(parsed.Signatures) != 2 {
		t.Fatalf("overlap header has %d signatures (%v)", len(parsed.Signatures), err)
	}

	after, err := mgmt.ExpireWebhookSecret(ctx, "expire-hook-v1", ep.ID, first.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := secretStatus(after, first.ID); st != laki.StatusRevoked {
		t.Fatalf("first secret is %s after expire-now", st)
	}
	sig, err = mgmt.TestWebhookSignature(ctx, "test-after-expire", ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify.Verify(sig.SignatureHeader, []byte(sig.Payload), first.Secret); !errors.Is(err, webhooksig.ErrNoValidSignature) {
		t.Fatalf("the rotated-out secret still verifies: %v", err)
	}
	if err := verify.Verify(sig.SignatureHeader, []byte(sig.Payload), first.Secret, second.Secret); err != nil {
		t.Fatalf("the new secret does not verify: %v", err)
	}
	// A signed sample goes stale with the receiver's clock.
	h.fx.Clock.Advance(6 * time.Minute)
	if err := verify.Verify(sig.SignatureHeader, []byte(sig.Payload), second.Secret); !errors.Is(err, webhooksig.ErrTimestampOutOfTolerance) {
		t.Fatalf("stale sample: %v", err)
	}

	_, err = mgmt.ExpireWebhookSecret(ctx, "expire-hook-v2", ep.ID, second.ID, nil)
	wantAPIError(t, err, 409, lc.CodeLastSecret)
	h.assertNoSecrets(t, first.Secret, second.Secret)
}

func secretStatus(ep laki.WebhookEndpoint, id string) laki.KeyStatus {
	for _, s := range ep.Secrets {
		if s.ID == id {
			return s.Status
		}
	}
	return ""
}

func TestSimAuthFailures(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)
	since := h.fx.Clock.Now()
	reader, err := mgmt.CreateAPIKey(ctx, "reader", laki.CreateAPIKeyRequest{Name: "reader", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
	if err != nil {
		t.Fatal(err)
	}
	readerClient := h.client(t, laki.Sandbox, reader.Secret)
	for range 3 {
		_, err := readerClient.GetAPIKey(ctx, h.fx.SandboxKeyID)
		wantAPIError(t, err, 403, lc.CodeMissingScope)
	}
	unknown := secret.New("lk_test_" + strings.Repeat("Q", 40))
	_, err = h.client(t, laki.Sandbox, unknown).WhoAmI(ctx)
	wantAPIError(t, err, 401, "")
	h.fx.Clock.Advance(time.Minute)

	counts, err := mgmt.ListAuthFailures(ctx, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var sawReader, sawUnknown bool
	for _, c := range counts {
		switch {
		case c.KeyID != nil && *c.KeyID == reader.ID && c.StatusCode == 403:
			sawReader = c.Count == 3
		case c.KeyID == nil && c.StatusCode == 401 && c.KeyPrefix == unknown.Reveal()[:laki.AuthFailureKeyPrefixLength]:
			sawUnknown = c.Count >= 1
		}
	}
	if !sawReader || !sawUnknown {
		t.Fatalf("auth failures %+v: reader 403 x3 seen %v, unknown 401 seen %v", counts, sawReader, sawUnknown)
	}
	// A window that ends before the failures holds none of them.
	before, err := mgmt.ListAuthFailures(ctx, since.Add(-time.Hour), since)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 0 {
		t.Fatalf("failures before they happened: %+v", before)
	}
	h.assertNoSecrets(t, reader.Secret, unknown)
}

func TestSimRetriesInjectedFaults(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	mgmt := h.sandbox(t)
	sim := h.fx.Sim

	mustInject := func(f lakisim.Fault) {
		t.Helper()
		if err := sim.InjectFault(f); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("5xx then success", func(t *testing.T) {
		h.takeCalls()
		mustInject(lakisim.Fault{Method: "GET", PathPrefix: "/whoami", Status: 503, Times: 2})
		if _, err := mgmt.WhoAmI(ctx); err != nil {
			t.Fatal(err)
		}
		if calls := h.takeCalls(); !slices.Equal(calls, []string{"GET /whoami 503", "GET /whoami 503", "GET /whoami 200"}) {
			t.Fatalf("calls %v", calls)
		}
	})
	t.Run("429 honours Retry-After", func(t *testing.T) {
		h.takeCalls()
		h.mu.Lock()
		h.sleeps = nil
		h.mu.Unlock()
		mustInject(lakisim.Fault{PathPrefix: "/api_keys", Status: 429, RetryAfter: 3 * time.Second, Times: 1})
		for _, err := range mgmt.ListAPIKeys(ctx, laki.ListAPIKeysOptions{}) {
			if err != nil {
				t.Fatal(err)
			}
		}
		h.mu.Lock()
		sleeps := slices.Clone(h.sleeps)
		h.mu.Unlock()
		if !slices.Equal(sleeps, []time.Duration{3 * time.Second}) {
			t.Fatalf("slept %v, want [3s]", sleeps)
		}
	})
	t.Run("response lost after the create happened", func(t *testing.T) {
		before := len(sim.Keys(laki.Sandbox, h.fx.MasterMerchantID))
		mustInject(lakisim.Fault{Method: "POST", PathPrefix: "/api_keys", Drop: true, AfterProcessing: true, Times: 1})
		k, err := mgmt.CreateAPIKey(ctx, "rotate-lost-v1-create", laki.CreateAPIKeyRequest{Name: "lost", Scopes: []laki.Scope{laki.ScopePaymentsRead}})
		if err != nil {
			t.Fatal(err)
		}
		keys := sim.Keys(laki.Sandbox, h.fx.MasterMerchantID)
		if len(keys) != before+1 || !slices.ContainsFunc(keys, func(x laki.APIKey) bool { return x.ID == k.ID }) {
			t.Fatalf("%d keys after a retried create (before %d): the retry made a duplicate or lost the key", len(keys), before)
		}
		if _, err := h.client(t, laki.Sandbox, k.Secret).WhoAmI(ctx); err != nil {
			t.Fatalf("the replayed secret does not work: %v", err)
		}
	})
	t.Run("no retry of a revoke without idempotency key", func(t *testing.T) {
		h.takeCalls()
		mustInject(lakisim.Fault{Method: "POST", PathPrefix: "/api_keys/", Status: 500, Times: 1})
		_, err := mgmt.RevokeAPIKey(ctx, "", "key_AAAAAAAAAAAAAAAAAAAAAAAA")
		wantAPIError(t, err, 500, "")
		if calls := h.takeCalls(); len(calls) != 1 {
			t.Fatalf("calls %v, want one attempt", calls)
		}
	})
	t.Run("gives up on a persistent fault", func(t *testing.T) {
		mustInject(lakisim.Fault{Method: "GET", PathPrefix: "/webhook_endpoints", Status: 502})
		defer sim.ClearFaults()
		h.takeCalls()
		var listErr error
		for _, err := range mgmt.ListWebhookEndpoints(ctx, 0) {
			listErr = err
		}
		wantAPIError(t, listErr, 502, "")
		if n := countPrefix(h.takeCalls(), "GET /webhook_endpoints 502"); n != 1+lc.DefaultMaxRetries {
			t.Fatalf("%d attempts, want %d", n, 1+lc.DefaultMaxRetries)
		}
	})
}

// The simulator's own rate limit (100/s per key, real time) answers 429 with
// Retry-After; the client waits and gets through.
func TestSimRateLimitIsRetried(t *testing.T) {
	h := startSim(t, lakisimtest.WithOptions(func(o *lakisim.Options) { o.RateLimit = 2 }))
	ctx := context.Background()
	c, err := lc.NewClient(lc.Config{
		BaseURL: h.fx.SandboxURL, APIKey: h.fx.SandboxKey, Transport: h.fx.Server.Client().Transport,
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.sleeps = append(h.sleeps, d)
			h.mu.Unlock()
			// Real time is what the limiter refills on: wait a little of it.
			return sleepFor(ctx, 600*time.Millisecond)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if _, err := c.WhoAmI(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.sleeps) == 0 {
		t.Fatal("no 429 was met; the test proves nothing")
	}
	for _, d := range h.sleeps {
		if d < time.Second {
			t.Fatalf("waited %v, less than the 1 s Retry-After", d)
		}
	}
}

func sleepFor(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
