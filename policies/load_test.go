package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

func TestExamplesLoad(t *testing.T) {
	set, err := LoadDir("examples")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"checkout-service", "checkout-service-sandbox", "refunds-worker",
		"reporting-job", "rotator-management-key", "webhooks",
	}, set.Names())

	p, ok := set.Get("checkout-service")
	require.True(t, ok)
	assert.Equal(t, inventory.KindAPIKey, p.Kind)
	assert.Equal(t, []laki.Scope{"payments:read", "payments:write", "customers:read"}, p.Scopes)
	assert.Equal(t, []laki.Environment{laki.Production}, p.Environments)
	assert.Equal(t, 45*24*time.Hour, p.MaxAge)
	assert.Equal(t, "Europe/Berlin", p.Location.String())
	assert.Equal(t, Grace{Scheduled: 48 * time.Hour, Personnel: time.Hour}, p.Grace)
	assert.Equal(t, 90*24*time.Hour, p.HardExpiry.ExpiresAfter)
	assert.Equal(t, Alerts{Unauthorized401: 20, Forbidden403: 5, Window: 15 * time.Minute,
		RotateOnUnauthorizedSpike: true, LastUsedWarning: 6 * time.Hour}, p.Alerts)
	// The schedule runs in Berlin time: 03:00 CET is 02:00 UTC in January.
	assert.Equal(t, time.Date(2026, 1, 15, 2, 0, 0, 0, time.UTC), p.NextRun(time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)).UTC())

	w, _ := set.Get("webhooks")
	assert.Empty(t, w.Scopes)
	assert.Equal(t, 72*time.Hour, w.GraceFor(events.CauseScheduled))

	r, _ := set.Get("reporting-job")
	assert.Equal(t, events.SeverityCritical, r.SeverityOf(KeyTooOld))
	assert.Equal(t, events.SeverityWarning, r.SeverityOf(OverPrivileged))

	sbx, _ := set.Get("checkout-service-sandbox")
	assert.True(t, sbx.SandboxOnly)
	assert.Equal(t, DefaultAlertWindow, w.Alerts.Window, "default alert window")
	assert.Equal(t, time.Hour, sbx.Alerts.Window)
}

func TestRotationScopes(t *testing.T) {
	set, err := LoadDir("examples")
	require.NoError(t, err)
	// Sandbox has no reporting job, so its management key needs no reports:read.
	assert.Equal(t, []laki.Scope{"payments:read", "payments:write", "refunds:read", "refunds:write",
		"customers:read", "webhooks:read", "webhooks:write", "api_keys:read", "api_keys:write"},
		set.RotationScopes(laki.Sandbox))
	assert.Contains(t, set.RotationScopes(laki.Production), laki.ScopeReportsRead)

	// One management policy serves both environments, narrowed per environment.
	sbx, ok := set.ForEnvironment("rotator-management-key", laki.Sandbox)
	require.True(t, ok)
	assert.Equal(t, set.RotationScopes(laki.Sandbox), sbx.Scopes)
	prod, _ := set.ForEnvironment("rotator-management-key", laki.Production)
	assert.Equal(t, set.RotationScopes(laki.Production), prod.Scopes)
	full, _ := set.Get("rotator-management-key")
	assert.Len(t, full.Scopes, 10, "the set's own policy is not changed")
	checkout, _ := set.ForEnvironment("checkout-service", laki.Sandbox)
	assert.Equal(t, []laki.Scope{"payments:read", "payments:write", "customers:read"}, checkout.Scopes)
	_, ok = set.ForEnvironment("nope", laki.Sandbox)
	assert.False(t, ok)
}

// A minimal valid policy that the error cases below break one field at a time.
const validPolicy = `name: p
kind: api_key
scopes: [payments:read]
environments: [sandbox]
max_age: 30d
`

// Policy files read durations as the config file does: days and hours
// together, and the form messages print reads back.
func TestDurationsAsInTheConfigFile(t *testing.T) {
	set, err := Load("f.yaml", []byte(strings.Replace(validPolicy, "max_age: 30d", "max_age: 1d12h", 1)+"grace:\n  scheduled: 1d12h\n"))
	require.NoError(t, err)
	p, _ := set.Get("p")
	assert.Equal(t, 36*time.Hour, p.MaxAge)
	assert.Equal(t, 36*time.Hour, p.Grace.Scheduled)

	_, err = Load("f.yaml", []byte(validPolicy+"grace:\n  scheduled: 7d1h\n"))
	assert.EqualError(t, err, "f.yaml:7:14: grace.scheduled: 7d1h is more than LakiConnect's limit of 7d for an old credential's end")
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown scope", `name: p
kind: api_key
scopes: [payments:read, payments:admin]
environments: [sandbox]
max_age: 30d
`, []string{`f.yaml:3:25: scopes: unknown scope "payments:admin" (LakiConnect scopes: payments:read,payments:write,refunds:read,refunds:write,payouts:read,payouts:write,customers:read,customers:write,sub_merchants:read,sub_merchants:write,reports:read,webhooks:read,webhooks:write,api_keys:read,api_keys:write)`}},
		{"unknown field", validPolicy + "max_agee: 3d\n", []string{
			`f.yaml:6:1: max_agee: unknown field (known: name, description, kind, scopes, environments, sandbox_only, max_age, schedule, time_zone, window, grace, revoke_first_on_compromise, hard_expiry, alerts, severity)`}},
		{"unknown nested field", validPolicy + "grace:\n  schedule: 1h\n", []string{
			`f.yaml:7:3: grace.schedule: unknown field (known: scheduled, personnel, compromise)`}},
		{"sandbox-only allows production", `name: p
kind: api_key
scopes: [payments:read]
sandbox_only: true
environments: [sandbox, production]
max_age: 30d
`, []string{`f.yaml:5:15: environments: a sandbox-only policy (sandbox_only: true) cannot allow production`}},
		{"sandbox name allows production", strings.Replace(validPolicy, "name: p", "name: checkout-sandbox", 1) + "", nil},
		{"sandbox name with production", strings.NewReplacer("name: p", "name: checkout-sandbox", "[sandbox]", "[production]").Replace(validPolicy),
			[]string{`f.yaml:4:15: environments: a sandbox-only policy (its name says sandbox) cannot allow production`}},
		{"missing required fields", "description: nothing else\n", []string{
			`f.yaml:1:1: name: is required`,
			`f.yaml:1:1: kind: is required (api_key, webhook_secret or management_key)`,
			`f.yaml:1:1: environments: is required (sandbox, production or both)`,
			`f.yaml:1:1: max_age: is required`,
		}},
		{"bad duration and bad environment", `name: p
kind: api_key
scopes: [payments:read]
environments: [staging]
max_age: 3 months
`, []string{
			`f.yaml:4:16: environments: "staging" is not sandbox or production`,
			`f.yaml:5:10: max_age: "3 months" is not a duration: use a number and a unit (s, m, h, d), as in 90s, 15m, 2h or 7d`,
		}},
		{"hard expiry too long and shorter than max age", validPolicy + "hard_expiry:\n  expires_after: 401d\n", []string{
			`f.yaml:7:18: hard_expiry.expires_after: 401d is more than LakiConnect's limit of 400d`}},
		{"hard expiry shorter than max age", validPolicy + "hard_expiry:\n  expires_after: 20d\n", []string{
			`f.yaml:7:3: hard_expiry.expires_after: 20d is shorter than max_age 30d: keys would end before their rotation is due`}},
		{"grace over LakiConnect's limit and inverted", validPolicy + "grace:\n  scheduled: 8d\n  personnel: 2d\n  compromise: 3d\n", []string{
			`f.yaml:7:14: grace.scheduled: 8d is more than LakiConnect's limit of 7d for an old credential's end`,
			`f.yaml:8:14: grace.personnel: 2d is longer than the scheduled grace 1d: an emergency must not give old keys more time`,
			`f.yaml:9:15: grace.compromise: 3d is refused: a compromised credential ends as soon as its replacement is current, so it gets no grace (write 0s or leave the field out)`,
		}},
		{"schedule not cron", validPolicy + "schedule: every tuesday\n", []string{
			`f.yaml:6:11: schedule: "every tuesday" is not a cron schedule: expected exactly 5 fields, found 2: [every tuesday]`}},
		{"schedule slower than max age", validPolicy + "schedule: \"0 0 1 */3 *\"\n", []string{
			`f.yaml:6:11: schedule: runs up to 92d apart, longer than max_age 30d: keys would outlive the policy between rotations`}},
		{"schedule and time zone disagree", validPolicy + "time_zone: Europe/Paris\nschedule: \"CRON_TZ=UTC 0 3 * * *\"\n", []string{
			`f.yaml:7:11: schedule: names time zone UTC but time_zone is Europe/Paris; give it once`}},
		{"bad time zone", validPolicy + "time_zone: Mars/Olympus\n", []string{
			`f.yaml:6:12: time_zone: "Mars/Olympus" is not an IANA time zone name (like Europe/Berlin or UTC)`}},
		{"bad window", validPolicy + "window:\n  days: [mon, funday]\n  start: \"25:00\"\n", []string{
			`f.yaml:7:3: window.end: is required`,
			`f.yaml:7:15: window.days: "funday" is not a weekday (mon, tue, wed, thu, fri, sat, sun)`,
			`f.yaml:8:10: window.start: "25:00" is not a time of day HH:MM (00:00-23:59, end may be 24:00)`,
		}},
		{"webhook policy with scopes and expiry", `name: w
kind: webhook_secret
scopes: [webhooks:read]
environments: [sandbox]
max_age: 30d
hard_expiry: {expires_after: 60d}
`, []string{
			`f.yaml:3:9: scopes: webhook secrets have no scopes; remove the field`,
			`f.yaml:6:14: hard_expiry: webhook secrets take no expires_at at creation; remove the field`,
		}},
		{"empty window", validPolicy + "window: {days: [sat], start: \"04:00\", end: \"04:00\"}\n", []string{
			`f.yaml:6:9: window: start and end are equal: the window would be empty`}},
		{"api key without scopes", "name: p\nkind: api_key\nscopes: []\nenvironments: [sandbox]\nmax_age: 1d\n", []string{
			`f.yaml:3:9: scopes: is empty; a key needs at least one scope`}},
		{"wrong types", "name: 12\nkind: api_key\nscopes: payments:read\nenvironments: [sandbox]\nmax_age: 1d\nsandbox_only: yes please\n", []string{
			`f.yaml:1:7: name: expected a string, found "12"`,
			`f.yaml:3:9: scopes: expected a list, found "payments:read"`,
			`f.yaml:6:15: sandbox_only: expected true or false, found "yes please"`,
		}},
		{"duplicate field", validPolicy + "max_age: 20d\n", []string{`f.yaml:6:1: max_age: field is given twice`}},
		{"bad alerts", validPolicy + "alerts:\n  unauthorized_401: -1\n  rotate_on_unauthorized_spike: true\n", []string{
			`f.yaml:7:21: alerts.unauthorized_401: expected a whole number of 0 or more, found "-1"`,
			`f.yaml:8:33: alerts.rotate_on_unauthorized_spike: needs alerts.unauthorized_401 above 0 to know what a spike is`,
		}},
		{"bad severity override", validPolicy + "severity:\n  too_old: critical\n  over_privileged: urgent\n", []string{
			`f.yaml:7:3: severity.too_old: unknown reason "too_old" (see policies.Reasons)`,
			`f.yaml:8:20: severity.over_privileged: "urgent" is not info, warning or critical`,
		}},
		{"invalid yaml", "name: p\nkind: api_key\nscopes: a: b\n", []string{
			`f.yaml:3: invalid YAML: mapping values are not allowed in this context`}},
		{"tab indentation", "name: p\n\tkind: api_key\n", []string{
			`f.yaml:2: invalid YAML: found a tab character that violates indentation`}},
		{"empty file", "# nothing\n", []string{`f.yaml: holds no policy`}},
		{"management key lacks and exceeds", `name: checkout
kind: api_key
scopes: [payments:write]
environments: [production]
max_age: 30d
---
name: mgmt
kind: management_key
scopes: [api_keys:read, api_keys:write, payouts:write]
environments: [production]
max_age: 30d
`, []string{
			`f.yaml:9:9: scopes: lacks payments:write that rotation in production needs (LakiConnect refuses to grant scopes the caller lacks)`,
			`f.yaml:9:9: scopes: payouts:write not needed for rotation: the management key must hold only what rotation needs`,
		}},
		{"duplicate name in one file", validPolicy + "---\n" + validPolicy, []string{
			`f.yaml:7:7: name: policy "p" is already defined at f.yaml:1`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Load("f.yaml", []byte(tc.yaml))
			if tc.want == nil {
				require.NoError(t, err)
				require.NotNil(t, set)
				return
			}
			require.Error(t, err)
			var le *LoadError
			require.True(t, errors.As(err, &le), "error is a *LoadError: %v", err)
			got := make([]string, len(le.Problems))
			for i, p := range le.Problems {
				got[i] = p.String()
			}
			assert.Equal(t, tc.want, got)
			assert.Nil(t, set)
		})
	}
}

func TestLoadDirDuplicateAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.yaml"), []byte(validPolicy), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "b.yml"), []byte("# again\n"+validPolicy), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a policy"), 0o600))
	_, err := LoadDir(dir)
	var le *LoadError
	require.True(t, errors.As(err, &le))
	require.Len(t, le.Problems, 1)
	assert.Equal(t, filepath.Join(dir, "b.yml")+`:2:7: name: policy "p" is already defined at `+filepath.Join(dir, "a.yaml")+`:1`, le.Problems[0].String())

	_, err = LoadDir(t.TempDir())
	assert.ErrorContains(t, err, "no policy files")
}

func FuzzLoad(f *testing.F) {
	entries, err := os.ReadDir("examples")
	require.NoError(f, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("examples", e.Name()))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte(validPolicy))
	f.Add([]byte("name: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := Load("fuzz.yaml", data)
		if err != nil {
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error is not a *LoadError: %v", err)
			}
			if len(le.Problems) == 0 || set != nil {
				t.Fatalf("error without problems, or with a set")
			}
			for _, p := range le.Problems {
				if p.File != "fuzz.yaml" || p.Message == "" {
					t.Fatalf("problem without file or message: %+v", p)
				}
			}
			return
		}
		// Whatever loads is a policy the rest of the system can trust.
		for _, p := range set.All() {
			if p.Name == "" || !p.Kind.Valid() || len(p.Environments) == 0 || p.MaxAge <= 0 {
				t.Fatalf("loaded an incomplete policy: %+v", p)
			}
			for _, s := range p.Scopes {
				if !s.Valid() {
					t.Fatalf("loaded unknown scope %q", s)
				}
			}
			if p.Grace.Scheduled > laki.MaxExpireDelay || p.HardExpiry.ExpiresAfter > laki.MaxCreateExpiresAhead {
				t.Fatalf("loaded limits LakiConnect refuses: %+v", p)
			}
		}
	})
}
