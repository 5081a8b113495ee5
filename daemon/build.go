package daemon

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/audit/anchor"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/metrics"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/scan"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
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
	Stores map[laki.Environment]secretstore.Store
	Hooks  rotator.Hooks
	// CallCounters receive every Secrets Manager call (benchmarks, tests).
	CallCounters map[laki.Environment]*secretsmanager.CallCounter
	// AuditFileWriter wraps the audit file's writes (tests play a full disk).
	AuditFileWriter func(io.Writer) io.Writer
	// RetireInterval and RefreshInterval override the daemon's defaults.
	RetireInterval, RefreshInterval time.Duration
}

// Service is a built daemon with its HTTP listener and sinks.
type Service struct {
	Daemon    *Daemon
	Handler   http.Handler
	Metrics   *metrics.Metrics
	Policies  *policies.Set
	Envs      map[laki.Environment]*Env
	Scans     *Scans
	cfg       *config.Config
	log       *slog.Logger
	receivers []*securityevents.Receiver
	closers   []func(context.Context) error
	refusals  *inbound.Refusals
	ready     *httpapi.Readiness
	// metricsHandler serves /metrics on http.metrics.listen; nil when
	// metrics share the API's listener.
	metricsHandler http.Handler
	audit          *audit.Writer   // nil when no audit sink is configured
	anchor         *anchor.Shipper // nil without audit.anchor

	anchorRunning atomic.Bool
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
	s := &Service{cfg: cfg, log: o.Logger, Metrics: metrics.New(metricOpts...), Envs: map[laki.Environment]*Env{}}
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
	// (The bus's event logger writes the log line of each record.)
	s.refusals = inbound.NewRefusals(inbound.RefusalsOptions{Events: bus, Counter: s.Metrics, Clock: o.Clock})

	stores, err := s.buildStores(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	resolver := config.LocalResolver{LookupEnv: o.LookupEnv, AWS: storeResolver(stores)}

	calls := newRecentCalls(o.Clock)
	clients := map[laki.Environment]*lakiconnect.Client{}
	keys := map[laki.Merchant]lakiconnect.KeySource{}
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		if len(ec.LakiConnect.MasterMerchants) == 0 {
			return nil, fmt.Errorf("environments.%s.lakiconnect.master_merchants: at least one is needed", env)
		}
		for _, m := range ec.LakiConnect.MasterMerchants {
			keys[laki.Merchant{Environment: env, MasterMerchantID: m.ID}] = rotator.NewManagementKeySource(stores[env], m.ManagementKey.Secret, time.Minute, o.Clock)
		}
		// The client is built with the first merchant's key; every call
		// goes out with the key of the merchant it acts for. Reading it
		// now also fails fast when a management key is unreadable.
		firstMM := ec.LakiConnect.MasterMerchants[0]
		first, err := keys[laki.Merchant{Environment: env, MasterMerchantID: firstMM.ID}].Key(ctx)
		if err != nil {
			return nil, fmt.Errorf("environments.%s.lakiconnect: management key %q: %w", env, firstMM.ManagementKey.Secret, err)
		}
		c, err := lakiconnect.NewClient(lakiconnect.Config{
			BaseURL: ec.LakiConnect.BaseURL, APIKey: first, Timeout: ec.LakiConnect.Timeout.Std(), Logger: o.Logger, RootCAs: o.RootCAs,
			RateLimit: ec.LakiConnect.RateLimit, // per management key: each merchant's client has its own
			OnRequest: func(method, route string, status int, err error) {
				s.Metrics.ObserveCall("lakiconnect", method+" "+route, callStatus(status, err))
				calls.observe(env, status, err)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("environments.%s.lakiconnect: %w", env, err)
		}
		clients[env] = c
	}
	merchants, err := lakiconnect.NewMerchants(clients, keys)
	if err != nil {
		return nil, err
	}
	issuers := rotator.Issuers(merchants.Client, merchants.InvalidateManagementKey)

	for _, env := range cfg.EnvironmentNames() {
		eng, err := rotator.New(rotator.Config{
			Store: stores[env], Issuers: issuers, Verifier: webhooksig.Verifier{Clock: o.Clock},
			Clock: o.Clock, Events: bus, Logger: o.Logger.With("environment", string(env)),
			Workers: cfg.Engine.Workers, MaxFailures: cfg.Engine.MaxFailures,
			Backoff:      rotator.Backoff{Base: cfg.Engine.BackoffInitial.Std(), Max: cfg.Engine.BackoffMax.Std()},
			OrphanMargin: cfg.Sweep.SafetyMargin.Std(), Hooks: o.Hooks,
		})
		if err != nil {
			return nil, err
		}
		s.Envs[env] = &Env{Name: env, Store: stores[env], Engine: eng, Issuers: issuers}
	}

	listers := map[laki.Environment]inventory.Lister{}
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
		KeepTags: []string{rotator.TagFailedAttempts, rotator.TagLastFailure, rotator.TagNextAttempt, rotator.TagFailingVersion,
			rotator.TagCreateAttempt, TagIntent, TagIntentBy, TagIntentDone}}

	lease, err := buildLease(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	d, err := New(Parts{
		Clock: o.Clock, Logger: o.Logger, Envs: s.Envs, Catalog: catalog, Policies: pols, Bus: bus,
		RetireInterval: o.RetireInterval, RefreshInterval: firstPositive(o.RefreshInterval, cfg.Discovery.RefreshInterval.Std()),
		Lease:         lease,
		EscalateAfter: cfg.Engine.EscalateAfter.Std(),
	})
	if err != nil {
		return nil, err
	}
	s.Daemon = d
	scanMetrics, err := scan.NewMetrics(s.Metrics.Registry)
	if err != nil {
		return nil, err
	}
	u401, u403, uWindow := cfg.AuthWatch.Unattributed.Thresholds()
	s.Scans = newScans(d, pols, merchants, scanMetrics, policies.Alerts{Unauthorized401: u401, Forbidden403: u403, Window: uWindow})
	s.Scans.own = ownCredentials(cfg, pols)

	if err := s.buildAudit(ctx, cfg, o, bus); err != nil {
		return nil, err
	}
	if err := s.buildNotifications(ctx, cfg, o, bus, resolver, catalog); err != nil {
		return nil, err
	}
	if err := s.buildEventBridge(ctx, cfg, o, bus); err != nil {
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
	if mounts["/ui/"], err = s.buildDashboard(cfg, o, tokens); err != nil {
		return nil, err
	}
	every := cfg.HTTP.ReadinessEvery()
	s.ready = httpapi.NewReadiness(s.readiness(cfg, merchants, calls, every), every, o.Clock)
	api := httpapi.Options{
		AllowedClients: cfg.HTTP.AllowedPrefixes(),
		Controller:     d, Tokens: tokens, ClientCAs: cfg.HTTP.TLS.ClientCAs(), ClientCerts: clientCerts(cfg.HTTP.TLS.Clients),
		Metrics: s.Metrics.Handler(), MetricsAuth: cfg.HTTP.Metrics.RequireAuth, Events: bus, Refusals: s.refusals,
		Logger: o.Logger, MaxBodyBytes: cfg.HTTP.MaxBodyBytes, Mounts: mounts, Clock: o.Clock, Ready: s.ready,
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
	if err := checkPoliciesDir(cfg); err != nil {
		return nil, err
	}
	pols, err := policies.LoadDir(cfg.PoliciesDir)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(config.WithKnownPolicies(func(n string) bool { _, ok := pols.Get(n); return ok })); err != nil {
		return nil, err
	}
	return pols, nil
}

func firstPositive(ds ...time.Duration) time.Duration {
	for _, d := range ds {
		if d > 0 {
			return d
		}
	}
	return 0
}

func (s *Service) buildStores(ctx context.Context, cfg *config.Config, o BuildOptions) (map[laki.Environment]secretstore.Store, error) {
	stores := map[laki.Environment]secretstore.Store{}
	var local *localstore.Store
	// One set of limiters per AWS account and region, found from the
	// credentials each entry reaches: entries in one account share its quota.
	quotas := secretsmanager.NewQuotas()
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
		if cfg.Store.Kind == config.StoreVault {
			st, err := buildVaultStore(ctx, env, &ec, o)
			if err != nil {
				return nil, err
			}
			stores[env] = st
			continue
		}
		counter := o.CallCounters[env]
		if counter == nil {
			counter = secretsmanager.NewCallCounter(secretsmanager.CallCounterOptions{})
		}
		st, err := secretsmanager.New(ctx, secretsmanager.Config{
			Region: ec.AWS.Region, Endpoint: ec.AWS.Endpoint, Profile: ec.AWS.Profile, RoleARN: ec.AWS.RoleARN, ExternalID: ec.AWS.ExternalID,
			Credentials: o.AWSCredentials, MaxAttempts: ec.AWS.MaxAttempts,
			Limits: secretsmanager.Limits{ReadRate: ec.AWS.ReadRate, WriteRate: ec.AWS.WriteRate},
		}, secretsmanager.WithCallCounter(counter), secretsmanager.WithQuotas(quotas))
		if err != nil {
			return nil, fmt.Errorf("environments.%s.aws: %w", env, err)
		}
		stores[env] = st
	}
	return stores, nil
}

// storeResolver resolves aws_secret references from the environment's
// store: the AWSCURRENT value, or the secret field of a stored credential.
func storeResolver(stores map[laki.Environment]secretstore.Store) config.Resolver {
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
