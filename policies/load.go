package policies

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Problem is one thing wrong in a policy file, with where it is; Path is
// the dotted field, e.g. "grace.compromise" ("" for the document).
type Problem = strictyaml.Problem

// LoadError lists every problem found in the policy files, sorted by file and
// position. Loading reports them all at once.
type LoadError = strictyaml.Error

// Set is the loaded policies, by name.
type Set struct {
	byName map[string]Policy
}

// Get returns the policy with the name.
func (s *Set) Get(name string) (Policy, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// Names returns the policy names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the policies sorted by name.
func (s *Set) All() []Policy {
	out := make([]Policy, 0, len(s.byName))
	for _, n := range s.Names() {
		out = append(out, s.byName[n])
	}
	return out
}

// NewSet builds a set from policies made in code (tests, defaults). It checks
// only that names are unique and non-empty; files go through Load.
func NewSet(ps ...Policy) (*Set, error) {
	s := &Set{byName: make(map[string]Policy, len(ps))}
	for _, p := range ps {
		if p.Name == "" {
			return nil, errors.New("policies: a policy has no name")
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("policies: policy %q is defined twice", p.Name)
		}
		s.byName[p.Name] = p
	}
	return s, nil
}

// RotationScopes is what the management key of env needs: api_keys:read and
// api_keys:write to list, create and expire keys (and read auth failures),
// webhooks:read and webhooks:write when webhook secrets are managed there,
// and every scope it must grant to keys it creates (LakiConnect refuses to
// grant a scope the caller lacks).
func (s *Set) RotationScopes(env laki.Environment) []laki.Scope {
	need := []laki.Scope{laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite}
	for _, p := range s.byName {
		if !p.AllowsEnvironment(env) {
			continue
		}
		switch p.Kind {
		case inventory.KindWebhookSecret:
			need = append(need, laki.ScopeWebhooksRead, laki.ScopeWebhooksWrite)
		case inventory.KindAPIKey:
			need = append(need, p.Scopes...)
		}
	}
	return sortScopes(need)
}

// ForEnvironment returns the named policy as it applies in env. For a
// management key that is its scopes narrowed to RotationScopes(env): one
// management policy serves both environments, but a sandbox management key
// must not hold what only production rotation needs. Other kinds are
// returned unchanged. The engine builds create requests from this policy.
func (s *Set) ForEnvironment(name string, env laki.Environment) (Policy, bool) {
	p, ok := s.byName[name]
	if !ok || p.Kind != inventory.KindManagementKey {
		return p, ok
	}
	need := s.RotationScopes(env)
	var scopes []laki.Scope
	for _, sc := range p.Scopes {
		if slices.Contains(need, sc) {
			scopes = append(scopes, sc)
		}
	}
	p.Scopes = scopes
	return p, true
}

// LoadDir loads every *.yaml and *.yml file in dir (not recursing) as one set.
func LoadDir(dir string) (*Set, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policies: read directory: %w", err)
	}
	l := &loader{}
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(path)
		if err != nil {
			l.problems = append(l.problems, Problem{File: path, Message: "cannot read: " + err.Error()})
			continue
		}
		l.file(path, data)
	}
	if len(l.parsed) == 0 && len(l.problems) == 0 {
		l.problems = append(l.problems, Problem{File: dir, Message: "no policy files (*.yaml, *.yml)"})
	}
	return l.finish()
}

// Load loads one file's contents; name is used in messages.
func Load(name string, data []byte) (*Set, error) {
	l := &loader{}
	l.file(name, data)
	return l.finish()
}

type parsedPolicy struct {
	p          Policy
	nameNode   *yaml.Node
	scopesNode *yaml.Node
}

type loader struct {
	problems []Problem
	parsed   []parsedPolicy
	curFile  string
}

func (l *loader) add(n *yaml.Node, field, format string, args ...any) {
	p := Problem{File: l.curFile, Path: field, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.problems = append(l.problems, p)
}

func (l *loader) file(name string, data []byte) {
	l.curFile = name
	docs, err := strictyaml.Documents(data)
	if err != nil {
		line, msg := strictyaml.SyntaxError(err)
		l.problems = append(l.problems, Problem{File: name, Line: line, Message: "invalid YAML: " + msg})
		return
	}
	n := 0
	for _, doc := range docs {
		if len(doc.Content) == 0 {
			continue
		}
		n++
		l.policy(doc.Content[0])
	}
	if n == 0 {
		l.problems = append(l.problems, Problem{File: name, Message: "holds no policy"})
	}
}

// pairs returns the key/value pairs of a mapping, reporting duplicate and
// non-scalar keys.
func (l *loader) pairs(n *yaml.Node, field string) [][2]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		l.add(n, field, "expected a mapping, found %s", kindName(n))
		return nil
	}
	var out [][2]*yaml.Node
	strictyaml.Pairs(n, func(k, v *yaml.Node) { out = append(out, [2]*yaml.Node{k, v}) },
		func(k *yaml.Node) { l.add(k, field, "expected a field name, found %s", kindName(k)) },
		func(k, _ *yaml.Node) { l.add(k, join(field, k.Value), "field is given twice") })
	return out
}

func join(parent, field string) string {
	if parent == "" {
		return field
	}
	return parent + "." + field
}

// kindName names what a node is; a scalar by its value as written, so that
// "expected a list, found \"payments:read\"" shows what to change.
func kindName(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && !strictyaml.IsNull(n) {
		return fmt.Sprintf("%q", n.Value)
	}
	if strictyaml.IsNull(n) {
		return "nothing"
	}
	return strictyaml.Describe(n)
}

func (l *loader) str(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		l.add(n, field, "expected a string, found %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		l.add(n, field, "expected true or false, found %s", kindName(n))
		return false
	}
	return n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
}

func (l *loader) count(n *yaml.Node, field string) int {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		l.add(n, field, "expected a whole number, found %s", kindName(n))
		return 0
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < 0 {
		l.add(n, field, "expected a whole number of 0 or more, found %s", kindName(n))
		return 0
	}
	return v
}

func (l *loader) duration(n *yaml.Node, field string) (time.Duration, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.add(n, field, "expected a duration like 90d or 36h, found %s", kindName(n))
		return 0, false
	}
	d, err := strictyaml.ParseDuration(n.Value)
	if err != nil {
		l.add(n, field, "%v", err)
		return 0, false
	}
	return d, true
}

func (l *loader) strings(n *yaml.Node, field string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		l.add(n, field, "expected a list, found %s", kindName(n))
		return nil
	}
	var out []*yaml.Node
	for i, item := range n.Content {
		if _, ok := l.str(item, field+"["+strconv.Itoa(i)+"]"); ok {
			out = append(out, item)
		}
	}
	return out
}

var policyNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (l *loader) policy(root *yaml.Node) {
	pp := parsedPolicy{p: Policy{
		File: l.curFile, Line: root.Line,
		Grace:  Grace{Scheduled: DefaultGraceScheduled, Personnel: DefaultGracePersonnel},
		Alerts: Alerts{Window: DefaultAlertWindow},
	}}
	p := &pp.p
	if root.Kind != yaml.MappingNode {
		l.add(root, "", "expected a policy (a mapping), found %s", kindName(root))
		return
	}
	var scheduleNode, tzNode, envNode, hardNode, maxAgeNode *yaml.Node
	var scopeNodes []*yaml.Node
	for _, kv := range l.pairs(root, "") {
		k, v := kv[0], kv[1]
		switch k.Value {
		case "name":
			pp.nameNode = v
			p.Name, _ = l.str(v, "name")
		case "description":
			p.Description, _ = l.str(v, "description")
		case "kind":
			if s, ok := l.str(v, "kind"); ok {
				p.Kind = inventory.Kind(s)
				if !p.Kind.Valid() {
					l.add(v, "kind", "%q is not api_key, webhook_secret or management_key", s)
				}
			}
		case "scopes":
			pp.scopesNode = v
			scopeNodes = l.strings(v, "scopes")
			if v.Kind == yaml.SequenceNode && len(v.Content) == 0 {
				p.Scopes = []laki.Scope{}
			}
		case "environments":
			envNode = v
		case "sandbox_only":
			p.SandboxOnly = l.boolean(v, "sandbox_only")
		case "max_age":
			maxAgeNode = v
			p.MaxAge, _ = l.duration(v, "max_age")
		case "schedule":
			scheduleNode = v
			p.ScheduleSpec, _ = l.str(v, "schedule")
		case "time_zone":
			tzNode = v
		case "window":
			l.window(p, v)
		case "grace":
			l.grace(p, v)
		case "revoke_first_on_compromise":
			p.RevokeFirstOnCompromise = l.boolean(v, "revoke_first_on_compromise")
		case "hard_expiry":
			hardNode = v
			for _, kv := range l.pairs(v, "hard_expiry") {
				switch kv[0].Value {
				case "expires_after":
					if d, ok := l.duration(kv[1], "hard_expiry.expires_after"); ok {
						p.HardExpiry.ExpiresAfter = d
						if d == 0 {
							l.add(kv[1], "hard_expiry.expires_after", "must be more than 0 (leave hard_expiry out for keys without expires_at)")
						} else if d > laki.MaxCreateExpiresAhead {
							l.add(kv[1], "hard_expiry.expires_after", "%s is more than LakiConnect's limit of 400d", strictyaml.FormatDuration(d))
						}
					}
				default:
					l.add(kv[0], join("hard_expiry", kv[0].Value), "unknown field (known: expires_after)")
				}
			}
		case "alerts":
			l.alerts(p, v)
		case "severity":
			l.severity(p, v)
		default:
			l.add(k, k.Value, "unknown field (known: name, description, kind, scopes, environments, sandbox_only, max_age, schedule, time_zone, window, grace, revoke_first_on_compromise, hard_expiry, alerts, severity)")
		}
	}

	// Required fields and cross-field rules.
	if pp.nameNode == nil {
		l.add(root, "name", "is required")
	} else if p.Name != "" && !policyNamePattern.MatchString(p.Name) {
		l.add(pp.nameNode, "name", "%q must be 1-63 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", p.Name)
	}
	if p.Kind == "" {
		if !hasField(root, "kind") {
			l.add(root, "kind", "is required (api_key, webhook_secret or management_key)")
		}
	}
	// Scopes.
	seen := map[laki.Scope]bool{}
	for _, n := range scopeNodes {
		s := laki.Scope(n.Value)
		switch {
		case !s.Valid():
			l.add(n, "scopes", "unknown scope %q (LakiConnect scopes: %s)", n.Value, scopeList(laki.AllScopes))
		case seen[s]:
			l.add(n, "scopes", "scope %q is listed twice", n.Value)
		default:
			seen[s] = true
			p.Scopes = append(p.Scopes, s)
		}
	}
	p.Scopes = sortScopes(p.Scopes)
	switch p.Kind {
	case inventory.KindAPIKey, inventory.KindManagementKey:
		if pp.scopesNode == nil {
			l.add(root, "scopes", "is required for kind %s", p.Kind)
		} else if pp.scopesNode.Kind == yaml.SequenceNode && len(pp.scopesNode.Content) == 0 {
			l.add(pp.scopesNode, "scopes", "is empty; a key needs at least one scope")
		}
	case inventory.KindWebhookSecret:
		if pp.scopesNode != nil {
			l.add(pp.scopesNode, "scopes", "webhook secrets have no scopes; remove the field")
		}
		if hardNode != nil {
			l.add(hardNode, "hard_expiry", "webhook secrets take no expires_at at creation; remove the field")
		}
	}
	// Environments.
	if envNode == nil {
		l.add(root, "environments", "is required (sandbox, production or both)")
	} else {
		for _, n := range l.strings(envNode, "environments") {
			e := laki.Environment(n.Value)
			switch {
			case !e.Valid():
				l.add(n, "environments", "%q is not sandbox or production", n.Value)
			case slices.Contains(p.Environments, e):
				l.add(n, "environments", "%q is listed twice", n.Value)
			default:
				p.Environments = append(p.Environments, e)
			}
		}
		if envNode.Kind == yaml.SequenceNode && len(envNode.Content) == 0 {
			l.add(envNode, "environments", "is empty")
		}
		named, _ := NameEnvironment(p.Name)
		if p.AllowsEnvironment(laki.Production) && (p.SandboxOnly || named == laki.Sandbox) {
			why := "sandbox_only: true"
			if !p.SandboxOnly {
				why = "its name says sandbox"
			}
			l.add(envNode, "environments", "a sandbox-only policy (%s) cannot allow production", why)
		}
	}
	// Age and expiry.
	if maxAgeNode == nil {
		l.add(root, "max_age", "is required")
	} else if p.MaxAge == 0 && maxAgeNode.Kind == yaml.ScalarNode {
		if _, err := strictyaml.ParseDuration(maxAgeNode.Value); err == nil {
			l.add(maxAgeNode, "max_age", "must be more than 0")
		}
	}
	if p.HardExpiry.ExpiresAfter > 0 && p.MaxAge > 0 && p.HardExpiry.ExpiresAfter < p.MaxAge {
		l.add(hardNode, "hard_expiry.expires_after", "%s is shorter than max_age %s: keys would end before their rotation is due",
			strictyaml.FormatDuration(p.HardExpiry.ExpiresAfter), strictyaml.FormatDuration(p.MaxAge))
	}
	// Time zone and schedule.
	if tzNode != nil {
		if s, ok := l.str(tzNode, "time_zone"); ok {
			loc, err := time.LoadLocation(s)
			if err != nil || s == "" || s == "Local" {
				l.add(tzNode, "time_zone", "%q is not an IANA time zone name (like Europe/Berlin or UTC)", s)
			} else {
				p.Location = loc
			}
		}
	}
	if scheduleNode != nil && p.ScheduleSpec != "" {
		l.schedule(p, scheduleNode)
	}
	l.parsed = append(l.parsed, pp)
}

func hasField(m *yaml.Node, name string) bool { return findField(m, name) != nil }

func findField(m *yaml.Node, name string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == name {
			return m.Content[i+1]
		}
	}
	return nil
}

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
		default:
			l.add(k, field, "unknown field (known: unauthorized_401, forbidden_403, window, rotate_on_unauthorized_spike, last_used_warning)")
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

// finish runs the checks across files and builds the set.
func (l *loader) finish() (*Set, error) {
	set := &Set{byName: map[string]Policy{}}
	first := map[string]parsedPolicy{}
	for _, pp := range l.parsed {
		if pp.p.Name == "" {
			continue
		}
		if prev, dup := first[pp.p.Name]; dup {
			l.curFile = pp.p.File
			l.add(pp.nameNode, "name", "policy %q is already defined at %s:%d", pp.p.Name, prev.p.File, prev.nameNode.Line)
			continue
		}
		first[pp.p.Name] = pp
		set.byName[pp.p.Name] = pp.p
	}
	// The management key must hold what rotation needs, and no more.
	for _, pp := range l.parsed {
		p := pp.p
		if p.Kind != inventory.KindManagementKey || pp.scopesNode == nil || len(p.Scopes) == 0 {
			continue
		}
		l.curFile = p.File
		var needAll []laki.Scope
		for _, env := range p.Environments {
			need := set.RotationScopes(env)
			needAll = append(needAll, need...)
			if missing := ScopeDiff(need, p.Scopes); len(missing) > 0 {
				l.add(pp.scopesNode, "scopes", "lacks %s that rotation in %s needs (LakiConnect refuses to grant scopes the caller lacks)", scopeList(missing), env)
			}
		}
		if extra := ScopeDiff(p.Scopes, needAll); len(extra) > 0 && len(p.Environments) > 0 {
			l.add(pp.scopesNode, "scopes", "%s not needed for rotation: the management key must hold only what rotation needs", scopeList(extra))
		}
	}
	if len(l.problems) > 0 {
		sort.SliceStable(l.problems, func(i, j int) bool {
			a, b := l.problems[i], l.problems[j]
			if a.File != b.File {
				return a.File < b.File
			}
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		return nil, &LoadError{Problems: l.problems}
	}
	return set, nil
}
