package policies

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
)

func mustLoadOne(t *testing.T, yaml string) Policy {
	t.Helper()
	set, err := Load("t.yaml", []byte(yaml))
	require.NoError(t, err)
	require.Len(t, set.Names(), 1)
	p, _ := set.Get(set.Names()[0])
	return p
}

func TestWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	require.NoError(t, err)
	day := mustLoadOne(t, validPolicy+"time_zone: Europe/Berlin\nwindow: {days: [mon, tue], start: \"02:00\", end: \"05:00\"}\n")
	night := mustLoadOne(t, validPolicy+"window: {days: [sat], start: \"22:00\", end: \"04:00\"}\n")
	always := mustLoadOne(t, validPolicy)

	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	// 2026-03-02 is a Monday; 2026-03-07 a Saturday.
	cases := []struct {
		name string
		p    Policy
		t    time.Time
		in   bool
		next time.Time
	}{
		{"monday 03:00 Berlin", day, at(berlin, 2026, 3, 2, 3, 0), true, at(berlin, 2026, 3, 2, 3, 0)},
		{"monday 02:00 Berlin is the start", day, at(berlin, 2026, 3, 2, 2, 0), true, at(berlin, 2026, 3, 2, 2, 0)},
		{"monday 05:00 Berlin is the end, excluded", day, at(berlin, 2026, 3, 2, 5, 0), false, at(berlin, 2026, 3, 3, 2, 0)},
		{"monday 03:00 UTC is 04:00 Berlin", day, at(time.UTC, 2026, 3, 2, 3, 0), true, at(time.UTC, 2026, 3, 2, 3, 0)},
		{"monday 04:30 UTC is 05:30 Berlin", day, at(time.UTC, 2026, 3, 2, 4, 30), false, at(berlin, 2026, 3, 3, 2, 0)},
		{"tuesday after the window waits for next monday", day, at(berlin, 2026, 3, 3, 12, 0), false, at(berlin, 2026, 3, 9, 2, 0)},
		{"saturday 23:00 in overnight window", night, at(time.UTC, 2026, 3, 7, 23, 0), true, at(time.UTC, 2026, 3, 7, 23, 0)},
		{"sunday 03:00 in the window that began saturday", night, at(time.UTC, 2026, 3, 8, 3, 0), true, at(time.UTC, 2026, 3, 8, 3, 0)},
		{"saturday 03:00 belongs to friday's window: out", night, at(time.UTC, 2026, 3, 7, 3, 0), false, at(time.UTC, 2026, 3, 7, 22, 0)},
		{"sunday 22:30 out", night, at(time.UTC, 2026, 3, 8, 22, 30), false, at(time.UTC, 2026, 3, 14, 22, 0)},
		{"no window: always in", always, at(time.UTC, 2026, 3, 8, 22, 30), true, at(time.UTC, 2026, 3, 8, 22, 30)},
		// Berlin moves to summer time on 2026-03-29 at 02:00: 02:00-03:00 does not exist.
		{"DST gap monday after", day, at(berlin, 2026, 3, 30, 2, 30), true, at(berlin, 2026, 3, 30, 2, 30)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.in, tc.p.InWindow(tc.t))
			next := tc.p.NextWindowStart(tc.t)
			assert.True(t, tc.next.Equal(next), "next window start %s, want %s", next, tc.next)
			assert.True(t, tc.p.InWindow(next), "next window start is in the window")
		})
	}
}

func TestGraceFor(t *testing.T) {
	p := Policy{Grace: Grace{Scheduled: 48 * time.Hour, Personnel: time.Hour}}
	assert.Equal(t, 48*time.Hour, p.GraceFor(events.CauseScheduled))
	assert.Equal(t, 48*time.Hour, p.GraceFor(events.CauseManual))
	assert.Equal(t, time.Hour, p.GraceFor(events.CausePersonnel))
	assert.Equal(t, time.Duration(0), p.GraceFor(events.CauseCompromise))
}

func TestCreateRequestEnforcesPolicy(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	p := mustLoadOne(t, validPolicy+"hard_expiry: {expires_after: 60d}\n")
	req := p.CreateRequest("checkout 2026-05", now, map[string]string{"secret": "prod/checkout"})
	assert.Equal(t, []laki.Scope{laki.ScopePaymentsRead}, req.Scopes)
	require.NotNil(t, req.ExpiresAt)
	assert.Equal(t, now.Add(60*24*time.Hour), *req.ExpiresAt)
	require.NoError(t, p.CheckCreateRequest(req, now))

	wider := req
	wider.Scopes = []laki.Scope{laki.ScopePaymentsRead, laki.ScopeRefundsWrite}
	assert.EqualError(t, p.CheckCreateRequest(wider, now),
		`policy "p": create request for "checkout 2026-05" asks for scopes [refunds:write] beyond the policy`)

	noExpiry := req
	noExpiry.ExpiresAt = nil
	assert.EqualError(t, p.CheckCreateRequest(noExpiry, now),
		`policy "p": create request for "checkout 2026-05" has no expires_at; the policy demands one within 60d`)

	later := req
	l := now.Add(61 * 24 * time.Hour)
	later.ExpiresAt = &l
	assert.ErrorContains(t, p.CheckCreateRequest(later, now), "later than the policy's")

	// Mutating the request must not change the policy.
	req.Scopes[0] = laki.ScopePayoutsWrite
	assert.Equal(t, laki.ScopePaymentsRead, p.Scopes[0])
}

func TestScopeChangeNarrowing(t *testing.T) {
	// The policy was narrowed from payments:read+write to payments:read; the
	// live key still has both: the next rotation drops payments:write.
	p := mustLoadOne(t, validPolicy)
	c := p.ScopeChangeFor([]laki.Scope{laki.ScopePaymentsWrite, laki.ScopePaymentsRead})
	assert.Equal(t, ScopeChange{Removed: []laki.Scope{laki.ScopePaymentsWrite}}, c)
	assert.Equal(t, "scopes -payments:write", c.String())
	assert.True(t, p.ScopeChangeFor([]laki.Scope{laki.ScopePaymentsRead}).IsZero())
	assert.Equal(t, "scopes +payments:read", p.ScopeChangeFor(nil).String())
}

func TestNameEnvironment(t *testing.T) {
	cases := map[string]laki.Environment{
		"prod/checkout/lakiconnect":       laki.Production,
		"lakiconnect-live-refunds":        laki.Production,
		"checkout_sandbox":                laki.Sandbox,
		"team/test/reporting":             laki.Sandbox,
		"Checkout-SBX":                    laki.Sandbox,
		"contest-service":                 "", // "contest" is not "test"
		"delivery-service":                "", // "delivery" is not "live"
		"checkout":                        "",
		"test-against-prod":               "", // both: no verdict
		"production.payments.lakiconnect": laki.Production,
	}
	for name, want := range cases {
		got, ok := NameEnvironment(name)
		assert.Equal(t, want, got, name)
		assert.Equal(t, want != "", ok, name)
	}
}

func TestExitCodeAndDiff(t *testing.T) {
	w := Violation{Reason: KeyTooOld, Severity: events.SeverityWarning, Secret: "a", KeyID: "key_1"}
	c := Violation{Reason: StoredKeyRevoked, Severity: events.SeverityCritical, Secret: "b", KeyID: "key_2"}
	assert.Equal(t, 0, ExitCode(nil, events.SeverityInfo))
	assert.Equal(t, 1, ExitCode([]Violation{w}, events.SeverityWarning))
	assert.Equal(t, 0, ExitCode([]Violation{w}, events.SeverityCritical))
	assert.Equal(t, 1, ExitCode([]Violation{w, c}, events.SeverityCritical))

	w2 := w
	w2.Message = "older now"
	added, resolved := Diff([]Violation{w, c}, []Violation{w2})
	assert.Empty(t, added, "same violation with a new message is not new")
	assert.Equal(t, []Violation{c}, resolved)
	added, resolved = Diff([]Violation{w}, []Violation{w, c})
	assert.Equal(t, []Violation{c}, added)
	assert.Empty(t, resolved)
}

func TestReasonsDocumented(t *testing.T) {
	seen := map[Reason]bool{}
	for _, r := range Reasons() {
		assert.False(t, seen[r.Reason], "reason %s listed twice", r.Reason)
		seen[r.Reason] = true
		assert.NotZero(t, SeverityRank(r.Severity), r.Reason)
		assert.NotEmpty(t, r.Description, r.Reason)
	}
	assert.Len(t, seen, len(Checks()), "one reason per check")
}
