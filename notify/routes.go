package notify

import (
	"slices"
	"strings"

	"github.com/lakirotator/lakirotator/events"
)

// Route sends matching events to a receiver. An empty match list matches
// anything. Every route that matches delivers, in order, as alertmanager's
// routes do with continue: true; a route with Stop ends the walk once it
// has matched (first-match, chosen explicitly in the config).
type Route struct {
	Environments []string
	Severities   []events.Severity
	Steps        []events.Step
	Outcomes     []events.Outcome
	Causes       []events.Cause
	Receiver     string // name in Config.Receivers
	// Mentions are Slack ids to page: people (U…, W…) and user groups (S…).
	Mentions []string
	// MentionOwners also pages the owners of the event's secret (Config.Owners).
	MentionOwners bool
	Digest        bool // batch into the receiver's digest instead of sending at once
	Stop          bool // no later route is tried after this one matched
}

func (r Route) matches(e events.Event) bool {
	return matchAny(r.Environments, e.Environment) && matchAny(r.Severities, e.Severity) &&
		matchAny(r.Steps, e.Step) && matchAny(r.Outcomes, e.Outcome) && matchAny(r.Causes, e.Cause)
}

func matchAny[T comparable](list []T, v T) bool { return len(list) == 0 || slices.Contains(list, v) }

// delivery is one receiver's share of an event: whom to page and whether
// it waits for the digest.
type delivery struct {
	receiver string
	mentions []string
	digest   bool
}

// deliveries walks the routes in order and returns one delivery per
// receiver that any matching route names: a receiver named by several
// routes gets one message, paging everyone those routes page, at once
// unless every one of them asked for the digest.
func (d *Dispatcher) deliveries(e events.Event) []delivery {
	var out []delivery
	var owners []string
	ownersLooked := false
	for _, r := range d.routes {
		if !r.matches(e) {
			continue
		}
		ids := slices.Clone(r.Mentions)
		if r.MentionOwners && e.Secret != "" && d.cfg.Owners != nil {
			if !ownersLooked {
				owners, ownersLooked = d.cfg.Owners(e.Secret), true
			}
			ids = append(ids, owners...)
		}
		i := slices.IndexFunc(out, func(x delivery) bool { return x.receiver == r.Receiver })
		if i < 0 {
			out = append(out, delivery{receiver: r.Receiver, digest: r.Digest})
			i = len(out) - 1
		} else {
			out[i].digest = out[i].digest && r.Digest
		}
		for _, id := range ids {
			if !slices.Contains(out[i].mentions, id) {
				out[i].mentions = append(out[i].mentions, id)
			}
		}
		if r.Stop {
			break
		}
	}
	return out
}

// MentionMarkup renders Slack ids as Slack mentions: a user group (S…) as
// <!subteam^S…>, a person (U…, W…) as <@U…>.
func MentionMarkup(ids []string) string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if strings.HasPrefix(id, "S") {
			out = append(out, "<!subteam^"+id+">")
		} else {
			out = append(out, "<@"+id+">")
		}
	}
	return strings.Join(out, " ")
}
