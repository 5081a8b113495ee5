// Checks of the notifications section: receivers, routes, people.

package config

import (
	"slices"
	"strings"
)

// eachOneOf adds a problem at path[j] for each value that is not one of allowed.
func eachOneOf[T ~string](ps *problems, path string, values, allowed []T) {
	for j, x := range values {
		if !slices.Contains(allowed, x) {
			ps.add(indexPath(path, j), "%q is not one of %s", x, joinNames(allowed))
		}
	}
}

func joinNames[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}

func (v *validator) notifications() {
	n := v.c.Notifications
	const np = "notifications"
	slack := n.Slack
	tokenSet := false
	if slack != nil {
		sp := np + ".slack"
		v.url(sp+".api_url", slack.APIURL, true)
		tokenSet = v.refSet(sp+".token", slack.Token)
		if !tokenSet && !v.refSet(sp+".webhook_url", slack.WebhookURL) {
			v.ps.add(sp, "needs token (a bot token, to post to any channel) or webhook_url (an incoming webhook)")
		}
		for _, r := range []struct {
			path string
			ref  SecretRef
		}{{sp + ".token", slack.Token}, {sp + ".webhook_url", slack.WebhookURL}, {sp + ".signing_secret", slack.SigningSecret}} {
			if v.refSet(r.path, r.ref) {
				v.ref(r.path, r.ref)
			}
		}
		if slack.Channel != "" && !slackChannelRE.MatchString(slack.Channel) {
			v.ps.add(sp+".channel", "%q is not a Slack channel (#name or a channel id such as C0123ABCD)", slack.Channel)
		}
		for i, u := range slack.AllowedUsers {
			if !slackUserRE.MatchString(u) {
				v.ps.add(indexPath(sp+".allowed_users", i), "%q is not a Slack member id (such as U0123ABCD)", u)
			}
		}
		if len(slack.AllowedUsers) > 0 && !v.refSet(sp+".signing_secret", slack.SigningSecret) {
			v.ps.add(sp+".signing_secret", "required when allowed_users may act from Slack: requests from Slack are verified with it")
		}
	}
	for _, name := range sortedKeys(n.People) {
		p := childPath(np+".people", name)
		if !simpleNameRE.MatchString(name) {
			v.ps.addKey(p, "%q is not a person or team name (letters, digits, . _ @ -)", name)
		}
		if id := n.People[name]; !slackMentionRE.MatchString(id) {
			v.ps.add(p, "%q is not a Slack member or user group id (such as U0123ABCD or S0123ABCD)", id)
		}
	}
	receivers := map[string]int{}
	for i, r := range n.Receivers {
		p := indexPath(np+".receivers", i)
		switch first, dup := receivers[r.Name]; {
		case r.Name == "":
			v.ps.add(p+".name", "required")
		case dup:
			v.ps.add(p+".name", "receiver %q is already defined at receivers[%d]", r.Name, first)
		default:
			receivers[r.Name] = i
		}
		switch r.Kind {
		case ReceiverSlack:
			switch {
			case slack == nil:
				v.ps.add(p+".kind", "a slack receiver needs notifications.slack")
			case r.Channel != "" && !slackChannelRE.MatchString(r.Channel):
				v.ps.add(p+".channel", "%q is not a Slack channel (#name or a channel id such as C0123ABCD)", r.Channel)
			case r.Channel != "" && !tokenSet:
				v.ps.add(p+".channel", "choosing a channel needs notifications.slack.token; an incoming webhook posts only to its own channel")
			case r.Channel == "" && slack.Channel == "" && tokenSet:
				v.ps.add(p+".channel", "required (or set notifications.slack.channel)")
			}
		case ReceiverTerminal, ReceiverLog:
			if r.Channel != "" {
				v.ps.add(p+".channel", "goes only with kind: slack")
			}
		case "":
			v.ps.add(p+".kind", "required: slack, terminal or log")
		default:
			v.ps.add(p+".kind", "%q is not one of slack, terminal, log", r.Kind)
		}
	}
	for i, r := range n.Routes {
		p := indexPath(np+".routes", i)
		if r.Receiver == "" {
			v.ps.add(p+".receiver", "required: the name of a receiver")
		} else if _, ok := receivers[r.Receiver]; !ok {
			v.ps.add(p+".receiver", "no receiver named %q in notifications.receivers", r.Receiver)
		}
		m := r.Match
		for j, env := range m.Environments {
			if _, ok := v.c.Environments[env]; !ok || !env.Valid() {
				v.ps.add(indexPath(p+".match.environments", j), "%q is not a configured environment (%s)", env, envList(v.c.Environments))
			}
		}
		eachOneOf(v.ps, p+".match.severities", m.Severities, allSeverities)
		eachOneOf(v.ps, p+".match.causes", m.Causes, allCauses)
		eachOneOf(v.ps, p+".match.steps", m.Steps, allSteps)
		eachOneOf(v.ps, p+".match.outcomes", m.Outcomes, allOutcomes)
		for j, who := range r.Mentions {
			if _, ok := n.People[who]; !ok && who != MentionOwners {
				v.ps.add(indexPath(p+".mentions", j), "%q is neither owners nor a name in notifications.people", who)
			}
		}
	}
	if n.DedupWindow < 0 {
		v.ps.add(np+".dedup_window", "must not be negative")
	}
	if n.DigestInterval < 0 {
		v.ps.add(np+".digest_interval", "must not be negative")
	}
}
