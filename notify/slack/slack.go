// Package slack delivers notifications to Slack in Block Kit, through a bot
// token (chat.postMessage, with one thread per emergency) or an incoming
// webhook. It only sends: the inbound /rotate command is inbound/slackcmd.
package slack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/endpoint"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/notify"
)

// Config chooses how to reach Slack: Token and Channel for the Web API, or WebhookURL.
type Config struct {
	Token      secret.Value // bot token (xoxb-…)
	Channel    string       // channel id or name for chat.postMessage
	WebhookURL secret.Value // incoming webhook; its path is a credential
	APIURL     string       // Web API base URL ending in "/"; tests point it at a local server
	HTTPClient *http.Client
}

// Notifier posts notifications to one Slack channel.
type Notifier struct {
	client  *slack.Client // nil in webhook mode
	channel string
	webhook secret.Value
	http    *http.Client

	mu      sync.Mutex
	threads map[string]string // trigger id -> ts of the thread's first message
	order   []string          // trigger ids, oldest first, to forget old threads
}

const maxThreads = 1000

// New checks cfg and returns a Notifier.
func New(cfg Config) (*Notifier, error) {
	httpClient := cfg.HTTPClient
	if httpClient == nil {
		httpClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
		}}
	}
	n := &Notifier{channel: cfg.Channel, webhook: cfg.WebhookURL, http: httpClient, threads: map[string]string{}}
	switch {
	case !cfg.Token.IsZero() && !cfg.WebhookURL.IsZero():
		return nil, errors.New("slack: set either token or webhook_url, not both")
	case !cfg.Token.IsZero():
		if cfg.Channel == "" {
			return nil, errors.New("slack: token set but channel is empty")
		}
		opts := []slack.Option{slack.OptionHTTPClient(httpClient)}
		if cfg.APIURL != "" {
			if _, err := endpoint.Parse(cfg.APIURL); err != nil {
				return nil, fmt.Errorf("slack: api_url: %w", err)
			}
			opts = append(opts, slack.OptionAPIURL(cfg.APIURL))
		}
		n.client = slack.New(cfg.Token.Reveal(), opts...)
	case !cfg.WebhookURL.IsZero():
		if _, err := endpoint.Parse(cfg.WebhookURL.Reveal()); err != nil {
			// The URL is a credential: name the problem, not the URL.
			return nil, fmt.Errorf("slack: webhook_url: %w", err)
		}
	default:
		return nil, errors.New("slack: neither token nor webhook_url is set")
	}
	return n, nil
}

// Notify posts n. Emergencies with a trigger id go into one thread per trigger.
func (s *Notifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	blocks := Blocks(n)
	text := fallbackText(n)
	if s.client == nil {
		msg := &slack.WebhookMessage{Text: text, Blocks: &slack.Blocks{BlockSet: blocks}}
		err := slack.PostWebhookCustomHTTPContext(ctx, s.webhook.Reveal(), s.http, msg)
		if err != nil {
			return retryable(err), s.scrub(err)
		}
		return false, nil
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionBlocks(blocks...)}
	thread := ""
	if n.Emergency() && n.TriggerID != "" {
		s.mu.Lock()
		thread = s.threads[n.TriggerID]
		s.mu.Unlock()
		if thread != "" {
			opts = append(opts, slack.MsgOptionTS(thread))
			if n.Outcome == events.OutcomeFailed || n.Severity == events.SeverityCritical {
				opts = append(opts, slack.MsgOptionBroadcast()) // failures also show in the channel
			}
		}
	}
	_, ts, err := s.client.PostMessageContext(ctx, s.channel, opts...)
	if err != nil {
		return retryable(err), fmt.Errorf("slack: chat.postMessage to %s: %w", s.channel, err)
	}
	if thread == "" && n.Emergency() && n.TriggerID != "" && ts != "" {
		s.remember(n.TriggerID, ts)
	}
	return false, nil
}

func (s *Notifier) remember(triggerID, ts string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.threads[triggerID]; ok {
		return
	}
	s.threads[triggerID] = ts
	s.order = append(s.order, triggerID)
	if len(s.order) > maxThreads {
		delete(s.threads, s.order[0])
		s.order = s.order[1:]
	}
}

// scrub keeps the webhook URL (a credential) out of an error: net/http
// errors quote the URL they failed on.
func (s *Notifier) scrub(err error) error {
	msg := err.Error()
	if u := s.webhook.Reveal(); u != "" {
		msg = strings.ReplaceAll(msg, u, secret.Redacted)
		if parsed, perr := url.Parse(u); perr == nil && len(parsed.Path) > 1 {
			msg = strings.ReplaceAll(msg, parsed.Path, "/"+secret.Redacted)
		}
	}
	return fmt.Errorf("slack: webhook: %s", msg)
}

// retryable: rate limits, server errors and network trouble are worth
// another try; auth, channel and request errors are not.
func retryable(err error) bool {
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return true
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return sc.Retryable()
	}
	var api slack.SlackErrorResponse
	if errors.As(err, &api) {
		switch api.Err {
		case "ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout":
			return true
		}
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var urlErr *url.Error
	return errors.As(err, &urlErr)
}
