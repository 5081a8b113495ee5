// Reading the structured fields of a policy: schedule, window, grace,
// alerts, severity.

package policies

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
)

// scheduleSamples is how many consecutive runs are compared with max_age.
const scheduleSamples = 16

func (l *loader) schedule(p *Policy, n *yaml.Node) {
	spec := strings.TrimSpace(p.ScheduleSpec)
	specTZ := ""
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		first, _, _ := strings.Cut(spec, " ")
		_, specTZ, _ = strings.Cut(first, "=")
	}
	switch {
	case specTZ != "" && p.Location != nil && specTZ != p.Location.String():
		l.add(n, "schedule", "names time zone %s but time_zone is %s; give it once", specTZ, p.Location)
		return
	case specTZ == "" && p.Location != nil:
		spec = "CRON_TZ=" + p.Location.String() + " " + spec
	}
	sched, err := cron.ParseStandard(spec)
	if err != nil {
		l.add(n, "schedule", "%q is not a cron schedule: %v", p.ScheduleSpec, err)
		return
	}
	p.Schedule = sched
	// A schedule that leaves keys alive longer than max_age breaks the
	// policy by design. Sample from a fixed instant so the answer does not
	// depend on when the file is loaded.
	t := sched.Next(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if t.IsZero() {
		l.add(n, "schedule", "%q never runs", p.ScheduleSpec)
		return
	}
	var gap time.Duration
	for i := 0; i < scheduleSamples; i++ {
		next := sched.Next(t)
		if next.IsZero() {
			break
		}
		gap = max(gap, next.Sub(t))
		t = next
	}
	if p.MaxAge > 0 && gap > p.MaxAge {
		l.add(n, "schedule", "runs up to %s apart, longer than max_age %s: keys would outlive the policy between rotations",
			strictyaml.FormatDuration(gap), strictyaml.FormatDuration(p.MaxAge))
	}
}

func (l *loader) window(p *Policy, n *yaml.Node) {
	var startSet, endSet bool
	for _, kv := range l.pairs(n, "window") {
		k, v := kv[0], kv[1]
		field := join("window", k.Value)
		switch k.Value {
		case "days":
			for _, d := range l.strings(v, field) {
				wd, ok := parseWeekday(d.Value)
				switch {
				case !ok:
					l.add(d, field, "%q is not a weekday (mon, tue, wed, thu, fri, sat, sun)", d.Value)
				case slices.Contains(p.Window.Days, wd):
					l.add(d, field, "%q is listed twice", d.Value)
				default:
					p.Window.Days = append(p.Window.Days, wd)
				}
			}
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				l.add(v, field, "is empty; leave window out to allow every day")
			}
		case "start", "end":
			s, ok := l.str(v, field)
			if !ok {
				continue
			}
			d, err := parseTimeOfDay(s, k.Value == "end")
			if err != nil {
				l.add(v, field, "%v", err)
				continue
			}
			if k.Value == "start" {
				p.Window.Start, startSet = d, true
			} else {
				p.Window.End, endSet = d, true
			}
		default:
			l.add(k, field, "unknown field (known: days, start, end)")
		}
	}
	if startSet && endSet && p.Window.Start == p.Window.End {
		l.add(n, "window", "start and end are equal: the window would be empty")
	}
	if n.Kind == yaml.MappingNode {
		if !hasField(n, "days") {
			l.add(n, "window.days", "is required")
		}
		if !startSet && !hasField(n, "start") {
			l.add(n, "window.start", "is required")
		}
		if !endSet && !hasField(n, "end") {
			l.add(n, "window.end", "is required")
		}
	}
}

func parseWeekday(s string) (time.Weekday, bool) {
	s = strings.ToLower(s)
	for d := time.Sunday; d <= time.Saturday; d++ {
		full := strings.ToLower(d.String())
		if s == full || s == full[:3] {
			return d, true
		}
	}
	return 0, false
}

func parseTimeOfDay(s string, allow24 bool) (time.Duration, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(h) != 2 || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 ||
		hh > 24 || (hh == 24 && (mm != 0 || !allow24)) {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (00:00-23:59, end may be 24:00)", s)
	}
	return time.Duration(hh)*time.Hour + time.Duration(mm)*time.Minute, nil
}

func (l *loader) grace(p *Policy, n *yaml.Node) {
	nodes := map[string]*yaml.Node{}
	for _, kv := range l.pairs(n, "grace") {
		k, v := kv[0], kv[1]
		field := join("grace", k.Value)
		var dst *time.Duration
		switch k.Value {
		case "scheduled":
			dst = &p.Grace.Scheduled
		case "personnel":
			dst = &p.Grace.Personnel
		case "compromise":
			// Accepted only as written out for clarity: a compromised
			// credential has no grace, and the engine gives it none.
			if d, ok := l.duration(v, field); ok && d != 0 {
				l.add(v, field, "%s is refused: a compromised credential ends as soon as its replacement is current, so it gets no grace (write 0s or leave the field out)", strictyaml.FormatDuration(d))
			}
			continue
		default:
			l.add(k, field, "unknown field (known: scheduled, personnel, compromise)")
			continue
		}
		if d, ok := l.duration(v, field); ok {
			if d > laki.MaxExpireDelay {
				l.add(v, field, "%s is more than LakiConnect's limit of 7d for an old credential's end", strictyaml.FormatDuration(d))
				continue
			}
			*dst = d
			nodes[k.Value] = v
		}
	}
	g := p.Grace
	if g.Personnel > g.Scheduled {
		l.add(orNode(nodes["personnel"], n), "grace.personnel", "%s is longer than the scheduled grace %s: an emergency must not give old keys more time",
			strictyaml.FormatDuration(g.Personnel), strictyaml.FormatDuration(g.Scheduled))
	}
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

func (l *loader) alerts(p *Policy, n *yaml.Node) {
	var rotateNode *yaml.Node
	for _, kv := range l.pairs(n, "alerts") {
		k, v := kv[0], kv[1]
		field := join("alerts", k.Value)
		switch k.Value {
		case "unauthorized_401":
			p.Alerts.Unauthorized401 = l.count(v, field)
		case "forbidden_403":
			p.Alerts.Forbidden403 = l.count(v, field)
		case "window":
			if d, ok := l.duration(v, field); ok {
				if d == 0 {
					l.add(v, field, "must be more than 0")
				} else {
					p.Alerts.Window = d
				}
			}
		case "rotate_on_unauthorized_spike":
			rotateNode = v
			p.Alerts.RotateOnUnauthorizedSpike = l.boolean(v, field)
		case "last_used_warning":
			p.Alerts.LastUsedWarning, _ = l.duration(v, field)
		case "last_used_warning_fraction":
			f, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || (v.Tag != "!!float" && v.Tag != "!!int") || err != nil || f <= 0 || f >= 1 {
				l.add(v, field, "expected a fraction of the grace between 0 and 1 (for example 0.8), found %s", kindName(v))
				continue
			}
			p.Alerts.LastUsedWarningFraction = f
		default:
			l.add(k, field, "unknown field (known: unauthorized_401, forbidden_403, window, rotate_on_unauthorized_spike, last_used_warning, last_used_warning_fraction)")
		}
	}
	if p.Alerts.RotateOnUnauthorizedSpike && p.Alerts.Unauthorized401 == 0 {
		l.add(rotateNode, "alerts.rotate_on_unauthorized_spike", "needs alerts.unauthorized_401 above 0 to know what a spike is")
	}
}

func (l *loader) severity(p *Policy, n *yaml.Node) {
	for _, kv := range l.pairs(n, "severity") {
		k, v := kv[0], kv[1]
		field := join("severity", k.Value)
		r := Reason(k.Value)
		if !r.Known() {
			l.add(k, field, "unknown reason %q (see policies.Reasons)", k.Value)
			continue
		}
		s, ok := l.str(v, field)
		if !ok {
			continue
		}
		sev := events.Severity(s)
		if SeverityRank(sev) == 0 {
			l.add(v, field, "%q is not info, warning or critical", s)
			continue
		}
		if p.Severity == nil {
			p.Severity = map[Reason]events.Severity{}
		}
		p.Severity[r] = sev
	}
}
