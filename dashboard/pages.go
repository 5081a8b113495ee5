package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/httpapi"
)

func (h *Handler) inventory(w http.ResponseWriter, r *http.Request) {
	inv, err := h.o.Backend.Inventory(r.Context())
	if err != nil {
		h.fail(w, "inventory", err)
		return
	}
	f, err := h.facts(r.Context())
	if err != nil {
		h.fail(w, "audit trail", err)
		return
	}
	flt := parseFilter(r.URL.Query())
	var matched []httpapi.SecretStatus
	for _, s := range inv.Secrets {
		if flt.matchSecret(s) {
			matched = append(matched, s)
		}
	}
	states := map[string]audit.SecretState{}
	if sts, err := h.o.Backend.SecretStates(r.Context()); err != nil {
		// The inventory still shows; key ids and scopes fall back to the audit trail.
		h.o.Logger.Warn("dashboard: secret states unavailable", "err", err)
	} else {
		for _, st := range sts {
			states[st.Name] = st
		}
	}
	row := func(s httpapi.SecretStatus) InventoryRow { return inventoryRow(s, states[s.Name], f) }
	// Downloads carry every matching row, not one page of them.
	if download(w, r, "inventory", func() table {
		rows := make([]InventoryRow, len(matched))
		t := table{Header: []string{"name", "environment", "master_merchant_id", "kind", "owners", "policy", "key_last4", "age_seconds", "policy_max_age_seconds", "scope_problems", "next_due", "in_flight", "failures", "last_failure", "old_credential_in_grace", "old_credential_last_used_at"}}
		for i, s := range matched {
			rows[i] = row(s)
			x := rows[i]
			t.Rows = append(t.Rows, []string{x.Name, x.Environment, x.MasterMerchantID, x.Kind, strings.Join(x.Owners, " "), x.Policy, x.Key,
				strconv.FormatInt(x.AgeSeconds, 10), strconv.FormatInt(x.MaxAgeSeconds, 10), strings.Join(x.ScopeProblems, "; "),
				timeString(x.NextDue), strconv.FormatBool(x.InFlight), strconv.Itoa(x.Failures), x.LastFailure,
				strconv.FormatBool(x.InGrace), x.OldLastUsedAt})
		}
		t.JSON = rows
		return t
	}) {
		return
	}
	pg, lo, hi := paginate(len(matched), flt)
	rows := make([]InventoryRow, 0, hi-lo)
	overdue, inFlight := 0, 0
	for _, s := range matched[lo:hi] {
		rows = append(rows, row(s))
	}
	for _, s := range matched {
		if s.PendingVersionID != "" {
			inFlight++
		}
		if m := states[s.Name].PolicyMaxAge; m > 0 && s.AgeSeconds > int64(m/time.Second) {
			overdue++
		}
	}
	h.render(w, r, "inventory", map[string]any{
		"Title": "Inventory", "Rows": rows, "PageInfo": pg, "Filter": flt, "All": len(inv.Secrets),
		"Overdue": overdue, "InFlight": inFlight, "Violations": len(f.report.OpenViolations),
		"Envs":      options(inv.Secrets, func(s httpapi.SecretStatus) []string { return []string{s.Environment} }),
		"Merchants": options(inv.Secrets, func(s httpapi.SecretStatus) []string { return []string{s.MasterMerchantID} }),
		"Owners":    options(inv.Secrets, func(s httpapi.SecretStatus) []string { return s.Owners }),
		"Policies":  options(inv.Secrets, func(s httpapi.SecretStatus) []string { return []string{s.Policy} }),
		"Prev":      ifThen(pg.Number > 1, "?"+flt.query(pg.Number-1)),
		"Next":      ifThen(pg.Number < pg.Pages, "?"+flt.query(pg.Number+1)),
		"Query":     template.URL(flt.query(pg.Number)), //nolint:gosec // built by url.Values.Encode
	})
}

func (h *Handler) timeline(w http.ResponseWriter, r *http.Request) {
	f, err := h.facts(r.Context())
	if err != nil {
		h.fail(w, "audit trail", err)
		return
	}
	days := timeline(f.records, f.report.Emergencies, h.o.Now())
	if download(w, r, "timeline", func() table {
		t := table{Header: []string{"day", "scheduled", "manual", "personnel", "compromise", "total", "emergencies"}, JSON: days}
		for _, d := range days {
			row := []string{d.Day}
			for _, c := range timelineCauses {
				row = append(row, strconv.Itoa(d.ByCause[string(c)]))
			}
			t.Rows = append(t.Rows, append(row, strconv.Itoa(d.Total), strings.Join(d.Emergencies, "; ")))
		}
		return t
	}) {
		return
	}
	h.render(w, r, "timeline", map[string]any{"Title": "Timeline", "Days": days, "Chart": timelineChart(days), "Causes": timelineCauses})
}

// EmergencyView is an emergency with its exposure-to-revocation time.
type EmergencyView struct {
	audit.Emergency
	ToRevocation string `json:"exposure_to_revocation,omitempty"`
}

func (h *Handler) emergencies(w http.ResponseWriter, r *http.Request) {
	f, err := h.facts(r.Context())
	if err != nil {
		h.fail(w, "audit trail", err)
		return
	}
	var list []EmergencyView
	for i := len(f.report.Emergencies) - 1; i >= 0; i-- { // newest first
		em := f.report.Emergencies[i]
		v := EmergencyView{Emergency: em}
		if d, ok := exposureToRevocation(em, f.records, h.o.Now()); ok {
			v.ToRevocation = d.Round(time.Second).String()
		}
		list = append(list, v)
	}
	if download(w, r, "emergencies", func() table {
		t := table{Header: []string{"trigger_id", "cause", "actor", "source", "reason", "time", "step", "outcome", "secret", "key", "error"}, JSON: list}
		for _, em := range list {
			for _, s := range em.Timeline {
				t.Rows = append(t.Rows, []string{em.TriggerID, string(em.Cause), em.Actor, string(em.Source), em.Reason,
					s.Time.UTC().Format(time.RFC3339), string(s.Step), string(s.Outcome), s.Secret, s.Key, s.Error})
			}
		}
		return t
	}) {
		return
	}
	h.render(w, r, "emergencies", map[string]any{"Title": "Emergencies", "Emergencies": list})
}

func (h *Handler) violations(w http.ResponseWriter, r *http.Request) {
	f, err := h.facts(r.Context())
	if err != nil {
		h.fail(w, "audit trail", err)
		return
	}
	vs := f.violations
	if download(w, r, "violations", func() table {
		t := table{Header: []string{"kind", "secret", "reason", "since", "details"}, JSON: map[string]any{"open_violations": vs, "auth_alerts": f.authSpikes}}
		for _, v := range vs {
			t.Rows = append(t.Rows, []string{"violation", v.Secret, v.Reason + ifThen(v.Message != "", ": "+v.Message), v.Since.UTC().Format(time.RFC3339), detailString(v.Details)})
		}
		for _, a := range f.authSpikes {
			t.Rows = append(t.Rows, []string{"alert", a.Secret, a.Reason, a.Time.UTC().Format(time.RFC3339), a.Details})
		}
		return t
	}) {
		return
	}
	h.render(w, r, "violations", map[string]any{"Title": "Violations", "Violations": vs, "Alerts": f.authSpikes})
}

func timeString(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// bar is one rectangle of the timeline chart.
type bar struct {
	X, Y, W, H   float64
	Cause, Label string
}

type chart struct {
	W, H, Base float64
	Bars       []bar
	Marks      []bar // emergencies
	Ticks      []bar // day labels under the axis
	Max        int
	Label      string
}

func timelineChart(days []DayCount) chart {
	const w, h, top, base = 720.0, 215.0, 10.0, 180.0
	c := chart{W: w, H: h, Base: base}
	for _, d := range days {
		c.Max = max(c.Max, d.Total)
	}
	scale := (base - top) / math.Max(1, float64(c.Max))
	slot := w / float64(len(days))
	var total, emerg int
	for i, d := range days {
		y := base
		for _, cause := range timelineCauses {
			n := d.ByCause[string(cause)]
			if n == 0 {
				continue
			}
			hh := float64(n) * scale
			y -= hh
			c.Bars = append(c.Bars, bar{X: float64(i)*slot + 2, Y: y, W: slot - 4, H: hh, Cause: string(cause), Label: fmt.Sprintf("%s: %d %s", d.Day, n, cause)})
		}
		total += d.Total
		if i%7 == 0 || i == len(days)-1 {
			c.Ticks = append(c.Ticks, bar{X: float64(i)*slot + slot/2, Y: base + 30, Label: d.Day[5:]})
		}
		if len(d.Emergencies) > 0 {
			emerg += len(d.Emergencies)
			c.Marks = append(c.Marks, bar{X: float64(i)*slot + slot/2, Y: base + 4, Label: d.Day + ": " + strings.Join(d.Emergencies, ", ")})
		}
	}
	c.Label = fmt.Sprintf("Rotations per day over 30 days by cause: %d rotations, %d emergencies", total, emerg)
	return c
}

var funcs = template.FuncMap{
	"utc": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			if v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		case *time.Time:
			if v == nil || v.IsZero() {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05Z")
		}
		return ""
	},
	"iso": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format(time.RFC3339)
		case *time.Time:
			if v != nil {
				return v.UTC().Format(time.RFC3339)
			}
		}
		return ""
	},
	"days": func(sec int64) string {
		return strconv.FormatFloat(float64(sec)/86400, 'f', 1, 64) + "d"
	},
	"join": strings.Join,
	"sel":  func(a, b string) bool { return a == b },
}
