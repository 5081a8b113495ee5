package audit

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func day(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// days shows a duration in whole days ("12d"), or "-".
func days(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func scopesCell(s SecretRow) string {
	if s.PolicyScopes == nil {
		return strings.Join(s.Scopes, " ")
	}
	if s.ScopesOK() {
		return "as policy"
	}
	var parts []string
	if len(s.ExtraScopes) > 0 {
		parts = append(parts, "extra: "+strings.Join(s.ExtraScopes, " "))
	}
	if len(s.MissingScopes) > 0 {
		parts = append(parts, "missing: "+strings.Join(s.MissingScopes, " "))
	}
	return strings.Join(parts, "; ")
}

func ageCell(s SecretRow) string {
	c := days(s.Age) + " / " + days(s.MaxAge)
	if s.Overdue() {
		c += " OVERDUE"
	}
	return c
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (r Report) period() string {
	from := "start"
	if !r.From.IsZero() {
		from = stamp(r.From)
	}
	return from + " to " + stamp(r.To)
}

// WriteText renders the report as aligned plain text.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Audit report %s (generated %s)\n\n", r.period(), stamp(r.GeneratedAt))
	fmt.Fprintf(tw, "MANAGED SECRETS (%d)\n", len(r.Secrets))
	if !r.PoliciesKnown {
		fmt.Fprintf(tw, "(%s)\n", NoPoliciesReason)
	}
	fmt.Fprintln(tw, "SECRET\tENV\tMERCHANT\tKEY\tSCOPES\tAGE/MAX\tLAST ROTATION\tCAUSE\tNEXT DUE")
	for _, s := range r.Secrets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, orDash(s.Environment), orDash(s.MasterMerchantID), orDash(s.Key),
			orDash(scopesCell(s)), ageCell(s), day(s.LastRotation), orDash(string(s.LastCause)), day(s.NextDue))
	}
	fmt.Fprintf(tw, "\nEMERGENCIES (%d)\n", len(r.Emergencies))
	for _, e := range r.Emergencies {
		fmt.Fprintf(tw, "%s  %s by %s%s via %s: %s (%s to %s)\n", e.TriggerID, e.Cause, orDash(e.Actor), forWhom(e.OnBehalfOf), orDash(string(e.Source)), orDash(e.Reason), stamp(e.Start), stamp(e.End))
		for _, t := range e.Timeline {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", stamp(t.Time), t.Step, t.Outcome, orDash(t.Secret), orDash(t.Key), t.Error)
		}
	}
	fmt.Fprintf(tw, "\nOPEN VIOLATIONS (%d)\n", len(r.OpenViolations))
	for _, v := range r.OpenViolations {
		fmt.Fprintf(tw, "%s\t%s\tsince %s\n", v.Secret, v.Reason, stamp(v.Since))
	}
	return tw.Flush()
}

// mdCell escapes the characters that would break a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace(orDash(s))
}

// WriteMarkdown renders the report as Markdown tables.
func (r Report) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Audit report\n\nPeriod: %s. Generated %s.\n\n", r.period(), stamp(r.GeneratedAt))
	fmt.Fprintf(&b, "## Managed secrets (%d)\n\n| Secret | Env | Merchant | Key | Scopes vs policy | Age / max | Last rotation | Cause | Next due |\n|---|---|---|---|---|---|---|---|---|\n", len(r.Secrets))
	for _, s := range r.Secrets {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mdCell(s.Name), mdCell(s.Environment), mdCell(s.MasterMerchantID), mdCell(s.Key),
			mdCell(scopesCell(s)), mdCell(ageCell(s)), day(s.LastRotation), mdCell(string(s.LastCause)), day(s.NextDue))
	}
	fmt.Fprintf(&b, "\n## Emergencies (%d)\n", len(r.Emergencies))
	for _, e := range r.Emergencies {
		fmt.Fprintf(&b, "\n### %s: %s by %s via %s\n\nReason: %s. From %s to %s.\n\n| Time | Step | Outcome | Secret | Key | Error |\n|---|---|---|---|---|---|\n",
			mdCell(e.TriggerID), e.Cause, mdCell(e.Actor), mdCell(string(e.Source)), mdCell(e.Reason), stamp(e.Start), stamp(e.End))
		for _, t := range e.Timeline {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", stamp(t.Time), t.Step, t.Outcome, mdCell(t.Secret), mdCell(t.Key), mdCell(t.Error))
		}
	}
	fmt.Fprintf(&b, "\n## Open violations (%d)\n\n", len(r.OpenViolations))
	if len(r.OpenViolations) > 0 {
		b.WriteString("| Secret | Reason | Since |\n|---|---|---|\n")
		for _, v := range r.OpenViolations {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", mdCell(v.Secret), mdCell(v.Reason), stamp(v.Since))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteCSV renders every row of the report; the first column says which
// section the row belongs to (secret, emergency, violation).
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"section", "secret", "environment", "merchant", "key", "scopes", "policy_scopes", "extra_scopes", "missing_scopes",
		"age_days", "max_age_days", "overdue", "last_rotation", "last_cause", "next_due", "trigger_id", "time", "step", "outcome", "actor", "reason", "error"}}
	d := func(x time.Duration) string {
		if x <= 0 {
			return ""
		}
		return strconv.Itoa(int(x.Hours() / 24))
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, s := range r.Secrets {
		rows = append(rows, []string{"secret", s.Name, s.Environment, s.MasterMerchantID, s.Key, strings.Join(s.Scopes, " "), strings.Join(s.PolicyScopes, " "),
			strings.Join(s.ExtraScopes, " "), strings.Join(s.MissingScopes, " "), d(s.Age), d(s.MaxAge), strconv.FormatBool(s.Overdue()),
			ts(s.LastRotation), string(s.LastCause), ts(s.NextDue), "", "", "", "", "", "", ""})
	}
	for _, e := range r.Emergencies {
		for _, t := range e.Timeline {
			rows = append(rows, []string{"emergency", t.Secret, "", "", t.Key, "", "", "", "", "", "", "", "", string(e.Cause), "", e.TriggerID,
				ts(t.Time), string(t.Step), string(t.Outcome), e.Actor, e.Reason, t.Error})
		}
	}
	for _, v := range r.OpenViolations {
		rows = append(rows, []string{"violation", v.Secret, "", "", "", "", "", "", "", "", "", "", "", "", "", "", ts(v.Since), "violation", "open", "", v.Reason, ""})
	}
	for _, row := range rows {
		for i, c := range row { // keep spreadsheets from running cells as formulas
			if c != "" && strings.ContainsRune("=+-@", rune(c[0])) {
				row[i] = "'" + c
			}
		}
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("audit report: csv: %w", err)
	}
	return nil
}

// chartBar is one secret in the HTML chart.
type chartBar struct {
	Name             string
	Y, Width, LimitX float64
	LabelX           float64
	HasLimit         bool
	Color, Label     string
}

type htmlData struct {
	Report
	NoPolicies  string
	Period      string
	Bars        []chartBar
	ChartHeight float64
	AxisTicks   []axisTick
}

type axisTick struct {
	X     float64
	Label string
}

const (
	chartLeft  = 220.0
	chartWidth = 520.0
	barHeight  = 18.0
	barGap     = 8.0
)

// WriteHTML renders a self-contained page (inline CSS and SVG, no script)
// with a chart of each key's age against its policy maximum.
func (r Report) WriteHTML(w io.Writer) error {
	data := htmlData{Report: r, Period: r.period(), NoPolicies: NoPoliciesReason}
	maxDays := 1.0
	for _, s := range r.Secrets {
		maxDays = max(maxDays, s.Age.Hours()/24, s.MaxAge.Hours()/24)
	}
	maxDays *= 1.1
	scale := chartWidth / maxDays
	for i, s := range r.Secrets {
		age, limit := s.Age.Hours()/24, s.MaxAge.Hours()/24
		b := chartBar{Name: s.Name, Y: 30 + float64(i)*(barHeight+barGap), Width: max(age*scale, 1), HasLimit: limit > 0, LimitX: chartLeft + limit*scale, Color: "#2e7d32"}
		b.LabelX = chartLeft + max(b.Width, limit*scale) + 8
		b.Label = fmt.Sprintf("%.0fd", age)
		if limit > 0 {
			b.Label += fmt.Sprintf(" of %.0fd", limit)
			switch {
			case age > limit:
				b.Color = "#c62828"
			case age > 0.8*limit:
				b.Color = "#ef6c00"
			}
		}
		data.Bars = append(data.Bars, b)
	}
	data.ChartHeight = 50 + float64(len(r.Secrets))*(barHeight+barGap)
	step := niceStep(maxDays)
	for d := 0.0; d <= maxDays; d += step {
		data.AxisTicks = append(data.AxisTicks, axisTick{X: chartLeft + d*scale, Label: fmt.Sprintf("%.0fd", d)})
	}
	return reportPage.Execute(w, data)
}

func niceStep(maxDays float64) float64 {
	for _, s := range []float64{1, 2, 5, 7, 10, 14, 30, 60, 90, 180, 365} {
		if maxDays/s <= 8 {
			return s
		}
	}
	return 730
}

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp": stamp, "day": day, "scopes": scopesCell, "age": ageCell, "dash": orDash,
	"add": func(a, b float64) float64 { return a + b },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Audit report {{.Period}}</title>
<style>
:root{color-scheme:light dark}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;background:#fff;max-width:1200px}
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f3f3f3}caption{text-align:left;color:#555;padding:.2em 0}.bad{color:#c62828;font-weight:bold}.muted{color:#777}code{font-size:13px;white-space:nowrap}
svg text{font-size:12px;font-family:inherit}svg .name,svg .value{fill:#222}svg .limit{stroke:#111}svg .grid{stroke:#eee}
.note{border-left:4px solid #ef6c00;padding:.3em .8em;background:#fff8e1}
@media (prefers-color-scheme:dark){body{color:#ddd;background:#121212}th{background:#2a2a2a}th,td{border-color:#444}
.bad{color:#ff8a80}.muted,caption{color:#aaa}svg .name,svg .value{fill:#ddd}svg .limit{stroke:#eee}svg .grid{stroke:#333}.note{background:#2a2300}}
@media print{body{margin:0;max-width:none;color:#000;background:#fff;font-size:10pt}th{background:#eee}
svg .name,svg .value{fill:#000}svg .limit{stroke:#000}h2,h3{break-after:avoid}tr,svg,.note{break-inside:avoid}}
</style></head><body>
<h1>Audit report</h1>
<p>Period: {{.Period}}. Generated {{stamp .GeneratedAt}}.</p>
<h2>Key age against policy maximum</h2>
{{if not .PoliciesKnown}}<p class="note" role="note">{{.NoPolicies}}. The chart shows ages without the policy line.</p>
{{end}}<svg role="img" aria-labelledby="chart-title" width="860" height="{{.ChartHeight}}" xmlns="http://www.w3.org/2000/svg">
<title id="chart-title">Key age in days for {{len .Bars}} secrets{{if .PoliciesKnown}}; the dark line on each bar marks its policy maximum{{end}}</title>
{{range .AxisTicks}}<line class="grid" x1="{{.X}}" y1="20" x2="{{.X}}" y2="{{$.ChartHeight}}" stroke="#eee"/><text x="{{.X}}" y="14" text-anchor="middle" fill="#777">{{.Label}}</text>
{{end}}{{range .Bars}}<text class="name" x="210" y="{{add .Y 13}}" text-anchor="end">{{.Name}}</text>
<rect class="age" data-secret="{{.Name}}" x="220" y="{{.Y}}" width="{{.Width}}" height="18" fill="{{.Color}}"><title>{{.Name}}: {{.Label}}</title></rect>
{{if .HasLimit}}<line class="limit" data-secret="{{.Name}}" x1="{{.LimitX}}" y1="{{add .Y -3}}" x2="{{.LimitX}}" y2="{{add .Y 21}}" stroke="#111" stroke-width="3"/>{{end}}
<text class="value" x="{{.LabelX}}" y="{{add .Y 13}}" fill="#444">{{.Label}}</text>
{{end}}</svg>
<h2>Managed secrets ({{len .Secrets}})</h2>
<table><caption>Managed secrets, times in UTC</caption>
<thead><tr><th scope="col">Secret</th><th scope="col">Env</th><th scope="col">Merchant</th><th scope="col">Key</th><th scope="col">Scopes vs policy</th><th scope="col">Age / max</th><th scope="col">Last rotation</th><th scope="col">Cause</th><th scope="col">Next due</th></tr></thead><tbody>
{{range .Secrets}}<tr><th scope="row"><code>{{.Name}}</code></th><td>{{dash .Environment}}</td><td>{{dash .MasterMerchantID}}</td><td><code>{{dash .Key}}</code></td>
{{if $.PoliciesKnown}}<td{{if not .ScopesOK}} class="bad"{{end}}>{{dash (scopes .)}}</td><td{{if .Overdue}} class="bad"{{end}}>{{age .}}</td>{{else}}<td class="muted">no policy (no --config)</td><td>{{age .}}</td>{{end}}<td>{{day .LastRotation}}</td><td>{{dash (print .LastCause)}}</td><td>{{if $.PoliciesKnown}}{{day .NextDue}}{{else}}<span class="muted">no policy (no --config)</span>{{end}}</td></tr>
{{end}}</tbody></table>
<h2>Emergencies ({{len .Emergencies}})</h2>
{{range .Emergencies}}<h3><code>{{.TriggerID}}</code>: {{.Cause}} by {{dash .Actor}} via {{dash (print .Source)}}</h3>
<p>Reason: {{dash .Reason}}. From {{stamp .Start}} to {{stamp .End}}.</p>
<table><tr><th>Time</th><th>Step</th><th>Outcome</th><th>Secret</th><th>Key</th><th>Error</th></tr>
{{range .Timeline}}<tr><td>{{stamp .Time}}</td><td>{{.Step}}</td><td{{if eq (print .Outcome) "failed"}} class="bad"{{end}}>{{.Outcome}}</td><td><code>{{dash .Secret}}</code></td><td><code>{{dash .Key}}</code></td><td>{{.Error}}</td></tr>
{{end}}</table>
{{else}}<p class="muted">None in this period.</p>
{{end}}<h2>Open violations ({{len .OpenViolations}})</h2>
{{if .OpenViolations}}<table><tr><th>Secret</th><th>Reason</th><th>Since</th></tr>
{{range .OpenViolations}}<tr><td><code>{{.Secret}}</code></td><td class="bad">{{.Reason}}</td><td>{{stamp .Since}}</td></tr>
{{end}}</table>{{else}}<p class="muted">None.</p>{{end}}
</body></html>
`))

// forWhom is " for <person>" when a trigger named someone beside its actor.
func forWhom(onBehalfOf string) string {
	if onBehalfOf == "" {
		return ""
	}
	return " for " + onBehalfOf
}
