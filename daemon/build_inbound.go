// Wiring of the inbound doors: security-event receivers, the Slack command
// and the readiness checks the HTTP API serves.

package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/inventory"
	notifyslack "github.com/lakirotator/lakirotator/notify/slack"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/securityevents"
)

func (s *Service) buildReceivers(ctx context.Context, cfg *config.Config, o BuildOptions, stores map[lakiconnect.Environment]secretstore.Store, bus *events.Bus, r config.Resolver) (map[string]http.Handler, error) {
	mounts := map[string]http.Handler{}
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		for _, m := range ec.LakiConnect.MasterMerchants {
			w := m.SecurityWebhook
			if w == nil {
				continue
			}
			rcv, err := securityevents.New(securityevents.Options{
				Environment: env, MasterMerchants: []string{m.ID},
				Secrets: newStoreSigningSecrets(stores[env], w.Secret, o.Clock),
				Handle:  s.Daemon.HandleSecurityEvent, Record: s.Daemon.RecordSecurityEvent,
				Clock: o.Clock, Events: bus, Logger: o.Logger,
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
		mounts["POST /v1/slack/commands"] = &notifyslack.SlashCommandHandler{
			SigningSecret: signing, AllowedUsers: sl.AllowedUsers, Clock: o.Clock, Audit: bus, Logger: o.Logger,
			Trigger: func(ctx context.Context, req notifyslack.TriggerRequest) error {
				_, err := s.Daemon.trigger(ctx, httpapi.TriggerRequest{
					Secret: req.Secret, Owner: req.Owner, Cause: req.Cause, Reason: req.Reason, Requester: req.Actor, // a verified Slack user id; the source says it is Slack's
				}, events.SourceSlack, firstNonEmpty(req.TriggerID, newTriggerID()))
				return err
			},
		}
	}
	return mounts, nil
}

func (s *Service) readiness(cfg *config.Config, merchants *lakiconnect.Merchants) []httpapi.ReadinessCheck {
	var checks []httpapi.ReadinessCheck
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		store := s.Envs[env].Store
		checks = append(checks, httpapi.ReadinessCheck{Name: "store:" + string(env), Check: func(ctx context.Context) error {
			stop := errors.New("enough")
			err := store.List(ctx, []secretstore.TagFilter{{Key: inventory.TagManaged}}, func(secretstore.Secret) error { return stop })
			if errors.Is(err, stop) {
				return nil
			}
			return err
		}})
		for _, m := range ec.LakiConnect.MasterMerchants {
			checks = append(checks, httpapi.ReadinessCheck{Name: "lakiconnect:" + string(env) + ":" + m.ID, Check: func(ctx context.Context) error {
				c, err := merchants.Client(env, m.ID)
				if err != nil {
					return err
				}
				_, err = c.WhoAmI(ctx)
				return err
			}})
		}
	}
	if s.audit != nil {
		checks = append(checks, httpapi.ReadinessCheck{Name: "audit", Check: s.audit.Check})
	}
	return checks
}
