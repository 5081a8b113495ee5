package dashboard

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
)

// filter is what the query string selects; the same keys make deep links.
type filter struct {
	Environment, Merchant, Owner, Policy string
	Page, Size                           int
}

const (
	defaultPageSize = 50
	maxPageSize     = 500
)

func parseFilter(q url.Values) filter {
	f := filter{Environment: q.Get("env"), Merchant: q.Get("merchant"), Owner: q.Get("owner"), Policy: q.Get("policy"), Page: 1, Size: defaultPageSize}
	if n, err := strconv.Atoi(q.Get("page")); err == nil && n > 0 {
		f.Page = n
	}
	if n, err := strconv.Atoi(q.Get("size")); err == nil && n > 0 {
		f.Size = min(n, maxPageSize)
	}
	return f
}

// query is the filter as a query string, with page set to page.
func (f filter) query(page int) string {
	q := url.Values{}
	for k, v := range map[string]string{"env": f.Environment, "merchant": f.Merchant, "owner": f.Owner, "policy": f.Policy} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if page > 1 {
		q.Set("page", strconv.Itoa(page))
	}
	if f.Size != defaultPageSize {
		q.Set("size", strconv.Itoa(f.Size))
	}
	return q.Encode()
}

func (f filter) matchSecret(s httpapi.SecretStatus) bool {
	return (f.Environment == "" || s.Environment == f.Environment) &&
		(f.Merchant == "" || s.MasterMerchantID == f.Merchant) &&
		(f.Policy == "" || s.Policy == f.Policy) &&
		(f.Owner == "" || slices.Contains(s.Owners, f.Owner))
}

// InventoryRow is one managed secret as the dashboard shows it: names, ids'
// last 4, ages and states, never a value.
type InventoryRow struct {
	Name             string     `json:"name"`
	Environment      string     `json:"environment"`
	MasterMerchantID string     `json:"master_merchant_id"`
	Kind             string     `json:"kind"`
	Owners           []string   `json:"owners"`
	Policy           string     `json:"policy"`
	Key              string     `json:"key_last4,omitempty"`
	AgeSeconds       int64      `json:"age_seconds"`
	MaxAgeSeconds    int64      `json:"policy_max_age_seconds,omitempty"`
	ScopeProblems    []string   `json:"scope_problems,omitempty"`
	NextDue          *time.Time `json:"next_due,omitempty"`
	InFlight         bool       `json:"in_flight"`
	Failures         int        `json:"failures,omitempty"`
	LastFailure      string     `json:"last_failure,omitempty"`
	InGrace          bool       `json:"old_credential_in_grace"`
	OldLastUsedAt    string     `json:"old_credential_last_used_at,omitempty"`
}

// Overdue says the key is older than its policy allows.
func (r InventoryRow) Overdue() bool { return r.MaxAgeSeconds > 0 && r.AgeSeconds > r.MaxAgeSeconds }

// AgePercent is the age as a share of the maximum, capped at 100 for the bar.
func (r InventoryRow) AgePercent() int {
	if r.MaxAgeSeconds <= 0 {
		return 0
	}
	return int(min(100, r.AgeSeconds*100/r.MaxAgeSeconds))
}

// facts is what the audit trail adds to the inventory, per secret.
type facts struct {
	key        map[string]string   // last rotated key id, last 4
	scopes     map[string][]string // open scope violations
	oldUsedAt  map[string]string   // old credential's last use, from "still in use" alerts
	report     audit.Report
	authSpikes []AuthSpike
	violations []ViolationView
	records    []audit.Record
}

// ViolationView is an open violation with the scan's message (which scopes, how old).
type ViolationView struct {
	audit.Violation
	Message string `json:"message,omitempty"`
}

// scopeReasons are the policy reasons about scopes, as the inventory names them.
var scopeReasons = map[string]string{
	"over_privileged":            "excess scopes",
	"under_privileged":           "missing scopes",
	"management_key_over_scoped": "excess scopes (management key)",
}

// AuthSpike is one 401/403 alert or a burst of refused requests to the daemon.
type AuthSpike struct {
	Time    time.Time `json:"time"`
	Secret  string    `json:"secret,omitempty"`
	Reason  string    `json:"reason"`
	Details string    `json:"details,omitempty"`
}

func buildFacts(recs []audit.Record, now time.Time) facts {
	f := facts{key: map[string]string{}, scopes: map[string][]string{}, oldUsedAt: map[string]string{}, records: recs}
	f.report = audit.BuildReport(audit.ReportInput{Records: recs, Now: now})
	for _, row := range f.report.Secrets {
		if row.Key != "" {
			f.key[row.Name] = row.Key
		}
	}
	message := map[[2]string]string{} // latest message of a violation, by secret and reason
	for _, r := range recs {
		if e := r.Event; e.Step == events.StepViolation && e.Error != "" {
			message[[2]string{e.Secret, firstNonEmpty(e.Details["reason"], e.Reason)}] = e.Error
		}
	}
	for _, v := range f.report.OpenViolations {
		msg := message[[2]string{v.Secret, v.Reason}]
		f.violations = append(f.violations, ViolationView{Violation: v, Message: msg})
		if label, ok := scopeReasons[v.Reason]; ok || strings.Contains(v.Reason, "scope") {
			f.scopes[v.Secret] = append(f.scopes[v.Secret], firstNonEmpty(label, v.Reason))
		}
	}
	for _, r := range recs {
		e := r.Event
		if e.Step != events.StepAlert {
			continue
		}
		if t := e.Details["last_used_at"]; t != "" && e.Secret != "" {
			f.oldUsedAt[e.Secret] = t
			continue
		}
		if now.Sub(e.Time) <= 30*24*time.Hour {
			f.authSpikes = append(f.authSpikes, AuthSpike{Time: e.Time, Secret: e.Secret, Reason: firstNonEmpty(e.Reason, e.Details["reason"]), Details: detailString(e.Details)})
		}
	}
	sort.Slice(f.authSpikes, func(i, j int) bool { return f.authSpikes[i].Time.After(f.authSpikes[j].Time) })
	return f
}

func detailString(d map[string]string) string {
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+d[k])
	}
	return strings.Join(parts, " ")
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func inventoryRow(s httpapi.SecretStatus, st audit.SecretState, f facts) InventoryRow {
	key := f.key[s.Name]
	if st.KeyID != "" {
		key = last4(st.KeyID)
	}
	problems := f.scopes[s.Name]
	if st.PolicyScopes != nil && st.Scopes != nil { // what the key holds against its policy, now
		problems = nil
		extra, missing := st.ScopeDrift()
		if len(extra) > 0 {
			problems = append(problems, "excess: "+strings.Join(extra, ", "))
		}
		if len(missing) > 0 {
			problems = append(problems, "missing: "+strings.Join(missing, ", "))
		}
	}
	return InventoryRow{
		Name: s.Name, Environment: s.Environment, MasterMerchantID: s.MasterMerchantID, Kind: s.Kind, Owners: s.Owners, Policy: s.Policy,
		Key: key, AgeSeconds: max(0, s.AgeSeconds), MaxAgeSeconds: int64(st.PolicyMaxAge / time.Second),
		ScopeProblems: problems, NextDue: s.NextRotation, InFlight: s.PendingVersionID != "",
		Failures: s.Failures, LastFailure: s.LastFailure, InGrace: s.PreviousVersionID != "",
		OldLastUsedAt: ifThen(s.PreviousVersionID != "", f.oldUsedAt[s.Name]),
	}
}

func ifThen(c bool, s string) string {
	if c {
		return s
	}
	return ""
}

// page is one page of rows out of total.
type page struct {
	Number, Pages, Total, First, Last int
}

func paginate(total int, f filter) (page, int, int) {
	pages := max(1, (total+f.Size-1)/f.Size)
	n := min(f.Page, pages)
	lo := (n - 1) * f.Size
	hi := min(total, lo+f.Size)
	return page{Number: n, Pages: pages, Total: total, First: lo + 1, Last: hi}, lo, hi
}

// DayCount is one day of the timeline: rotations by cause, emergencies started.
type DayCount struct {
	Day         string         `json:"day"`
	ByCause     map[string]int `json:"by_cause"`
	Total       int            `json:"total"`
	Emergencies []string       `json:"emergencies,omitempty"`
}

// timelineCauses are the causes the timeline stacks, in order.
var timelineCauses = []events.Cause{events.CauseScheduled, events.CauseManual, events.CausePersonnel, events.CauseCompromise}

// timeline counts successful rotations per day by cause over the 30 days up to now.
func timeline(recs []audit.Record, emerg []audit.Emergency, now time.Time) []DayCount {
	const days = 30
	start := now.UTC().Truncate(24*time.Hour).AddDate(0, 0, -(days - 1))
	out := make([]DayCount, days)
	for i := range out {
		out[i] = DayCount{Day: start.AddDate(0, 0, i).Format(time.DateOnly), ByCause: map[string]int{}}
	}
	index := func(t time.Time) int {
		if t.Before(start) {
			return -1
		}
		i := int(t.UTC().Sub(start) / (24 * time.Hour))
		if i >= days {
			return -1
		}
		return i
	}
	for _, r := range recs {
		e := r.Event
		if e.Step != events.StepRotation || e.Outcome != events.OutcomeSucceeded {
			continue
		}
		t := e.Time
		if t.IsZero() {
			t = r.Time
		}
		if i := index(t); i >= 0 {
			out[i].ByCause[string(e.Cause)]++
			out[i].Total++
		}
	}
	for _, em := range emerg {
		if i := index(em.Start); i >= 0 {
			out[i].Emergencies = append(out[i].Emergencies, fmt.Sprintf("%s (%s)", em.TriggerID, em.Cause))
		}
	}
	return out
}

// exposureToRevocation is the time from an emergency's start to the end of
// the exposed credential: a revoke-first retire that succeeded, or the
// end_old retire's ends_at (at once for a zero grace). ok is false while
// no end is known or the end is still ahead of now.
func exposureToRevocation(em audit.Emergency, recs []audit.Record, now time.Time) (time.Duration, bool) {
	for _, r := range recs {
		e := r.Event
		if e.TriggerID != em.TriggerID || e.Step != events.StepRetire {
			continue
		}
		switch e.Outcome {
		case events.OutcomeSucceeded:
			return e.Time.Sub(em.Start), true
		case events.OutcomeStarted:
			if end, err := time.Parse(time.RFC3339, e.Details["ends_at"]); err == nil && !end.After(now) {
				return max(0, end.Sub(em.Start)), true
			}
		}
	}
	return 0, false
}

// last4 shows an id by its last 4 characters, as the audit report does.
func last4(id string) string {
	r := []rune(id)
	if len(r) <= 4 {
		return "…" + id
	}
	return "…" + string(r[len(r)-4:])
}
