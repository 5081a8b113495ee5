package scan_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/scan"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// simWorld is a simulator seeded with a realistic mix of credentials, the
// managed secrets that reference some of them, and every secret value the
// seeding saw (to scan output for).
type simWorld struct {
	fx        *lakisimtest.Fixture
	set       *policies.Set
	merchants []scan.Merchant
	managed   []scan.Managed
	secrets   []secret.Value
	ids       map[string]string // role -> key or endpoint id
}

func newClient(t *testing.T, fx *lakisimtest.Fixture, env laki.Environment, key secret.Value) *lakiconnect.Client {
	t.Helper()
	c, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: fx.URL(env), APIKey: key, MaxRetries: -1})
	require.NoError(t, err)
	return c
}

func seedWorld(t *testing.T) *simWorld {
	t.Helper()
	ctx := context.Background()
	fx := lakisimtest.Start(t)
	set, err := policies.LoadDir("../examples")
	require.NoError(t, err)
	w := &simWorld{fx: fx, set: set, ids: map[string]string{}}
	pol := func(name string) policies.Policy {
		p, ok := set.Get(name)
		require.True(t, ok, name)
		return p
	}
	create := func(c *lakiconnect.Client, role string, req laki.CreateAPIKeyRequest) laki.APIKeyWithSecret {
		k, err := c.CreateAPIKey(ctx, "seed-"+role, req)
		require.NoError(t, err, role)
		w.secrets = append(w.secrets, k.Secret)
		w.ids[role] = k.ID
		return k
	}
	manage := func(name string, kind inventory.Kind, env laki.Environment, policy, id string) {
		m := scan.FromInventory(inventory.ManagedSecret{Name: name, Kind: kind, Environment: env, MasterMerchantID: fx.MasterMerchantID, Policy: policy})
		m.KeyID, m.StoredEnvironment = id, env
		w.managed = append(w.managed, m)
	}
	w.secrets = append(w.secrets, fx.SandboxKey, fx.ProductionKey)
	bootstrapProd := newClient(t, fx, laki.Production, fx.ProductionKey)
	bootstrapSbx := newClient(t, fx, laki.Sandbox, fx.SandboxKey)

	// A stale refunds key, made 61 days ago (refunds-worker max_age 60d).
	refunds := pol("refunds-worker")
	stale := create(bootstrapProd, "stale", refunds.CreateRequest("refunds (old)", fx.Clock.Now(), nil))
	manage("prod/refunds/lakiconnect", inventory.KindAPIKey, laki.Production, refunds.Name, stale.ID)
	fx.Clock.Advance(61 * 24 * time.Hour)
	now := fx.Clock.Now()

	// Management keys with exactly what rotation needs; the fixture's
	// all-scope bootstrap keys are then revoked, as an operator would.
	mgmtPolicy := pol("rotator-management-key")
	for _, env := range []laki.Environment{laki.Production, laki.Sandbox} {
		boot := map[laki.Environment]*lakiconnect.Client{laki.Production: bootstrapProd, laki.Sandbox: bootstrapSbx}[env]
		envPolicy, ok := set.ForEnvironment(mgmtPolicy.Name, env)
		require.True(t, ok)
		k := create(boot, "mgmt-"+string(env), envPolicy.CreateRequest("lakirotator management", now, nil))
		manage(string(env)+"/lakirotator/management", inventory.KindManagementKey, env, mgmtPolicy.Name, k.ID)
		w.merchants = append(w.merchants, scan.Merchant{Merchant: laki.Merchant{Environment: env, MasterMerchantID: fx.MasterMerchantID},
			Client: newClient(t, fx, env, k.Secret)})
	}
	require.NoError(t, fx.Sim.RevokeKey(fx.ProductionKeyID, "revoked_by_dashboard"))
	require.NoError(t, fx.Sim.RevokeKey(fx.SandboxKeyID, "revoked_by_dashboard"))
	mgmtProd := newClient(t, fx, laki.Production, w.secretOf(t, "mgmt-production"))
	mgmtSbx := newClient(t, fx, laki.Sandbox, w.secretOf(t, "mgmt-sandbox"))

	// Healthy keys, made the way the engine makes them: from the policy.
	checkout := pol("checkout-service")
	k := create(mgmtProd, "checkout", checkout.CreateRequest("checkout", now, nil))
	manage("prod/checkout/lakiconnect", inventory.KindAPIKey, laki.Production, checkout.Name, k.ID)
	k = create(mgmtSbx, "refunds-sandbox", refunds.CreateRequest("refunds", now, nil))
	manage("sandbox/refunds/lakiconnect", inventory.KindAPIKey, laki.Sandbox, refunds.Name, k.ID)

	// Over-privileged: the reporting job's key can also read payments.
	reporting := pol("reporting-job")
	req := reporting.CreateRequest("reporting", now, nil)
	req.Scopes = append(req.Scopes, laki.ScopePaymentsRead)
	k = create(mgmtProd, "reporting", req)
	manage("prod/reporting/lakiconnect", inventory.KindAPIKey, laki.Production, reporting.Name, k.ID)

	// Revoked but still stored: someone revoked the sandbox checkout key in the dashboard.
	sbxCheckout := pol("checkout-service-sandbox")
	k = create(mgmtSbx, "revoked", sbxCheckout.CreateRequest("checkout sandbox", now, nil))
	manage("sandbox/checkout/lakiconnect", inventory.KindAPIKey, laki.Sandbox, sbxCheckout.Name, k.ID)
	require.NoError(t, fx.Sim.RevokeKey(k.ID, "revoked_by_dashboard"))

	// Unmanaged: a key made by hand in the dashboard for a script.
	legacy, err := fx.Sim.CreateKey(laki.Production, fx.MasterMerchantID, "legacy script", []laki.Scope{laki.ScopePaymentsRead})
	require.NoError(t, err)
	w.secrets = append(w.secrets, legacy.Secret)
	w.ids["legacy"] = legacy.ID

	// Webhook endpoints: one managed, one nobody manages.
	ep, ws, err := fx.Sim.AddWebhookEndpoint(laki.Production, fx.MasterMerchantID, "https://hooks.example.com/payments", []string{"*"})
	require.NoError(t, err)
	w.secrets = append(w.secrets, ws.Secret)
	m := scan.FromInventory(inventory.ManagedSecret{Name: "prod/webhooks/payments", Kind: inventory.KindWebhookSecret,
		Environment: laki.Production, MasterMerchantID: fx.MasterMerchantID, EndpointID: ep.ID, Policy: "webhooks"})
	m.SecretID = ws.ID
	w.managed = append(w.managed, m)
	orphanEP, ws, err := fx.Sim.AddWebhookEndpoint(laki.Production, fx.MasterMerchantID, "https://hooks.example.com/orders", []string{"*"})
	require.NoError(t, err)
	w.secrets = append(w.secrets, ws.Secret)
	w.ids["orphan-endpoint"] = orphanEP.ID
	return w
}

func (w *simWorld) secretOf(t *testing.T, role string) secret.Value {
	t.Helper()
	for _, s := range w.secrets {
		if k, ok := w.fx.Sim.Key(w.ids[role]); ok && s.Last4() == k.SecretLast4 {
			return s
		}
	}
	t.Fatalf("no secret for %s", role)
	return secret.Value{}
}

type planted struct {
	reason policies.Reason
	secret string
	id     string
}

func TestPolicyCheckAgainstSimulatorFindsExactlyThePlantedViolations(t *testing.T) {
	w := seedWorld(t)
	s := &scan.Scanner{Policies: w.set, Merchants: w.merchants}
	now := w.fx.Clock.Now()
	vs, err := s.Scan(context.Background(), w.managed, now)
	require.NoError(t, err)

	var got []planted
	for _, v := range vs {
		id := v.KeyID
		if id == "" {
			id = v.EndpointID
		}
		got = append(got, planted{v.Reason, v.Secret, id})
	}
	assert.ElementsMatch(t, []planted{
		{policies.StoredKeyRevoked, "sandbox/checkout/lakiconnect", w.ids["revoked"]},
		{policies.OverPrivileged, "prod/reporting/lakiconnect", w.ids["reporting"]},
		{policies.KeyTooOld, "prod/refunds/lakiconnect", w.ids["stale"]},
		{policies.UnmanagedKey, "", w.ids["legacy"]},
		{policies.UnmanagedWebhookEndpoint, "", w.ids["orphan-endpoint"]},
	}, got)
	require.NotEmpty(t, vs)
	assert.Equal(t, policies.StoredKeyRevoked, vs[0].Reason, "most severe first")

	// Exit code follows the severity threshold.
	assert.Equal(t, 1, scan.ExitCode(vs, events.SeverityCritical))
	assert.Equal(t, 1, scan.ExitCode(vs, events.SeverityWarning))
	// Once the revoked key's secret is rotated away (here: dropped), only
	// warnings remain: a critical-only check passes, a warning check fails.
	var fixed []scan.Managed
	for _, m := range w.managed {
		if m.Secret != "sandbox/checkout/lakiconnect" {
			fixed = append(fixed, m)
		}
	}
	vs2, err := s.Scan(context.Background(), fixed, now)
	require.NoError(t, err)
	assert.Len(t, vs2, 4)
	assert.Equal(t, 0, scan.ExitCode(vs2, events.SeverityCritical))
	assert.Equal(t, 1, scan.ExitCode(vs2, events.SeverityWarning))

	// Output: the table and JSON name every violation and no secret value.
	var table, js bytes.Buffer
	require.NoError(t, scan.WriteTable(&table, vs))
	require.NoError(t, scan.WriteJSON(&js, vs, now))
	for _, p := range got {
		assert.Contains(t, table.String(), string(p.reason))
		assert.Contains(t, table.String(), p.id)
	}
	assert.Contains(t, table.String(), "5 violation(s): 1 critical, 4 warning, 0 info")
	var report scan.Report
	require.NoError(t, json.Unmarshal(js.Bytes(), &report))
	assert.Len(t, report.Violations, 5)
	assert.Equal(t, 1, report.Counts[events.SeverityCritical])
	assert.Equal(t, 1, report.ByReason[policies.UnmanagedKey])
	assertNoSecrets(t, w.secrets, table.String(), js.String(), fmt.Sprintf("%+v", vs))
}

func assertNoSecrets(t *testing.T, secrets []secret.Value, outputs ...string) {
	t.Helper()
	require.NotEmpty(t, secrets)
	for _, s := range secrets {
		require.False(t, s.IsZero())
		for _, out := range outputs {
			if strings.Contains(out, s.Reveal()) {
				t.Errorf("output contains a secret value (last4 %s)", s.Last4())
			}
		}
	}
}
