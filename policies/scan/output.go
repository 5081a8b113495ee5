package scan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/policies"
)

// WriteTable prints violations as an aligned table, one per line, for people.
func WriteTable(w io.Writer, vs []policies.Violation) error {
	if len(vs) == 0 {
		_, err := fmt.Fprintln(w, "no policy violations")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tREASON\tSECRET\tKEY\tENVIRONMENT\tMERCHANT\tMESSAGE")
	for _, v := range vs {
		id := v.KeyID
		if id == "" {
			id = v.EndpointID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Severity, v.Reason, dash(v.Secret), dash(id),
			dash(string(v.Environment)), dash(v.MasterMerchantID), oneLine(v.Message))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, summary(vs))
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.NewReplacer("\n", " ", "\t", " ").Replace(s) }

func summary(vs []policies.Violation) string {
	c := Counts(vs)
	return fmt.Sprintf("%d violation(s): %d critical, %d warning, %d info", len(vs),
		c[events.SeverityCritical], c[events.SeverityWarning], c[events.SeverityInfo])
}

// Counts returns the number of violations per severity.
func Counts(vs []policies.Violation) map[events.Severity]int {
	c := map[events.Severity]int{}
	for _, v := range vs {
		c[v.Severity]++
	}
	return c
}

// Report is the JSON form of a scan (`policy check -o json`).
type Report struct {
	CheckedAt  time.Time               `json:"checked_at"`
	Violations []policies.Violation    `json:"violations"`
	Counts     map[events.Severity]int `json:"counts"`
	ByReason   map[policies.Reason]int `json:"by_reason"`
}

// WriteJSON prints the violations as one indented JSON Report.
func WriteJSON(w io.Writer, vs []policies.Violation, checkedAt time.Time) error {
	r := Report{CheckedAt: checkedAt.UTC(), Violations: vs, Counts: Counts(vs), ByReason: ByReason(vs)}
	if r.Violations == nil {
		r.Violations = []policies.Violation{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ByReason returns the number of violations per reason.
func ByReason(vs []policies.Violation) map[policies.Reason]int {
	c := map[policies.Reason]int{}
	for _, v := range vs {
		c[v.Reason]++
	}
	return c
}

// ExitCode is `policy check`'s exit status: 1 when a violation of severity
// min or higher exists, else 0.
func ExitCode(vs []policies.Violation, min events.Severity) int { return policies.ExitCode(vs, min) }

// Event turns a violation into the event the daemon raises for it.
func Event(v policies.Violation, at time.Time) events.Event {
	return events.Event{
		Time: at, Step: events.StepViolation, Outcome: events.OutcomeWarning, Severity: v.Severity,
		Secret: v.Secret, Environment: string(v.Environment), MasterMerchantID: v.MasterMerchantID,
		Source: events.SourcePolicyScan, Reason: string(v.Reason), KeyID: v.KeyID, Error: v.Message,
		Details: details(v),
	}
}

func details(v policies.Violation) map[string]string {
	d := map[string]string{"reason": string(v.Reason)}
	if v.Policy != "" {
		d["policy"] = v.Policy
	}
	if v.EndpointID != "" {
		d["endpoint_id"] = v.EndpointID
	}
	return d
}
