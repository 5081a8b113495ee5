package policies

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

func TestEvaluateEveryReason(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	now := clk.Now()
	set, err := LoadDir("examples")
	require.NoError(t, err)
	checkout, _ := set.Get("checkout-service")
	mgmt, _ := set.Get("rotator-management-key")
	webhooks, _ := set.Get("webhooks")
	reporting, _ := set.Get("reporting-job")
	sandboxCheckout, _ := set.Get("checkout-service-sandbox")
	created := now.Add(-10 * 24 * time.Hour)
	expires := created.Add(90 * 24 * time.Hour)
	soon := now.Add(2 * time.Hour)

	// A healthy production checkout key; every case breaks one thing.
	healthy := Facts{
		Secret: "prod/checkout/lakiconnect", Kind: inventory.KindAPIKey, Managed: true, Current: true,
		Policy: &checkout, PolicyName: checkout.Name,
		DeclaredEnvironment: laki.Production, StoredEnvironment: laki.Production,
		BaseURLEnvironment: laki.Production, DeclaredMerchantID: "mm_AAAAAAAAAAAAAAAA",
		Found: true, KeyID: "key_checkout", KeyEnvironment: laki.Production, KeyMerchantID: "mm_AAAAAAAAAAAAAAAA",
		Scopes: checkout.Scopes, Status: laki.StatusActive, CreatedAt: created, ExpiresAt: &expires,
	}
	webhook := Facts{
		Secret: "prod/webhooks/orders", Kind: inventory.KindWebhookSecret, Managed: true, Current: true,
		Policy: &webhooks, PolicyName: webhooks.Name, DeclaredEnvironment: laki.Production,
		BaseURLEnvironment: laki.Production, Found: true, KeyID: "whs_1", EndpointID: "we_1",
		EndpointURL: "https://hooks.example.com/lakiconnect", KeyEnvironment: laki.Production,
		Status: laki.StatusActive, CreatedAt: created,
	}
	mgmtKey := healthy
	mgmtKey.Secret, mgmtKey.Kind, mgmtKey.Policy, mgmtKey.PolicyName = "prod/rotator/management", inventory.KindManagementKey, &mgmt, mgmt.Name
	mgmtKey.ManagementKey, mgmtKey.KeyID = true, "key_mgmt"
	mgmtKey.RotationScopes = set.RotationScopes(laki.Production)
	mgmtKey.Scopes = mgmtKey.RotationScopes

	with := func(base Facts, change func(*Facts)) Facts {
		change(&base)
		return base
	}
	cases := []struct {
		name  string
		facts Facts
		want  []Reason
		msg   string // the message of the first violation
	}{
		{"healthy key", healthy, nil, ""},
		{"healthy webhook secret", webhook, nil, ""},
		{"healthy management key", mgmtKey, nil, ""},
		{"old key in its grace, last used long before its end", with(healthy, func(f *Facts) {
			lastUsed := now.Add(-7 * time.Hour)
			f.PreviousKeys = []PreviousKey{{ID: "key_old", Status: laki.StatusExpiring, ExpiresAt: &soon, LastUsedAt: &lastUsed}}
		}), nil, ""},
		{"old key still used 2 h before its end", with(healthy, func(f *Facts) {
			lastUsed := now.Add(-10 * time.Minute)
			f.PreviousKeys = []PreviousKey{{ID: "key_old", Status: laki.StatusExpiring, ExpiresAt: &soon, LastUsedAt: &lastUsed}}
		}), []Reason{OldKeyStillInUse},
			`secret prod/checkout/lakiconnect: its old key key_old was last used at 2026-06-01T11:50:00Z and ends at 2026-06-01T14:00:00Z (in 2h0m0s): a consumer is still on it`},
		{"over-privileged", with(healthy, func(f *Facts) {
			f.Scopes = []laki.Scope{"payments:read", "payments:write", "customers:read", "refunds:write"}
		}), []Reason{OverPrivileged},
			`key key_checkout of secret prod/checkout/lakiconnect holds refunds:write beyond policy "checkout-service" (payments:read,payments:write,customers:read); the next rotation narrows it`},
		{"under-privileged", with(healthy, func(f *Facts) { f.Scopes = []laki.Scope{"payments:read"} }), []Reason{UnderPrivileged},
			`key key_checkout of secret prod/checkout/lakiconnect lacks payments:write,customers:read that policy "checkout-service" grants: its consumer is refused with 403`},
		{"key in sandbox, secret declares production", with(healthy, func(f *Facts) { f.KeyEnvironment = laki.Sandbox }),
			[]Reason{EnvironmentMismatch, EnvironmentNotAllowed, EnvironmentNameMismatch},
			`key key_checkout of secret prod/checkout/lakiconnect: environments disagree (LakiConnect sandbox, secret declaration production, stored value production, base URL production)`},
		{"base URL is sandbox", with(healthy, func(f *Facts) { f.BaseURLEnvironment = laki.Sandbox }), []Reason{EnvironmentMismatch},
			`key key_checkout of secret prod/checkout/lakiconnect: environments disagree (LakiConnect production, secret declaration production, stored value production, base URL sandbox)`},
		{"production key under a sandbox policy", with(healthy, func(f *Facts) {
			f.Secret, f.Policy, f.PolicyName = "checkout", &sandboxCheckout, sandboxCheckout.Name
			f.ExpiresAt = nil
		}), []Reason{EnvironmentNotAllowed},
			`key key_checkout of secret checkout is in production; policy "checkout-service-sandbox" allows only [sandbox]`},
		{"production key under a sandbox-named secret", with(healthy, func(f *Facts) { f.Secret = "sandbox/checkout" }), []Reason{EnvironmentNameMismatch},
			`secret sandbox/checkout is named like sandbox but holds a production credential (key key_checkout)`},
		{"sandbox key under a prod-named secret", with(healthy, func(f *Facts) {
			f.Policy, f.PolicyName = &sandboxCheckout, sandboxCheckout.Name
			f.KeyEnvironment, f.DeclaredEnvironment, f.StoredEnvironment, f.BaseURLEnvironment = laki.Sandbox, laki.Sandbox, laki.Sandbox, laki.Sandbox
		}), []Reason{EnvironmentNameMismatch},
			`secret prod/checkout/lakiconnect is named like production but holds a sandbox credential (key key_checkout)`},
		{"other merchant", with(healthy, func(f *Facts) { f.KeyMerchantID = "mm_BBBBBBBBBBBBBBBB" }), []Reason{MerchantMismatch},
			`key key_checkout of secret prod/checkout/lakiconnect belongs to master merchant mm_BBBBBBBBBBBBBBBB, the secret declares mm_AAAAAAAAAAAAAAAA`},
		{"older than max age", with(healthy, func(f *Facts) { f.CreatedAt = now.Add(-46 * 24 * time.Hour) }), []Reason{KeyTooOld},
			`key key_checkout of secret prod/checkout/lakiconnect is 46d old, over policy "checkout-service" max_age 45d`},
		{"exactly max age is fine", with(healthy, func(f *Facts) { f.CreatedAt = now.Add(-45 * 24 * time.Hour) }), nil, ""},
		{"severity override", with(healthy, func(f *Facts) {
			f.Policy, f.PolicyName, f.Scopes, f.CreatedAt = &reporting, reporting.Name, reporting.Scopes, now.Add(-31*24*time.Hour)
		}), []Reason{KeyTooOld}, ""},
		{"no expiry where the policy demands one", with(healthy, func(f *Facts) { f.ExpiresAt = nil }), []Reason{MissingExpiry},
			`key key_checkout of secret prod/checkout/lakiconnect has no expires_at; policy "checkout-service" demands one within 90d of creation`},
		{"unmanaged key", with(healthy, func(f *Facts) {
			f.Secret, f.Managed, f.Current, f.Policy, f.PolicyName, f.DeclaredEnvironment, f.StoredEnvironment, f.DeclaredMerchantID = "", false, false, nil, "", "", "", ""
			f.KeyID, f.CreatedBy = "key_stray", "key_mgmt"
		}), []Reason{UnmanagedKey},
			`key key_stray (created by key key_mgmt on 2026-05-22, scopes payments:read,payments:write,customers:read) is active and no managed secret references it`},
		{"revoked unmanaged key is no violation", with(healthy, func(f *Facts) {
			f.Secret, f.Managed, f.Current, f.Policy = "", false, false, nil
			f.Status = laki.StatusRevoked
		}), nil, ""},
		{"stored key revoked", with(healthy, func(f *Facts) { f.Status = laki.StatusRevoked }), []Reason{StoredKeyRevoked},
			`secret prod/checkout/lakiconnect stores key key_checkout, which LakiConnect reports revoked: its consumers are refused`},
		{"stored key expiring", with(healthy, func(f *Facts) { f.Status, f.ExpiresAt = laki.StatusExpiring, &soon }), []Reason{StoredKeyExpiring},
			`secret prod/checkout/lakiconnect stores key key_checkout, which LakiConnect reports expiring at 2026-06-01T14:00:00Z (in 2h0m0s): its consumers are about to break`},
		{"previous key expiring is its grace, not a violation", with(healthy, func(f *Facts) {
			f.Current, f.Status, f.ExpiresAt = false, laki.StatusExpiring, &soon
		}), nil, ""},
		{"stored key missing", with(healthy, func(f *Facts) { f.Found = false }), []Reason{StoredKeyMissing},
			`secret prod/checkout/lakiconnect stores key key_checkout, which LakiConnect does not know`},
		{"unmanaged webhook endpoint", with(webhook, func(f *Facts) {
			f.Secret, f.Managed, f.Current, f.Policy, f.PolicyName, f.DeclaredEnvironment, f.KeyID = "", false, false, nil, "", "", ""
		}), []Reason{UnmanagedWebhookEndpoint},
			`webhook endpoint we_1 (https://hooks.example.com/lakiconnect) has no managed secret holding its signing secret`},
		{"plain http webhook", with(webhook, func(f *Facts) { f.EndpointURL = "http://hooks.example.com/lakiconnect" }), []Reason{InsecureWebhookURL},
			`webhook endpoint we_1 delivers to "http://hooks.example.com/lakiconnect", which is not an https URL`},
		{"plain http to loopback is reported, at info", with(webhook, func(f *Facts) { f.EndpointURL = "http://127.0.0.1:8088/v1/lakiconnect/events" }), []Reason{InsecureWebhookURL},
			`webhook endpoint we_1 delivers to "http://127.0.0.1:8088/v1/lakiconnect/events": plain http, allowed only because it is loopback (tests, the demo); never a real receiver`},
		{"webhook secret too old", with(webhook, func(f *Facts) { f.CreatedAt = now.Add(-100 * 24 * time.Hour) }), []Reason{KeyTooOld},
			`webhook secret whs_1 of endpoint we_1 of secret prod/webhooks/orders is 100d old, over policy "webhooks" max_age 90d`},
		{"management key over-scoped", with(mgmtKey, func(f *Facts) {
			f.Scopes = append(append([]laki.Scope{}, f.Scopes...), laki.ScopePayoutsWrite)
		}), []Reason{ManagementKeyOverScoped},
			`management key key_mgmt holds payouts:write, which rotation does not need (needs payments:read,payments:write,refunds:read,refunds:write,customers:read,reports:read,webhooks:read,webhooks:write,api_keys:read,api_keys:write)`},
		{"management key lacking a scope is under-privileged", with(mgmtKey, func(f *Facts) {
			f.Scopes = []laki.Scope{laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite}
		}), []Reason{UnderPrivileged}, ""},
		{"policy not loaded", with(healthy, func(f *Facts) { f.Policy, f.PolicyName = nil, "chekout" }), []Reason{UnknownPolicy},
			`secret prod/checkout/lakiconnect names policy "chekout", which is not loaded`},
		{"policy for another kind", with(webhook, func(f *Facts) { f.Policy, f.PolicyName = &checkout, checkout.Name }),
			[]Reason{UnknownPolicy},
			`secret prod/webhooks/orders holds a webhook_secret but its policy "checkout-service" is for api_key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			vs := Evaluate(tc.facts, now)
			var got []Reason
			for _, v := range vs {
				got = append(got, v.Reason)
				assert.Equal(t, tc.facts.Secret, v.Secret)
				assert.NotEmpty(t, v.Message)
			}
			assert.ElementsMatch(t, tc.want, got)
			if tc.msg != "" {
				require.NotEmpty(t, vs)
				assert.Equal(t, tc.msg, vs[0].Message)
			}
		})
	}

	// Every documented reason has a case that raises it.
	raised := map[Reason]bool{}
	for _, tc := range cases {
		for _, r := range tc.want {
			raised[r] = true
		}
	}
	for _, info := range Reasons() {
		assert.True(t, raised[info.Reason], "no case raises %s", info.Reason)
	}

	// Severities: the reason's default, or the policy's override.
	byName := map[string]Facts{}
	for _, tc := range cases {
		byName[tc.name] = tc.facts
	}
	loop := Evaluate(byName["plain http to loopback is reported, at info"], now)
	require.Len(t, loop, 1)
	assert.Equal(t, events.SeverityInfo, loop[0].Severity, "loopback http cannot fail --fail-on critical")
	remote := Evaluate(byName["plain http webhook"], now)
	require.Len(t, remote, 1)
	assert.Equal(t, events.SeverityCritical, remote[0].Severity)
	old := Evaluate(byName["severity override"], now)
	require.Len(t, old, 1)
	assert.Equal(t, events.SeverityCritical, old[0].Severity, "reporting-job raises key_too_old to critical")
	old = Evaluate(byName["older than max age"], now)
	assert.Equal(t, events.SeverityWarning, old[0].Severity)

	// Time moves: a healthy key becomes too old without anything else changing.
	clk.Advance(36 * 24 * time.Hour)
	vs := Evaluate(healthy, clk.Now())
	require.Len(t, vs, 1)
	assert.Equal(t, KeyTooOld, vs[0].Reason)
}
