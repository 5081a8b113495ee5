// Package policies holds the security team's rules for LakiConnect
// credentials: per purpose (checkout service, refunds worker, webhooks, the
// rotator's own management key) the minimum RBAC scopes, the environments,
// the maximum age, the rotation schedule and window, the grace an old
// credential keeps per trigger, whether new keys get a hard expires_at, and
// the 401/403 alert thresholds.
//
// Policies are loaded strictly from YAML files (LoadDir, Load), and
// credentials are judged by pure checks over their Facts and a time
// (Evaluate), each failing check naming a documented Reason.
package policies

import (
	"fmt"
	"slices"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Policy is one named rule set, for one purpose.
type Policy struct {
	Name        string
	Description string
	// Kind is what the policy governs: api_key, webhook_secret or management_key.
	Kind inventory.Kind
	// Scopes is exactly what keys under this policy hold: the minimum their
	// consumer needs. Sorted in the API's enum order. Empty for webhook secrets.
	Scopes []laki.Scope
	// Environments the policy may be used in.
	Environments []laki.Environment
	// SandboxOnly forbids production in Environments (also implied by a
	// sandbox-looking policy name, see NameEnvironment).
	SandboxOnly bool
	// MaxAge is how old a credential may get before it is a violation.
	MaxAge time.Duration
	// ScheduleSpec is the cron spec of scheduled rotations (standard five
	// fields or a descriptor, optionally prefixed CRON_TZ=Zone), "" for none.
	ScheduleSpec string
	// Schedule is ScheduleSpec parsed; nil when there is no schedule.
	Schedule cron.Schedule
	// Location is the time zone of Window (and of Schedule unless its spec
	// names its own). Nil means UTC.
	Location *time.Location
	// Window restricts when scheduled rotations may start. The zero Window
	// allows any time.
	Window Window
	Grace  Grace
	// RevokeFirstOnCompromise revokes the exposed key before its replacement
	// exists: consumers break for a moment, the attacker at once.
	RevokeFirstOnCompromise bool
	HardExpiry              HardExpiry
	Alerts                  Alerts
	// Severity overrides the default severity of a reason for this policy.
	Severity map[Reason]events.Severity

	// File and Line say where the policy was defined (for messages).
	File string
	Line int
}

// Window is a recurring time-of-day window on some weekdays, in the policy's
// time zone. End before Start means the window runs past midnight; Days then
// names the day the window starts on.
type Window struct {
	Days  []time.Weekday
	Start time.Duration // offset from local midnight
	End   time.Duration
}

// IsZero reports whether no window is set (any time allowed).
func (w Window) IsZero() bool { return len(w.Days) == 0 }

// Grace is how long an old credential keeps working after its replacement is
// current, per trigger. LakiConnect allows at most 7 days.
type Grace struct {
	Scheduled time.Duration
	Personnel time.Duration
}

// HardExpiry sets expires_at on new keys so that a key ends even if the
// rotator never runs again. Zero ExpiresAfter sets none.
type HardExpiry struct {
	ExpiresAfter time.Duration
}

// Alerts are the 401/403 thresholds of the auth-failure monitor. A threshold
// is the count of refused requests within Window at which one alert is
// raised; zero turns that alert off.
type Alerts struct {
	// Unauthorized401 is the threshold for 401s (a retired key still in
	// use, a leaked key being tried).
	Unauthorized401 int
	// Forbidden403 is the threshold for 403s on a current key (scopes set
	// narrower than the consumer needs).
	Forbidden403 int
	Window       time.Duration
	// RotateOnUnauthorizedSpike asks for a compromise rotation when a
	// current key reaches the 401 threshold.
	RotateOnUnauthorizedSpike bool
	// LastUsedWarning warns when an old key is still used within this long
	// of the end of its grace.
	LastUsedWarning time.Duration
	// LastUsedWarningFraction warns when an old key is still used once this
	// fraction of its grace has passed (0.8: in the last fifth); 0 is off.
	// Either this or LastUsedWarning is enough to warn.
	LastUsedWarningFraction float64
}

// Defaults applied when a policy file leaves a field out.
const (
	DefaultGraceScheduled = 24 * time.Hour
	DefaultGracePersonnel = time.Hour
	DefaultAlertWindow    = 15 * time.Minute
)

// GraceFor returns the grace the policy gives the old credential for a
// rotation with this cause: the one place that decides it. Manual rotations
// get the scheduled grace; a compromise gets none (the loader refuses any
// other grace.compromise).
func (p Policy) GraceFor(cause events.Cause) time.Duration {
	switch cause {
	case events.CauseCompromise:
		return 0
	case events.CausePersonnel:
		return p.Grace.Personnel
	default:
		return p.Grace.Scheduled
	}
}

func (p Policy) location() *time.Location {
	if p.Location == nil {
		return time.UTC
	}
	return p.Location
}

// AllowsEnvironment reports whether env is among the policy's environments.
func (p Policy) AllowsEnvironment(env laki.Environment) bool {
	return slices.Contains(p.Environments, env)
}

// SeverityOf returns the severity of reason under this policy: its override,
// else the reason's default.
func (p Policy) SeverityOf(r Reason) events.Severity {
	if s, ok := p.Severity[r]; ok {
		return s
	}
	return r.DefaultSeverity()
}

// InWindow reports whether t falls in the policy's rotation window. A policy
// without a window allows any time.
func (p Policy) InWindow(t time.Time) bool {
	w := p.Window
	if w.IsZero() {
		return true
	}
	lt := t.In(p.location())
	tod := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	today := slices.Contains(w.Days, lt.Weekday())
	if w.Start < w.End {
		return today && tod >= w.Start && tod < w.End
	}
	// Past midnight: the evening part belongs to today, the morning part
	// to the window that started yesterday.
	yesterday := slices.Contains(w.Days, (lt.Weekday()+6)%7)
	return (today && tod >= w.Start) || (yesterday && tod < w.End)
}

// NextWindowStart returns t if t is in the window, else the next time the
// window opens after t.
func (p Policy) NextWindowStart(t time.Time) time.Time {
	if p.InWindow(t) {
		return t
	}
	loc := p.location()
	lt := t.In(loc)
	h, m := int(p.Window.Start/time.Hour), int(p.Window.Start%time.Hour/time.Minute)
	for i := 0; i <= 8; i++ {
		c := time.Date(lt.Year(), lt.Month(), lt.Day()+i, h, m, 0, 0, loc)
		if c.After(t) && slices.Contains(p.Window.Days, c.Weekday()) {
			return c
		}
	}
	return t // unreachable for a valid window
}

// NextRun returns the first scheduled rotation time after t, or the zero time
// when the policy has no schedule.
func (p Policy) NextRun(t time.Time) time.Time {
	if p.Schedule == nil {
		return time.Time{}
	}
	return p.Schedule.Next(t)
}

// NewKeyExpiry returns the expires_at a key created at now must carry under
// this policy, or nil when the policy sets none.
func (p Policy) NewKeyExpiry(now time.Time) *time.Time {
	if p.HardExpiry.ExpiresAfter <= 0 {
		return nil
	}
	t := now.Add(p.HardExpiry.ExpiresAfter).UTC()
	return &t
}

// CreateRequest builds the request for a new key under this policy: exactly
// the policy's scopes, and its hard expiry. The engine sends nothing wider.
func (p Policy) CreateRequest(name string, now time.Time, metadata map[string]string) laki.CreateAPIKeyRequest {
	return laki.CreateAPIKeyRequest{
		Name:      name,
		Scopes:    slices.Clone(p.Scopes),
		ExpiresAt: p.NewKeyExpiry(now),
		Metadata:  metadata,
	}
}

// CheckCreateRequest refuses a create request that asks for a scope the
// policy does not allow, or that lacks the expiry the policy demands. The
// engine calls it right before asking LakiConnect.
func (p Policy) CheckCreateRequest(req laki.CreateAPIKeyRequest, now time.Time) error {
	if extra := ScopeDiff(req.Scopes, p.Scopes); len(extra) > 0 {
		return fmt.Errorf("policy %q: create request for %q asks for scopes %v beyond the policy", p.Name, req.Name, extra)
	}
	if len(req.Scopes) == 0 {
		return fmt.Errorf("policy %q: create request for %q has no scopes", p.Name, req.Name)
	}
	if want := p.NewKeyExpiry(now); want != nil {
		if req.ExpiresAt == nil {
			return fmt.Errorf("policy %q: create request for %q has no expires_at; the policy demands one within %s", p.Name, req.Name, strictyaml.FormatDuration(p.HardExpiry.ExpiresAfter))
		}
		if req.ExpiresAt.After(*want) {
			return fmt.Errorf("policy %q: create request for %q expires at %s, later than the policy's %s", p.Name, req.Name, req.ExpiresAt.UTC().Format(time.RFC3339), want.Format(time.RFC3339))
		}
	}
	return nil
}

// ScopeChange is what a rotation under the policy changes in a key's scopes.
// The engine applies it at the next rotation; `plan` shows it.
type ScopeChange struct {
	Added   []laki.Scope // the policy grants, the key lacks
	Removed []laki.Scope // the key holds, the policy no longer grants
}

// IsZero reports whether the scopes stay as they are.
func (c ScopeChange) IsZero() bool { return len(c.Added) == 0 && len(c.Removed) == 0 }

func (c ScopeChange) String() string {
	if c.IsZero() {
		return "scopes unchanged"
	}
	s := ""
	for _, a := range c.Added {
		s += " +" + string(a)
	}
	for _, r := range c.Removed {
		s += " -" + string(r)
	}
	return "scopes" + s
}

// ScopeChangeFor returns how the next key under p differs from a key that
// holds current.
func (p Policy) ScopeChangeFor(current []laki.Scope) ScopeChange {
	return ScopeChange{Added: ScopeDiff(p.Scopes, current), Removed: ScopeDiff(current, p.Scopes)}
}

// ScopeDiff returns the scopes of a that are not in b, in the API's order,
// without duplicates.
func ScopeDiff(a, b []laki.Scope) []laki.Scope {
	var out []laki.Scope
	for _, s := range sortScopes(a) {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

// sortScopes returns the scopes in the API's enum order, unknown ones last
// in their given order, duplicates dropped.
func sortScopes(in []laki.Scope) []laki.Scope {
	var out []laki.Scope
	for _, s := range laki.AllScopes {
		if slices.Contains(in, s) {
			out = append(out, s)
		}
	}
	for _, s := range in {
		if !s.Valid() && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
