package audit_test

import (
	"bytes"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
)

// fixtureReport builds the report of testdata/report: its audit log and,
// when withPolicies, the secrets' state as the daemon fills it from the policies.
func fixtureReport(t *testing.T, withPolicies bool) (audit.Report, string) {
	t.Helper()
	f, err := os.Open("testdata/report/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := audit.ReadRecords(f)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 11, 3, 0, 0, 0, time.UTC)
	in := audit.ReportInput{Records: recs, Now: now}
	if withPolicies {
		pols, err := policies.LoadDir("testdata/report/policies")
		if err != nil {
			t.Fatal(err)
		}
		created := map[string]time.Time{}
		for _, r := range recs {
			if r.Event.Step == "rotation" && r.Event.Outcome == "succeeded" {
				created[r.Event.Secret] = r.Event.Time
			}
		}
		for _, s := range []struct {
			name, env, kind, policy, key string
			extra                        []string // scopes the key holds beyond its policy
		}{
			{"prod/checkout", "production", "api_key", "checkout", "key_checkout_aaaa", []string{"refunds:write"}},
			{"sandbox/reporting", "sandbox", "api_key", "reporting", "key_reporting_bbbb", nil},
			{"prod/orders-webhook", "production", "webhook_secret", "webhooks", "whs_orders_cccc", nil},
		} {
			p, ok := pols.Get(s.policy)
			if !ok {
				t.Fatalf("fixture policy %s missing", s.policy)
			}
			st := audit.SecretState{Name: s.name, Kind: s.kind, Environment: s.env, MasterMerchantID: "mm_fixture", KeyID: s.key,
				PolicyMaxAge: p.MaxAge, CreatedAt: created[s.name], NextDue: p.NextRun(now)}
			if s.kind == "api_key" {
				st.PolicyScopes = laki.ScopeNames(p.Scopes)
				st.Scopes = append(s.extra, st.PolicyScopes...)
			}
			in.Inventory = append(in.Inventory, st)
		}
	}
	rep := audit.BuildReport(in)
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	return rep, b.String()
}

var (
	ageBar    = regexp.MustCompile(`<rect class="age" data-secret="([^"]+)" x="220" y="[\d.]+" width="([\d.]+)"`)
	limitLine = regexp.MustCompile(`<line class="limit" data-secret="([^"]+)" x1="([\d.]+)"`)
)

func TestHTMLReportDrawsAgesAgainstThePolicyMaximum(t *testing.T) {
	rep, html := fixtureReport(t, true)
	if !rep.PoliciesKnown || len(rep.Secrets) != 3 {
		t.Fatalf("report: policies known %v, %d secrets, want 3", rep.PoliciesKnown, len(rep.Secrets))
	}
	if strings.Contains(html, "prod/nope") {
		t.Error("a refused trigger's secret name is listed as a managed secret")
	}
	limits := map[string]float64{}
	for _, m := range limitLine.FindAllStringSubmatch(html, -1) {
		limits[m[1]], _ = strconv.ParseFloat(m[2], 64)
	}
	bars := ageBar.FindAllStringSubmatch(html, -1)
	if len(bars) != 3 || len(limits) != 3 {
		t.Fatalf("chart has %d bars and %d policy lines, want 3 each", len(bars), len(limits))
	}
	want := map[string]float64{ // age / policy maximum, from the fixture
		"prod/checkout":       40.0 / 90,
		"sandbox/reporting":   35.0 / 30,
		"prod/orders-webhook": 28.0 / 30,
	}
	for _, m := range bars {
		width, _ := strconv.ParseFloat(m[2], 64)
		got := width / (limits[m[1]] - 220)
		if math.Abs(got-want[m[1]]) > 0.005 {
			t.Errorf("%s: bar is %.3f of its policy line, want %.3f", m[1], got, want[m[1]])
		}
	}
	for _, row := range rep.Secrets {
		if row.Environment == "" || row.NextDue.IsZero() || row.MaxAge == 0 {
			t.Errorf("%s: environment %q, next due %v, max %v: the policy columns are not filled", row.Name, row.Environment, row.NextDue, row.MaxAge)
		}
	}
	for _, want := range []string{`fill="#c62828"><title>sandbox/reporting: 35d of 30d`, "extra: refunds:write", "@media print", "prefers-color-scheme:dark", `aria-labelledby="chart-title"`, `<th scope="col">Age / max</th>`} {
		if !strings.Contains(html, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(html, "<script") || strings.Contains(html, "http://") && !strings.Contains(html, `xmlns="http://www.w3.org/2000/svg"`) || strings.Contains(html, "<link") {
		t.Error("the report is not self-contained")
	}
}

func TestHTMLReportWithoutPoliciesSaysWhy(t *testing.T) {
	rep, html := fixtureReport(t, false)
	if rep.PoliciesKnown {
		t.Fatal("policies known without an inventory")
	}
	if !strings.Contains(html, audit.NoPoliciesReason) || !strings.Contains(html, "no policy (no --config)") {
		t.Error("the policy columns do not say why they are empty")
	}
	if strings.Contains(html, `class="limit"`) {
		t.Error("a policy line is drawn without policies")
	}
	if strings.Contains(html, "prod/nope") {
		t.Error("a refused trigger's secret name is listed as a managed secret")
	}
	for _, env := range []string{"<td>production</td>", "<td>sandbox</td>"} {
		if !strings.Contains(html, env) {
			t.Errorf("environment %s not shown", env)
		}
	}
}
