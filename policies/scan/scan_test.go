package scan

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// fakeClient is one (environment, merchant) of LakiConnect, in memory.
type fakeClient struct {
	who       laki.WhoAmI
	keys      []laki.APIKey
	endpoints []laki.WebhookEndpoint
	err       error
}

func (f *fakeClient) WhoAmI(context.Context) (laki.WhoAmI, error) { return f.who, f.err }
func (f *fakeClient) APIKeys(context.Context) ([]laki.APIKey, error) {
	return f.keys, f.err
}
func (f *fakeClient) WebhookEndpoints(context.Context) ([]laki.WebhookEndpoint, error) {
	return f.endpoints, f.err
}

const merchant = "mm_AAAAAAAAAAAAAAAA"

func fixture(t *testing.T, now time.Time) (*policies.Set, *fakeClient, *fakeClient, []Managed) {
	t.Helper()
	set, err := policies.LoadDir("../examples")
	require.NoError(t, err)
	exp := now.Add(30 * 24 * time.Hour)
	key := func(id string, env laki.Environment, scopes ...laki.Scope) laki.APIKey {
		return laki.APIKey{ID: id, Environment: env, MasterMerchantID: merchant, Scopes: scopes,
			Status: laki.StatusActive, CreatedAt: now.Add(-24 * time.Hour), ExpiresAt: &exp}
	}
	sbx := &fakeClient{who: laki.WhoAmI{KeyID: "key_mgmt_sbx"}}
	prod := &fakeClient{who: laki.WhoAmI{KeyID: "key_mgmt_prod"}}
	prod.keys = []laki.APIKey{
		key("key_mgmt_prod", laki.Production, set.RotationScopes(laki.Production)...),
		key("key_checkout", laki.Production, "payments:read", "payments:write", "customers:read"),
		key("key_checkout_old", laki.Production, "payments:read", "payments:write", "customers:read"),
	}
	prod.keys[2].Status = laki.StatusExpiring
	sbx.keys = []laki.APIKey{
		// The sandbox management key holds everything: over-scoped and unmanaged.
		key("key_mgmt_sbx", laki.Sandbox, laki.AllScopes...),
	}
	prod.endpoints = []laki.WebhookEndpoint{{
		ID: "we_1", URL: "http://hooks.example.com/in", Environment: laki.Production, MasterMerchantID: merchant,
		Secrets: []laki.WebhookSecretInfo{
			{ID: "whs_old", Status: laki.StatusRevoked, CreatedAt: now.Add(-200 * 24 * time.Hour)},
			{ID: "whs_cur", Status: laki.StatusActive, CreatedAt: now.Add(-24 * time.Hour)},
		},
	}}
	managed := []Managed{
		{Secret: "prod/lakirotator/management", Kind: inventory.KindManagementKey, Environment: laki.Production,
			MasterMerchantID: merchant, Policy: "rotator-management-key", KeyID: "key_mgmt_prod"},
		{Secret: "prod/checkout", Kind: inventory.KindAPIKey, Environment: laki.Production, MasterMerchantID: merchant,
			Policy: "checkout-service", KeyID: "key_checkout", PreviousIDs: []string{"key_checkout_old"}},
		{Secret: "prod/webhooks/in", Kind: inventory.KindWebhookSecret, Environment: laki.Production, MasterMerchantID: merchant,
			Policy: "webhooks", EndpointID: "we_1"},
	}
	return set, sbx, prod, managed
}

func TestScanWithFakes(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	set, sbx, prod, managed := fixture(t, now)
	s := &Scanner{Policies: set, Merchants: []Merchant{
		{Merchant: laki.Merchant{Environment: laki.Sandbox, MasterMerchantID: merchant}, Client: sbx},
		{Merchant: laki.Merchant{Environment: laki.Production, MasterMerchantID: merchant}, Client: prod},
	}}
	vs, err := s.Scan(context.Background(), managed, now)
	require.NoError(t, err)
	type r struct {
		reason policies.Reason
		id     string
	}
	var got []r
	for _, v := range vs {
		got = append(got, r{v.Reason, v.KeyID + v.EndpointID})
	}
	// The previous checkout key in its grace is referenced, so neither
	// unmanaged nor "stored key expiring"; the webhook secret without a
	// stored id resolves to the newest live one (whs_cur, not too old).
	assert.ElementsMatch(t, []r{
		{policies.InsecureWebhookURL, "whs_curwe_1"},
		{policies.UnmanagedKey, "key_mgmt_sbx"},
		{policies.ManagementKeyOverScoped, "key_mgmt_sbx"},
	}, got)
	assert.Equal(t, events.SeverityCritical, vs[0].Severity)

	// A merchant that cannot be read fails the scan, naming it.
	sbx.err = errors.New("lakiconnect: 401 authentication_error/invalid_api_key")
	_, err = s.Scan(context.Background(), managed, now)
	require.Error(t, err)
	assert.Equal(t, "policy scan of sandbox/mm_AAAAAAAAAAAAAAAA: whoami: lakiconnect: 401 authentication_error/invalid_api_key", err.Error())
}

func TestScanFindsKeyOfOtherEnvironment(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	set, sbx, prod, managed := fixture(t, now)
	sbx.keys = sbx.keys[:0] // no over-scoped sandbox management key this time
	exp := now.Add(24 * time.Hour)
	sbx.keys = append(sbx.keys, laki.APIKey{ID: "key_refunds_sbx", Environment: laki.Sandbox, MasterMerchantID: merchant,
		Scopes: []laki.Scope{"payments:read", "refunds:read", "refunds:write"}, Status: laki.StatusActive,
		CreatedAt: now.Add(-time.Hour), ExpiresAt: &exp})
	prod.endpoints = nil
	managed = managed[:2]
	// Someone pasted the sandbox refunds key into the production secret.
	cred := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "sandbox", KeyID: "key_refunds_sbx"}
	managed = append(managed, FromInventory(inventory.ManagedSecret{Name: "prod/refunds", Kind: inventory.KindAPIKey,
		Environment: laki.Production, MasterMerchantID: merchant, Policy: "refunds-worker"}).WithCurrent(cred))
	s := &Scanner{Policies: set, Merchants: []Merchant{
		{Merchant: laki.Merchant{Environment: laki.Sandbox, MasterMerchantID: merchant}, Client: sbx},
		{Merchant: laki.Merchant{Environment: laki.Production, MasterMerchantID: merchant}, Client: prod},
	}}
	vs, err := s.Scan(context.Background(), managed, now)
	require.NoError(t, err)
	var reasons []policies.Reason
	for _, v := range vs {
		reasons = append(reasons, v.Reason)
		assert.Equal(t, "prod/refunds", v.Secret, "the sandbox key is referenced, so not unmanaged")
	}
	assert.ElementsMatch(t, []policies.Reason{policies.EnvironmentMismatch, policies.EnvironmentNameMismatch}, reasons)
	require.NotEmpty(t, vs)
	assert.Contains(t, vs[0].Message, "LakiConnect sandbox, secret declaration production, stored value sandbox")
}

func TestMonitorRaisesOnlyNewViolations(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	set, sbx, prod, managed := fixture(t, clk.Now())
	reg := prometheus.NewRegistry()
	metrics, err := NewMetrics(reg)
	require.NoError(t, err)
	rec := &events.Recorder{}
	inv := managed
	m := &Monitor{
		Scanner: &Scanner{Policies: set, Merchants: []Merchant{
			{Merchant: laki.Merchant{Environment: laki.Sandbox, MasterMerchantID: merchant}, Client: sbx},
			{Merchant: laki.Merchant{Environment: laki.Production, MasterMerchantID: merchant}, Client: prod},
		}},
		Inventory: func(context.Context) ([]Managed, error) { return inv, nil },
		Clock:     clk, Sink: rec, Metrics: metrics,
	}
	ctx := context.Background()
	vs, err := m.ScanOnce(ctx)
	require.NoError(t, err)
	require.Len(t, vs, 3)
	require.Len(t, rec.Events(), 3)
	e := rec.Events()[0]
	assert.Equal(t, events.StepViolation, e.Step)
	assert.Equal(t, events.SourcePolicyScan, e.Source)
	assert.Equal(t, string(policies.InsecureWebhookURL), e.Reason)
	assert.Equal(t, "prod/webhooks/in", e.Secret)
	assert.Equal(t, 1.0, value(t, metrics.violations.WithLabelValues("unmanaged_key", "warning")))
	assert.Equal(t, 0.0, value(t, metrics.violations.WithLabelValues("key_too_old", "warning")))

	// Same state a day later: no new events.
	clk.Advance(24 * time.Hour)
	_, err = m.ScanOnce(ctx)
	require.NoError(t, err)
	assert.Len(t, rec.Events(), 3)

	// The management key passes its 30d max_age (checkout's is 45d): one
	// new event, metrics follow.
	clk.Advance(29 * 24 * time.Hour)
	_, err = m.ScanOnce(ctx)
	require.NoError(t, err)
	require.Len(t, rec.Events(), 4)
	last := rec.Events()[3]
	assert.Equal(t, string(policies.KeyTooOld), last.Reason)
	assert.Equal(t, "key_mgmt_prod", last.KeyID)
	assert.Equal(t, 1.0, value(t, metrics.violations.WithLabelValues("key_too_old", "warning")))

	// A failed scan changes nothing and counts as an error.
	prod.err = errors.New("boom")
	_, err = m.ScanOnce(ctx)
	require.Error(t, err)
	assert.Len(t, rec.Events(), 4)
	assert.Equal(t, 1.0, value(t, metrics.scans.WithLabelValues("error")))
	assert.Equal(t, 3.0, value(t, metrics.scans.WithLabelValues("ok")))
}

func TestTableEmptyAndOneLine(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteTable(&b, nil))
	assert.Equal(t, "no policy violations\n", b.String())
	b.Reset()
	require.NoError(t, WriteTable(&b, []policies.Violation{{Reason: policies.UnmanagedKey, Severity: events.SeverityWarning,
		KeyID: "key_1", Message: "two\nlines"}}))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	require.Len(t, lines, 3)
	assert.Contains(t, lines[1], "two lines")
	assert.Equal(t, "1 violation(s): 0 critical, 1 warning, 0 info", lines[2])
	b.Reset()
	require.NoError(t, WriteJSON(&b, nil, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)))
	assert.Contains(t, b.String(), `"violations": []`)
}

func value(t *testing.T, m prometheus.Metric) float64 {
	t.Helper()
	var out dto.Metric
	require.NoError(t, m.Write(&out))
	if out.Gauge != nil {
		return out.Gauge.GetValue()
	}
	return out.Counter.GetValue()
}
