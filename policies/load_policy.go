// Reading one policy document, field by field.

package policies

import (
	"regexp"
	"slices"
	"time"

	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"gopkg.in/yaml.v3"
)

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
