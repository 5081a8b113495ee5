package audit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
)

// SecretState is one managed secret as the daemon sees it now; the daemon
// fills it from the store, LakiConnect and the policies. KeyID is an id, not
// a secret, but reports show its last 4 only.
type SecretState struct {
	Name             string        `json:"name"`
	Kind             string        `json:"kind"`
	Environment      string        `json:"environment"`
	MasterMerchantID string        `json:"master_merchant_id"`
	KeyID            string        `json:"key_id"`
	Scopes           []string      `json:"scopes"`
	PolicyScopes     []string      `json:"policy_scopes"`
	PolicyMaxAge     time.Duration `json:"policy_max_age"`
	CreatedAt        time.Time     `json:"created_at"`
	NextDue          time.Time     `json:"next_due"`
}

// ScopeDrift is what the key holds beyond its policy (extra) and what the
// policy grants that the key lacks (missing), each sorted: the one answer
// the report and the dashboard show.
func (s SecretState) ScopeDrift() (extra, missing []string) {
	return diff(s.Scopes, s.PolicyScopes), diff(s.PolicyScopes, s.Scopes)
}

// ReportInput is what a report is built from.
type ReportInput struct {
	From, To  time.Time // the period; zero From means from the start, zero To means Now
	Now       time.Time
	Records   []Record
	Inventory []SecretState // optional: without it the secrets come from the records
}

// Report is the security team's view of a period.
type Report struct {
	From           time.Time   `json:"from"`
	To             time.Time   `json:"to"`
	GeneratedAt    time.Time   `json:"generated_at"`
	Secrets        []SecretRow `json:"secrets"`
	Emergencies    []Emergency `json:"emergencies"`
	OpenViolations []Violation `json:"open_violations"`
	// PoliciesKnown says the report was given the secrets' state with their
	// policies (--config); without it, scopes against policy, age against
	// maximum and next due cannot be filled.
	PoliciesKnown bool `json:"policies_known"`
}

// NoPoliciesReason is what the policy columns say when the report was made
// from the audit log alone.
const NoPoliciesReason = "no policies: run with --config to fill scopes against policy, age against maximum and next due"

// SecretRow is one managed secret in a report.
type SecretRow struct {
	Name             string        `json:"name"`
	Kind             string        `json:"kind,omitempty"`
	Environment      string        `json:"environment,omitempty"`
	MasterMerchantID string        `json:"master_merchant_id,omitempty"`
	Key              string        `json:"key,omitempty"` // "…abcd"
	Scopes           []string      `json:"scopes,omitempty"`
	PolicyScopes     []string      `json:"policy_scopes,omitempty"`
	ExtraScopes      []string      `json:"extra_scopes,omitempty"`   // held but not allowed by policy
	MissingScopes    []string      `json:"missing_scopes,omitempty"` // allowed by policy but not held
	Age              time.Duration `json:"age_ns,omitempty"`
	MaxAge           time.Duration `json:"max_age_ns,omitempty"`
	LastRotation     time.Time     `json:"last_rotation,omitzero"`
	LastCause        events.Cause  `json:"last_cause,omitempty"`
	NextDue          time.Time     `json:"next_due,omitzero"`
}

// Overdue reports whether the key is older than its policy allows.
func (s SecretRow) Overdue() bool { return s.MaxAge > 0 && s.Age > s.MaxAge }

// ScopesOK reports whether the key holds exactly the policy's scopes.
func (s SecretRow) ScopesOK() bool { return len(s.ExtraScopes) == 0 && len(s.MissingScopes) == 0 }

// Emergency is one emergency trigger and everything that followed it.
type Emergency struct {
	TriggerID string       `json:"trigger_id"`
	Cause     events.Cause `json:"cause"`
	Actor     string       `json:"actor,omitempty"`
	// OnBehalfOf is the person the trigger named, beside the actor (who
	// authenticated).
	OnBehalfOf string          `json:"on_behalf_of,omitempty"`
	Source     events.Source   `json:"source,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Start      time.Time       `json:"start"`
	End        time.Time       `json:"end"`
	Timeline   []TimelineEntry `json:"timeline"`
}

// TimelineEntry is one step of an emergency.
type TimelineEntry struct {
	Time    time.Time      `json:"time"`
	Step    events.Step    `json:"step"`
	Outcome events.Outcome `json:"outcome"`
	Secret  string         `json:"secret,omitempty"`
	Key     string         `json:"key,omitempty"`
	Error   string         `json:"error,omitempty"`
}

// Violation is a policy violation not yet resolved.
type Violation struct {
	Secret  string            `json:"secret"`
	Reason  string            `json:"reason"`
	Since   time.Time         `json:"since"`
	Details map[string]string `json:"details,omitempty"`
}

// ReadRecords parses audit lines. It does not check the chain (Verify does);
// it names the line that is not a record.
func ReadRecords(r io.Reader) ([]Record, error) {
	var out []Record
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return nil, fmt.Errorf("audit: line %d: not a record: %w", line, err)
		}
		out = append(out, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit: read records: %w", err)
	}
	return out, nil
}

// BuildReport assembles the report for in's period. The last rotation and
// open violations look at every record up to the period's end; emergencies
// are those that started within it. A violation is open until a later
// violation record for the same secret and reason succeeds, or the secret
// is rotated successfully after it.
func BuildReport(in ReportInput) Report {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	if in.To.IsZero() {
		in.To = in.Now
	}
	rep := Report{From: in.From, To: in.To, GeneratedAt: in.Now, PoliciesKnown: len(in.Inventory) > 0}
	recs := make([]Record, 0, len(in.Records))
	for _, r := range in.Records {
		if !r.Event.Time.IsZero() && r.Event.Time.After(in.To) {
			continue
		}
		recs = append(recs, r)
	}
	when := func(r Record) time.Time {
		if !r.Event.Time.IsZero() {
			return r.Event.Time
		}
		return r.Time
	}
	sort.SliceStable(recs, func(i, j int) bool { return when(recs[i]).Before(when(recs[j])) })

	lastRot := map[string]Record{}
	type vkey struct{ secret, reason string }
	open := map[vkey]Violation{}
	emerg := map[string]*Emergency{}
	var emergOrder []string
	for _, r := range recs {
		e := r.Event
		t := when(r)
		switch {
		case e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded && e.Secret != "":
			lastRot[e.Secret] = r
			for k := range open {
				if k.secret == e.Secret && open[k].Since.Before(t) {
					delete(open, k)
				}
			}
		case e.Step == events.StepViolation:
			k := vkey{e.Secret, violationReason(e)}
			if e.Outcome == events.OutcomeSucceeded {
				delete(open, k)
			} else if _, ok := open[k]; !ok {
				open[k] = Violation{Secret: e.Secret, Reason: k.reason, Since: t, Details: e.Details}
			}
		}
		if e.TriggerID != "" && e.Cause.Emergency() {
			em, ok := emerg[e.TriggerID]
			if !ok {
				if t.Before(in.From) {
					continue
				}
				em = &Emergency{TriggerID: e.TriggerID, Cause: e.Cause, Start: t}
				emerg[e.TriggerID] = em
				emergOrder = append(emergOrder, e.TriggerID)
			}
			if em.Actor == "" {
				em.Actor, em.OnBehalfOf, em.Source = e.Actor, e.OnBehalfOf, e.Source
			}
			if em.Reason == "" {
				em.Reason = e.Reason
			}
			em.End = t
			em.Timeline = append(em.Timeline, TimelineEntry{Time: t, Step: e.Step, Outcome: e.Outcome, Secret: e.Secret, Key: laki.ShortID(e.KeyID), Error: e.Error})
		}
	}
	for _, id := range emergOrder {
		rep.Emergencies = append(rep.Emergencies, *emerg[id])
	}
	for _, v := range open {
		rep.OpenViolations = append(rep.OpenViolations, v)
	}
	sort.Slice(rep.OpenViolations, func(i, j int) bool {
		a, b := rep.OpenViolations[i], rep.OpenViolations[j]
		if a.Secret != b.Secret {
			return a.Secret < b.Secret
		}
		return a.Reason < b.Reason
	})

	inv := in.Inventory
	if len(inv) == 0 { // no snapshot: list what the records know
		seen := map[string]bool{}
		for _, r := range recs {
			// A refused request names what someone asked for, not a managed secret.
			if e := r.Event; e.Secret != "" && e.Outcome != events.OutcomeRefused && !seen[e.Secret] {
				seen[e.Secret] = true
				inv = append(inv, SecretState{Name: e.Secret, Kind: e.Kind, Environment: e.Environment, MasterMerchantID: e.MasterMerchantID})
			}
		}
		for i := range inv {
			if r, ok := lastRot[inv[i].Name]; ok {
				inv[i].KeyID, inv[i].CreatedAt = r.Event.KeyID, when(r)
			}
		}
	}
	for _, s := range inv {
		row := SecretRow{
			Name: s.Name, Kind: s.Kind, Environment: s.Environment, MasterMerchantID: s.MasterMerchantID, Key: laki.ShortID(s.KeyID),
			Scopes: sorted(s.Scopes), PolicyScopes: sorted(s.PolicyScopes), MaxAge: s.PolicyMaxAge, NextDue: s.NextDue,
		}
		if s.PolicyScopes != nil {
			row.ExtraScopes, row.MissingScopes = s.ScopeDrift()
		}
		if !s.CreatedAt.IsZero() {
			row.Age = in.Now.Sub(s.CreatedAt)
		}
		if r, ok := lastRot[s.Name]; ok {
			row.LastRotation, row.LastCause = when(r), r.Event.Cause
		}
		rep.Secrets = append(rep.Secrets, row)
	}
	sort.Slice(rep.Secrets, func(i, j int) bool { return rep.Secrets[i].Name < rep.Secrets[j].Name })
	return rep
}

func violationReason(e events.Event) string {
	if r := e.Details["reason"]; r != "" {
		return r
	}
	return e.Reason
}

func sorted(s []string) []string {
	if s == nil {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// diff is what a holds that b does not.
func diff(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// Formats Write understands.
const (
	FormatText     = "text"
	FormatMarkdown = "markdown"
	FormatJSON     = "json"
	FormatCSV      = "csv"
	FormatHTML     = "html"
)

// Write renders the report in format (text, markdown, json, csv, html).
func (r Report) Write(w io.Writer, format string) error {
	switch strings.ToLower(format) {
	case FormatText, "":
		return r.WriteText(w)
	case FormatMarkdown, "md":
		return r.WriteMarkdown(w)
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatCSV:
		return r.WriteCSV(w)
	case FormatHTML:
		return r.WriteHTML(w)
	default:
		return fmt.Errorf("audit report: unknown format %q (want text, markdown, json, csv or html)", format)
	}
}
