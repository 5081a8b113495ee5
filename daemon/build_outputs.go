// Wiring of the outputs: the audit sinks and the notification dispatcher.

package daemon

import (
	"context"
	"fmt"
	"slices"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/notify"
	notifyslack "github.com/lakirotator/lakirotator/notify/slack"
	"github.com/lakirotator/lakirotator/notify/terminal"
	"github.com/lakirotator/lakirotator/providers/eventbridge"
)

func (s *Service) buildAudit(ctx context.Context, cfg *config.Config, o BuildOptions, bus *events.Bus) error {
	var sinks []audit.Sink
	if cfg.Audit.File != "" {
		fs, err := audit.OpenFileSinkWith(cfg.Audit.File, audit.FileOptions{Clock: o.Clock, WrapWriter: o.AuditFileWriter})
		if err != nil {
			return fmt.Errorf("audit.file: %w", err)
		}
		s.closers = append(s.closers, func(context.Context) error { return fs.Close() })
		sinks = append(sinks, fs)
	}
	if cfg.Audit.Stdout {
		sinks = append(sinks, audit.NewStreamSink(o.Stdout))
	}
	return s.wireAudit(ctx, cfg, o, bus, sinks)
}

func (s *Service) buildNotifications(ctx context.Context, cfg *config.Config, o BuildOptions, bus *events.Bus, r config.Resolver, catalog *inventory.Catalog) error {
	n := cfg.Notifications
	if len(n.Receivers) == 0 {
		return nil
	}
	receivers := map[string]notify.Notifier{}
	for _, rc := range n.Receivers {
		switch rc.Kind {
		case config.ReceiverTerminal:
			receivers[rc.Name] = terminal.New(o.Stdout)
		case config.ReceiverLog:
			receivers[rc.Name] = logNotifier{log: o.Logger}
		case config.ReceiverSlack:
			if n.Slack == nil {
				return fmt.Errorf("notifications.receivers %q: kind slack needs notifications.slack", rc.Name)
			}
			sc := notifyslack.Config{APIURL: n.Slack.APIURL, Channel: firstNonEmpty(rc.Channel, n.Slack.Channel)}
			var err error
			if !n.Slack.Token.IsZero() {
				if sc.Token, err = r.Resolve(ctx, n.Slack.Token); err != nil {
					return fmt.Errorf("notifications.slack.token: %w", err)
				}
			}
			if !n.Slack.WebhookURL.IsZero() {
				if sc.WebhookURL, err = r.Resolve(ctx, n.Slack.WebhookURL); err != nil {
					return fmt.Errorf("notifications.slack.webhook_url: %w", err)
				}
			}
			sn, err := notifyslack.New(sc)
			if err != nil {
				return fmt.Errorf("notifications.receivers %q: %w", rc.Name, err)
			}
			receivers[rc.Name] = sn
		}
	}
	var routes []notify.Route
	for _, rc := range n.Routes {
		rt := notify.Route{Receiver: rc.Receiver, Severities: rc.Match.Severities, Steps: rc.Match.Steps,
			Outcomes: rc.Match.Outcomes, Causes: rc.Match.Causes, Digest: rc.Digest, Stop: !rc.Continues()}
		for _, e := range rc.Match.Environments {
			rt.Environments = append(rt.Environments, string(e))
		}
		for _, m := range rc.Mentions {
			if m == config.MentionOwners {
				rt.MentionOwners = true
			} else if id, ok := n.People[m]; ok {
				rt.Mentions = append(rt.Mentions, id)
			}
		}
		routes = append(routes, rt)
	}
	nm, err := notify.NewPrometheusMetrics(s.Metrics.Registry)
	if err != nil {
		return err
	}
	disp, err := notify.NewDispatcher(notify.Config{
		Receivers: receivers, Routes: routes, DedupWindow: n.DedupWindow.Std(), DigestInterval: n.DigestInterval.Std(),
		Clock: o.Clock, Logger: o.Logger, Metrics: nm, Owners: ownerMentions(catalog, cfg.ManagedSecrets(), n.People),
	})
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	s.closers = append(s.closers, disp.Close)
	bus.Subscribe(disp)
	return nil
}

// ownerMentions gives the Slack ids of a managed secret's owners, found in
// notifications.people (owners not listed there are not mentioned). It asks
// the catalog first, which knows discovered secrets and their tags, and the
// declared secrets before the catalog's first refresh.
func ownerMentions(catalog *inventory.Catalog, declared []inventory.ManagedSecret, people map[string]string) func(string) []string {
	return func(name string) []string {
		var owners []string
		if e, ok := catalog.Get(name); ok {
			owners = e.Managed.Owners
		} else if i := slices.IndexFunc(declared, func(m inventory.ManagedSecret) bool { return m.Name == name }); i >= 0 {
			owners = declared[i].Owners
		}
		var ids []string
		for _, o := range owners {
			if id, ok := people[o]; ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return ids
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// buildEventBridge publishes rotation events for consumers to each
// environment's bus, when one is configured.
func (s *Service) buildEventBridge(ctx context.Context, cfg *config.Config, o BuildOptions, bus *events.Bus) error {
	apis, buses := map[string]eventbridge.API{}, map[string]string{}
	attempts := 0
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		if ec.EventBridge == nil {
			continue
		}
		api, err := eventbridge.NewClient(ctx, eventbridge.ClientConfig{Region: ec.AWS.Region, Endpoint: ec.EventBridge.Endpoint,
			Profile: ec.AWS.Profile, RoleARN: ec.AWS.RoleARN, ExternalID: ec.AWS.ExternalID, Credentials: o.AWSCredentials})
		if err != nil {
			return fmt.Errorf("environments.%s.eventbridge: %w", env, err)
		}
		apis[string(env)], buses[string(env)] = api, ec.EventBridge.Bus
		attempts = max(attempts, ec.EventBridge.Attempts)
	}
	if len(apis) == 0 {
		return nil
	}
	pub, err := eventbridge.New(eventbridge.Config{APIs: apis, Buses: buses, Attempts: attempts, Clock: o.Clock,
		Logger: o.Logger, Registerer: s.Metrics.Registry})
	if err != nil {
		return err
	}
	s.closers = append(s.closers, pub.Close)
	bus.Subscribe(pub)
	return nil
}
