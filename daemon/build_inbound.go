// Wiring of the inbound doors: security-event receivers and the Slack
// command (readiness and the metrics listener are in doors.go).

package daemon

import (
	"context"
	"fmt"
	"net/http"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inbound/slackcmd"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/securityevents"
)

func (s *Service) buildReceivers(ctx context.Context, cfg *config.Config, o BuildOptions, stores map[laki.Environment]secretstore.Store, bus *events.Bus, r config.Resolver) (map[string]http.Handler, error) {
	mounts := map[string]http.Handler{}
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		for _, m := range ec.LakiConnect.MasterMerchants {
			w := m.SecurityWebhook
			if w == nil {
				continue
			}
			held := newStoreSigningSecrets(stores[env], w.Secret, o.Clock)
			bus.Subscribe(held)
			rcv, err := securityevents.New(securityevents.Options{
				Environment: env, MasterMerchants: []string{m.ID}, Secrets: held,
				Handle: s.Daemon.HandleSecurityEvent, Record: s.Daemon.RecordSecurityEvent,
				Clock: o.Clock, Events: bus, Refusals: s.refusals, Logger: o.Logger,
			})
			if err != nil {
				return nil, err
			}
			path := w.Path
			if path == "" {
				path = config.SecurityWebhookPath(env, m.ID)
			}
			mounts["POST "+path] = rcv
			s.receivers = append(s.receivers, rcv)
		}
	}
	if sl := cfg.Notifications.Slack; sl != nil && !sl.SigningSecret.IsZero() {
		signing, err := r.Resolve(ctx, sl.SigningSecret)
		if err != nil {
			return nil, fmt.Errorf("notifications.slack.signing_secret: %w", err)
		}
		mounts["POST /v1/slack/commands"] = &slackcmd.Handler{
			SigningSecret: signing, AllowedUsers: sl.AllowedUsers, Clock: o.Clock, Logger: o.Logger,
			Triggers: s.Daemon, Refusals: s.refusals,
		}
	}
	return mounts, nil
}
