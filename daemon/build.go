package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/inbound/slackcmd"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/metrics"
	"github.com/lakirotator/lakirotator/notify"
	notifyslack "github.com/lakirotator/lakirotator/notify/slack"
	"github.com/lakirotator/lakirotator/notify/terminal"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/scan"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/rotator/lakiissuer"
	"github.com/lakirotator/lakirotator/rotator/schedule"
	"github.com/lakirotator/lakirotator/securityevents"
)

// BuildOptions are what the config file does not say: the process's
// surroundings, and seams for the demo and tests.
type BuildOptions struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// Stdout receives terminal notifications and, when configured, audit records.
	Stdout    io.Writer
	LookupEnv func(string) (string, bool)
	// RootCAs are extra roots to trust for LakiConnect (a test server's).
	RootCAs *x509.CertPool
	// AWSCredentials replace the SDK's default chain (moto in tests).
	AWSCredentials aws.CredentialsProvider
	// Stores, when set for an environment, is used instead of building one.
	Stores map[lakiconnect.Environment]secretstore.Store
	Hooks  rotator.Hooks
	// CallCounters receive every Secrets Manager call (benchmarks, tests).
	CallCounters map[lakiconnect.Environment]*secretsmanager.CallCounter
	// RetireInterval and RefreshInterval override the daemon's defaults.
	RetireInterval, RefreshInterval time.Duration
}

// Service is a built daemon with its HTTP listener and sinks.
type Service struct {
	Daemon    *Daemon
	Handler   http.Handler
	Metrics   *metrics.Metrics
	Policies  *policies.Set
	Envs      map[lakiconnect.Environment]*Env
	Scans     *Scans
	cfg       *config.Config
	log       *slog.Logger
	receivers []*securityevents.Receiver
	refusals  *inbound.Refusals
	ready     *httpapi.Readiness
	clientCAs *x509.CertPool
	// metricsHandler serves /metrics on http.metrics.listen; nil when
	// metrics share the API's listener.
	metricsHandler http.Handler
	closers        []func(context.Context) error
}

// Build turns a validated config into a service. Nothing is started.
func Build(ctx context.Context, cfg *config.Config, o BuildOptions) (svc *Service, err error) {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	var metricOpts []metrics.Option
	if cfg.HTTP.Metrics.PerSecretLabels {
		metricOpts = append(metricOpts, metrics.WithSecretLabels(cfg.HTTP.Metrics.SecretLabelLimit()))
	}
	s := &Service{cfg: cfg, log: o.Logger, Metrics: metrics.New(metricOpts...), Envs: map[lakiconnect.Environment]*Env{}}
	defer func() {
		if err != nil {
			_ = s.Close(context.Background())
		}
	}()

	pols, err := CheckConfig(cfg)
	if err != nil {
		return nil, err
	}
	s.Policies = pols

	bus := &events.Bus{}
	bus.Subscribe(s.Metrics)
	bus.Subscribe(eventLogger{log: o.Logger})
	// Every door reports its refusals here: counted one by one, recorded
	// (audit, log) once per source and reason a minute.
	s.refusals = inbound.NewRefusals(inbound.RefusalsOptions{Events: bus, Counter: s.Metrics, Clock: o.Clock, Logger: o.Logger})

	stores, err := s.buildStores(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	resolver := config.LocalResolver{LookupEnv: o.LookupEnv, AWS: storeResolver(stores)}

	calls := newRecentCalls(o.Clock)
	clients := map[lakiconnect.Environment]*lakiconnect.Client{}
	keys := map[lakiissuer.Target]lakiissuer.KeySource{}
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		if len(ec.LakiConnect.MasterMerchants) == 0 {
			return nil, fmt.Errorf("environments.%s.lakiconnect.master_merchants: at least one is needed", env)
		}
		for _, m := range ec.LakiConnect.MasterMerchants {
			keys[lakiissuer.Target{Environment: env, MasterMerchantID: m.ID}] = rotator.NewManagementKeySource(stores[env], m.ManagementKey.Secret, time.Minute, o.Clock)
		}
		// The client is built with the first merchant's key; every call
		// goes out with the key of the merchant it acts for. Reading it
		// now also fails fast when a management key is unreadable.
		firstMM := ec.LakiConnect.MasterMerchants[0]
		first, err := keys[lakiissuer.Target{Environment: env, MasterMerchantID: firstMM.ID}].Key(ctx)
		if err != nil {
			return nil, fmt.Errorf("environments.%s.lakiconnect: management key %q: %w", env, firstMM.ManagementKey.Secret, err)
		}
		c, err := lakiconnect.NewClient(lakiconnect.Config{
			BaseURL: ec.LakiConnect.BaseURL, APIKey: first, Timeout: ec.LakiConnect.Timeout.Std(), Logger: o.Logger, RootCAs: o.RootCAs,
			OnRequest: func(method, path string, status int, err error) {
				s.Metrics.ObserveCall("lakiconnect", method+" "+routeOf(path), callStatus(status, err))
				calls.observe(env, status, err)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("environments.%s.lakiconnect: %w", env, err)
		}
		clients[env] = c
	}
	issuers := lakiissuer.NewSource(clients, keys)

	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		eng, err := rotator.New(rotator.Config{
			Store: stores[env], Issuers: issuers, Verifier: webhooksig.Verifier{Clock: o.Clock},
			Clock: o.Clock, Events: bus, Logger: o.Logger.With("environment", string(env)),
			Workers: cfg.Engine.Workers, MaxFailures: cfg.Engine.MaxFailures,
			Backoff:   rotator.Backoff{Base: cfg.Engine.BackoffInitial.Std(), Max: cfg.Engine.BackoffMax.Std()},
			RateLimit: rate.Limit(ec.LakiConnect.RateLimit), OrphanMargin: cfg.Sweep.SafetyMargin.Std(), Hooks: o.Hooks,
		})
		if err != nil {
			return nil, err
		}
		s.Envs[env] = &Env{Name: env, Store: stores[env], Engine: eng, Issuers: issuers}
	}

	listers := map[lakiconnect.Environment]inventory.Lister{}
	for env, st := range stores {
		listers[env] = st
	}
	var extraFilters []secretstore.TagFilter
	for _, f := range cfg.DiscoveryTagFilters() {
		if f.Key != inventory.TagManaged {
			extraFilters = append(extraFilters, f)
		}
	}
	catalog := &inventory.Catalog{Stores: listers, Declared: cfg.ManagedSecrets(), Discover: cfg.Discovery.Enabled, Filters: extraFilters,
		KeepTags: []string{rotator.TagFailedAttempts, rotator.TagLastFailure, rotator.TagNextAttempt, rotator.TagFailingVersion}}

	d, err := New(Parts{
		Clock: o.Clock, Logger: o.Logger, Envs: s.Envs, Catalog: catalog, Policies: pols, Bus: bus,
		RetireInterval: o.RetireInterval, RefreshInterval: firstPositive(o.RefreshInterval, cfg.Discovery.RefreshInterval.Std()),
	})
	if err != nil {
		return nil, err
	}
	s.Daemon = d
	scanMetrics, err := scan.NewMetrics(s.Metrics.Registry)
	if err != nil {
		return nil, err
	}
	s.Scans = newScans(d, pols, clients, keys, scanMetrics)

	if err := s.buildAudit(cfg, o, bus); err != nil {
		return nil, err
	}
	if err := s.buildNotifications(ctx, cfg, o, bus, resolver); err != nil {
		return nil, err
	}
	mounts, err := s.buildReceivers(ctx, cfg, o, stores, bus, resolver)
	if err != nil {
		return nil, err
	}
	tokens, err := config.NewTokenSet(ctx, cfg.HTTP.Tokens, resolver)
	if err != nil {
		return nil, fmt.Errorf("http.tokens: %w", err)
	}
	var clientCAs *x509.CertPool
	if cfg.HTTP.TLS.ClientCAFile != "" {
		pem, err := os.ReadFile(cfg.HTTP.TLS.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("http.tls.client_ca_file: %w", err)
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.tls.client_ca_file %s holds no PEM certificate", cfg.HTTP.TLS.ClientCAFile)
		}
	}
	var allowed []netip.Prefix
	for _, c := range cfg.HTTP.AllowedClients {
		p, err := parsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("http.allowed_clients: %w", err)
		}
		allowed = append(allowed, p)
	}
	s.clientCAs = clientCAs
	every := cfg.HTTP.ReadinessEvery()
	s.ready = httpapi.NewReadiness(s.readiness(cfg, issuers, calls, every), every, o.Clock)
	api := httpapi.Options{
		AllowedClients: allowed,
		Controller:     d, Tokens: tokens, ClientCAs: clientCAs, ClientCerts: clientCerts(cfg.HTTP.TLS.Clients),
		Metrics: s.Metrics.Handler(), MetricsAuth: cfg.HTTP.Metrics.RequireAuth, Events: bus, Refusals: s.refusals,
		Logger: o.Logger, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Mounts: mounts, Now: o.Clock.Now, Ready: s.ready,
	}
	if cfg.HTTP.Metrics.Listen != "" {
		s.metricsHandler = httpapi.NewMetricsHandler(api)
		api.Metrics = nil
	}
	s.Handler = httpapi.NewHandler(api)
	return s, nil
}

// CheckConfig loads the config's policies and validates the config against
// them, touching nothing outside: what a reload checks before it stops the
// running service.
func CheckConfig(cfg *config.Config) (*policies.Set, error) {
	pols, err := policies.LoadDir(cfg.PoliciesDir)
	if err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	if err := cfg.Validate(config.WithKnownPolicies(func(n string) bool { _, ok := pols.Get(n); return ok })); err != nil {
		return nil, err
	}
	return pols, nil
}

// parsePrefix reads a CIDR, or a single address as a /32 (/128).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

func (s *Service) buildStores(ctx context.Context, cfg *config.Config, o BuildOptions) (map[lakiconnect.Environment]secretstore.Store, error) {
	stores := map[lakiconnect.Environment]secretstore.Store{}
	var local *localstore.Store
	for _, env := range cfg.EnvironmentNames() {
		if st, ok := o.Stores[env]; ok {
			stores[env] = st
			continue
		}
		if cfg.Store.Kind == "local" {
			if local == nil {
				ls, err := localstore.Open(cfg.Store.LocalPath, localstore.WithClock(o.Clock))
				if err != nil {
					return nil, fmt.Errorf("store.local_path: %w", err)
				}
				local = ls
			}
			stores[env] = local
			continue
		}
		ec, _ := cfg.Environment(env)
		counter := o.CallCounters[env]
		if counter == nil {
			counter = secretsmanager.NewCallCounter(secretsmanager.CallCounterOptions{})
		}
		st, err := secretsmanager.New(ctx, secretsmanager.Config{
			Region: ec.AWS.Region, Endpoint: ec.AWS.Endpoint, Profile: ec.AWS.Profile, RoleARN: ec.AWS.RoleARN, ExternalID: ec.AWS.ExternalID,
			Credentials: o.AWSCredentials, MaxAttempts: ec.AWS.MaxAttempts,
			Limits: secretsmanager.Limits{ReadRate: ec.AWS.ReadRate, WriteRate: ec.AWS.WriteRate},
		}, secretsmanager.WithCallCounter(counter))
		if err != nil {
			return nil, fmt.Errorf("environments.%s.aws: %w", env, err)
		}
		stores[env] = st
	}
	return stores, nil
}

// storeResolver resolves aws_secret references from the environment's
// store: the AWSCURRENT value, or the secret field of a stored credential.
func storeResolver(stores map[lakiconnect.Environment]secretstore.Store) config.Resolver {
	return config.ResolverFunc(func(ctx context.Context, ref config.SecretRef) (secret.Value, error) {
		st, ok := stores[ref.Environment]
		if !ok {
			return secret.Value{}, fmt.Errorf("%s: no store for environment %q: %w", ref, ref.Environment, config.ErrUnresolved)
		}
		v, err := st.Get(ctx, ref.AWSSecret, secretstore.ByStage(secretstore.StageCurrent))
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s: %w", ref, err)
		}
		if c, err := secretstore.DecodeCredential(ref.AWSSecret, v.Value); err == nil {
			return c.Secret, nil
		}
		return v.Value, nil
	})
}

func (s *Service) buildAudit(cfg *config.Config, o BuildOptions, bus *events.Bus) error {
	var sinks []audit.Sink
	if cfg.Audit.File != "" {
		fs, err := audit.OpenFileSink(cfg.Audit.File)
		if err != nil {
			return fmt.Errorf("audit.file: %w", err)
		}
		s.closers = append(s.closers, func(context.Context) error { return fs.Close() })
		sinks = append(sinks, fs)
	}
	if cfg.Audit.Stdout {
		sinks = append(sinks, audit.NewStreamSink(o.Stdout))
	}
	if len(sinks) > 0 {
		bus.Subscribe(audit.NewWriter(o.Clock, o.Logger, sinks...))
	}
	return nil
}

func (s *Service) buildNotifications(ctx context.Context, cfg *config.Config, o BuildOptions, bus *events.Bus, r config.Resolver) error {
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
			Outcomes: rc.Match.Outcomes, Causes: rc.Match.Causes, Digest: rc.Digest, Mention: mentions(rc.Mentions, n.People)}
		for _, e := range rc.Match.Environments {
			rt.Environments = append(rt.Environments, string(e))
		}
		routes = append(routes, rt)
	}
	nm, err := notify.NewPrometheusMetrics(s.Metrics.Registry)
	if err != nil {
		return err
	}
	disp, err := notify.NewDispatcher(notify.Config{
		Receivers: receivers, Routes: routes, DedupWindow: n.DedupWindow.Std(), DigestInterval: n.DigestInterval.Std(),
		Clock: o.Clock, Logger: o.Logger, Metrics: nm,
	})
	if err != nil {
		return fmt.Errorf("notifications: %w", err)
	}
	s.closers = append(s.closers, disp.Close)
	bus.Subscribe(disp)
	return nil
}

// mentions renders a route's mentions as Slack mentions: a person's Slack id
// from notifications.people, or the text as written (<!subteam^...>).
// "owners" (the secret's owners) cannot be resolved per route and is left
// to the message's owner line.
func mentions(names []string, people map[string]string) string {
	var out []string
	for _, n := range names {
		if n == config.MentionOwners {
			continue
		}
		if id, ok := people[n]; ok {
			out = append(out, "<@"+id+">")
			continue
		}
		out = append(out, n)
	}
	return strings.Join(out, " ")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func (s *Service) buildReceivers(ctx context.Context, cfg *config.Config, o BuildOptions, stores map[lakiconnect.Environment]secretstore.Store, bus *events.Bus, r config.Resolver) (map[string]http.Handler, error) {
	mounts := map[string]http.Handler{}
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		for _, m := range ec.LakiConnect.MasterMerchants {
			w := m.SecurityWebhook
			if w == nil {
				continue
			}
			held := &storeSigningSecrets{store: stores[env], secret: w.Secret, clock: o.Clock, ttl: signingSecretsTTL}
			bus.Subscribe(held)
			rcv, err := securityevents.New(securityevents.Options{
				Environment: env, MasterMerchants: []string{m.ID},
				Secrets: held,
				Handle:  s.Daemon.HandleSecurityEvent, Clock: o.Clock, Events: bus, Refusals: s.refusals, Logger: o.Logger,
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

// Run serves the HTTP API and runs the daemon until ctx ends, then shuts
// down in order: stop taking requests, finish the rotations in hand, flush
// notifications and audit.
func (s *Service) Run(ctx context.Context, ln net.Listener) error {
	rctx, cancelReceivers := context.WithCancel(context.Background())
	metricsDone, err := s.serveMetrics(rctx)
	if err != nil {
		cancelReceivers()
		return err
	}
	srv := &http.Server{Handler: s.Handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second}
	tlsCfg := s.cfg.HTTP.TLS
	serveErr := make(chan error, 1)
	go func() {
		var err error
		if tlsCfg.Enabled() {
			srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			if s.clientCAs != nil {
				// A certificate is verified when given; the API then
				// refuses a request that has neither an allow-listed
				// certificate nor a token (a token holder may have none).
				srv.TLSConfig.ClientCAs = s.clientCAs
				srv.TLSConfig.ClientAuth = tls.VerifyClientCertIfGiven
			}
			err = srv.ServeTLS(ln, tlsCfg.CertFile, tlsCfg.KeyFile)
		} else {
			err = srv.Serve(ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			serveErr <- err
		}
		close(serveErr)
	}()
	for _, r := range s.receivers {
		go r.Run(rctx)
	}
	refusalsDone := make(chan struct{})
	go func() { defer close(refusalsDone); s.refusals.Run(rctx) }()
	go s.ready.Run(rctx)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	daemonErr := make(chan error, 1)
	go func() { daemonErr <- s.Daemon.Run(runCtx) }()
	loops := s.startLoops(runCtx)

	select {
	case err = <-daemonErr:
		cancel()
	case err = <-serveErr:
		cancel()
		<-daemonErr
	}
	loops.Wait()
	shutdown, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	_ = srv.Shutdown(shutdown)
	cancelReceivers()
	<-refusalsDone // the last summaries reach the audit before it closes
	<-metricsDone
	if cerr := s.Close(shutdown); err == nil {
		err = cerr
	}
	return err
}

// Close flushes notifications and closes the audit file.
func (s *Service) Close(ctx context.Context) error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		if err := s.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// eventLogger writes every lifecycle event as one structured log line; the
// Terraform alarms filter on these fields.
type eventLogger struct{ log *slog.Logger }

func (l eventLogger) Emit(ctx context.Context, e events.Event) {
	// Errors are failures; critical but successful (an emergency accepted,
	// an alert raised) is a warning, so error-level log alarms count failures.
	level := slog.LevelInfo
	switch {
	case e.Outcome == events.OutcomeFailed:
		level = slog.LevelError
	case e.Severity == events.SeverityCritical || e.Outcome == events.OutcomeRefused || e.Outcome == events.OutcomeWarning:
		level = slog.LevelWarn
	}
	attrs := []any{"step", e.Step, "outcome", e.Outcome, "severity", e.Severity}
	for _, kv := range [][2]string{
		{"secret", e.Secret}, {"kind", e.Kind}, {"environment", e.Environment}, {"cause", string(e.Cause)},
		{"source", string(e.Source)}, {"actor", e.Actor}, {"trigger_id", e.TriggerID}, {"version_id", e.VersionID},
		{"key_id", e.KeyID}, {"previous_key_id", e.PreviousKeyID}, {"reason", e.Reason}, {"error", e.Error},
	} {
		if kv[1] != "" {
			attrs = append(attrs, kv[0], kv[1])
		}
	}
	if r := e.Details["reason"]; r != "" {
		attrs = append(attrs, "reason_code", r)
	}
	l.log.Log(ctx, level, "lifecycle event", attrs...)
}

// logNotifier is the "log" receiver kind: notifications as log lines.
type logNotifier struct{ log *slog.Logger }

func (l logNotifier) Notify(ctx context.Context, n notify.Notification) (bool, error) {
	l.log.InfoContext(ctx, "notification", "title", n.Title, "secret", n.Secret, "environment", n.Environment, "severity", n.Severity)
	return false, nil
}

func routeOf(path string) string {
	// Collapse ids so metric labels stay few: /api_keys/key_x/expire → /api_keys/{id}/expire.
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, "key_") || strings.HasPrefix(p, "we_") || strings.HasPrefix(p, "whs_") {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}

func callStatus(status int, err error) string {
	if err != nil && status == 0 {
		return "error"
	}
	return fmt.Sprint(status)
}

// Shutdown stops the engines (finishing rotations in hand) and closes the
// sinks; for one-shot CLI use, where Run was never called.
func (s *Service) Shutdown(ctx context.Context) error {
	for _, env := range s.Envs {
		env.Engine.Close()
	}
	s.Daemon.wg.Wait()
	return s.Close(ctx)
}

// startLoops runs the orphan sweep and the policy scan on their schedules
// and the 401/403 watch on its interval, until ctx ends.
func (s *Service) startLoops(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	d := s.Daemon
	var plans []schedule.Plan
	fire := map[string]func(context.Context){}
	if spec := s.cfg.Sweep.Schedule; spec != "" {
		if sch, err := schedule.Parse(spec, time.UTC); err == nil {
			plans = append(plans, schedule.Plan{Name: "sweep", Schedule: sch})
			fire["sweep"] = func(ctx context.Context) {
				if _, err := d.Sweep(ctx); err != nil {
					s.log.Error("orphan sweep failed", "err", err)
				}
			}
		}
	}
	if spec := s.cfg.PolicyScan.Schedule; spec != "" {
		if sch, err := schedule.Parse(spec, time.UTC); err == nil {
			plans = append(plans, schedule.Plan{Name: "policy-scan", Schedule: sch})
			fire["policy-scan"] = func(ctx context.Context) {
				if _, err := s.Scans.monitor.ScanOnce(ctx); err != nil {
					s.log.Error("policy scan failed", "err", err)
				}
			}
		}
	}
	if len(plans) > 0 {
		sched := &schedule.Scheduler{Clock: d.clock, Plans: plans, Fire: func(ctx context.Context, f schedule.Firing) { fire[f.Plan](ctx) }}
		wg.Add(1)
		go func() { defer wg.Done(); sched.Run(ctx) }()
	}
	if every := s.cfg.AuthWatch.PollInterval.Std(); every > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.every(ctx, every, func(ctx context.Context) {
				idx, err := d.readKeyIndex(ctx)
				if err != nil {
					s.log.Error("401/403 watch: reading the managed keys failed", "err", err)
					return
				}
				s.Scans.remember(idx)
				s.Scans.watcher.Poll(ctx)
			})
		}()
	}
	return &wg
}
