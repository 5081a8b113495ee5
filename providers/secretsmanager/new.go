package secretsmanager

// Building a store: where and as whom it reaches Secrets Manager, the
// client-side rate limits, and the options of New and NewFromAPI.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"

	"github.com/lakirotator/lakirotator/internal/awsaccess"
)

// AWS's default Secrets Manager quotas per account and region.
const (
	DefaultReadRate    = 10000 // GetSecretValue, DescribeSecret, ListSecrets (each has this quota)
	DefaultWriteRate   = 50    // PutSecretValue, UpdateSecretVersionStage, TagResource together
	DefaultMaxAttempts = 5
)

// Limits are the client-side rates, per second, the store keeps to before
// it calls the API. Zero fields take the defaults (AWS's quotas; burst =
// one second's worth).
type Limits struct {
	ReadRate, WriteRate   float64
	ReadBurst, WriteBurst int
}

func (l Limits) withDefaults() Limits {
	if l.ReadRate <= 0 {
		l.ReadRate = DefaultReadRate
	}
	if l.WriteRate <= 0 {
		l.WriteRate = DefaultWriteRate
	}
	if l.ReadBurst <= 0 {
		l.ReadBurst = max(1, int(l.ReadRate))
	}
	if l.WriteBurst <= 0 {
		l.WriteBurst = max(1, int(l.WriteRate))
	}
	return l
}

// Config says where and as whom to reach Secrets Manager.
type Config struct {
	// Region; empty takes the SDK's default chain (AWS_REGION, profile).
	Region string
	// Endpoint overrides the service endpoint (tests, VPC endpoints). Plain
	// http is allowed only to a loopback host.
	Endpoint string
	// Profile selects a shared config profile; empty uses the default chain.
	Profile string
	// RoleARN, when set, is assumed through STS with the loaded credentials.
	RoleARN string
	// ExternalID goes with RoleARN when the role's trust policy asks for one.
	ExternalID string
	// Credentials, when set, replace the default credential chain (tests, demo).
	Credentials aws.CredentialsProvider
	Limits
	// MaxAttempts per call of the SDK's adaptive retryer; 0 takes DefaultMaxAttempts.
	MaxAttempts int
	// HTTPClient, when set, replaces the SDK's client. It must not turn off
	// certificate verification or allow TLS below 1.2.
	HTTPClient *http.Client
	// SDKLogger receives the SDK's own log lines; nil discards them.
	SDKLogger logging.Logger
}

// Option configures a Store.
type Option func(*options)

type options struct {
	limits     Limits
	apiOptions []func(*middleware.Stack) error
	quotas     *Quotas
	quotaKey   QuotaKey
}

// WithLimits sets the client-side rate limits (NewFromAPI; New takes them from Config).
func WithLimits(l Limits) Option { return func(o *options) { o.limits = l } }

// WithCallCounter installs the call accounting middleware on the client New builds.
func WithCallCounter(c *CallCounter) Option {
	return func(o *options) { o.apiOptions = append(o.apiOptions, c.APIOption()) }
}

// WithAPIOptions adds SDK middleware to the client New builds (the
// awsfault stand-in, tracing).
func WithAPIOptions(fns ...func(*middleware.Stack) error) Option {
	return func(o *options) { o.apiOptions = append(o.apiOptions, fns...) }
}

// New builds a client from the default credential chain with the SDK's
// adaptive retry mode, and returns a store on it.
func New(ctx context.Context, cfg Config, opts ...Option) (*Store, error) {
	if err := checkHTTPClient(cfg.HTTPClient); err != nil {
		return nil, err
	}
	o := options{}
	for _, fn := range opts {
		fn(&o)
	}
	maxAttempts := cfg.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	extra := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
				ao.StandardOptions = append(ao.StandardOptions, func(so *retry.StandardOptions) { so.MaxAttempts = maxAttempts })
			})
		}),
	}
	if cfg.HTTPClient != nil {
		extra = append(extra, config.WithHTTPClient(cfg.HTTPClient))
	}
	// Failures reach the caller as errors, explained by Explain; the SDK's
	// own log lines go to SDKLogger or nowhere.
	awsCfg, err := awsaccess.Load(ctx, awsaccess.Config{Region: cfg.Region, RegionField: "the region in the config",
		Endpoint: cfg.Endpoint, Profile: cfg.Profile, RoleARN: cfg.RoleARN, ExternalID: cfg.ExternalID,
		Credentials: cfg.Credentials, Logger: cfg.SDKLogger}, extra...)
	if err != nil {
		return nil, fmt.Errorf("secretsmanager: %w", err)
	}
	client := sm.NewFromConfig(awsCfg, func(so *sm.Options) {
		if cfg.Endpoint != "" {
			so.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		so.APIOptions = append(so.APIOptions, o.apiOptions...)
	})
	if o.quotas != nil {
		// Asked with the store's own credentials: with a role, the
		// assumed role's account, which is whose quota the calls spend.
		account, err := callerAccount(ctx, awsaccess.STS(awsCfg, cfg.Endpoint))
		if err != nil {
			return nil, err
		}
		opts = append(opts, withQuotaKey(QuotaKey{Account: account, Region: awsCfg.Region}))
	}
	return NewFromAPI(client, append([]Option{WithLimits(cfg.Limits)}, opts...)...), nil
}

// NewFromAPI returns a store on an existing client or wrapper.
func NewFromAPI(api API, opts ...Option) *Store {
	o := options{}
	for _, fn := range opts {
		fn(&o)
	}
	l := o.limits.withDefaults()
	if o.quotas != nil && o.quotaKey != (QuotaKey{}) {
		q := o.quotas.limiters(o.quotaKey, l)
		return &Store{api: api, read: q.read, write: q.write, quota: o.quotaKey}
	}
	return &Store{
		api:   api,
		read:  newLane(l.ReadRate, l.ReadBurst),
		write: newLane(l.WriteRate, l.WriteBurst),
	}
}

// withQuotaKey tells NewFromAPI which account and region the client reaches.
func withQuotaKey(k QuotaKey) Option { return func(o *options) { o.quotaKey = k } }

// WithQuotaKey shares limiters through q for a client known to reach key
// (NewFromAPI; New finds the key itself with WithQuotas).
func WithQuotaKey(q *Quotas, key QuotaKey) Option {
	return func(o *options) { o.quotas, o.quotaKey = q, key }
}

func checkHTTPClient(c *http.Client) error {
	if c == nil {
		return nil
	}
	t, ok := c.Transport.(*http.Transport)
	if !ok || t.TLSClientConfig == nil {
		return nil
	}
	if t.TLSClientConfig.InsecureSkipVerify {
		return errors.New("secretsmanager: the HTTP client turns off certificate verification")
	}
	if v := t.TLSClientConfig.MinVersion; v != 0 && v < tls.VersionTLS12 {
		return errors.New("secretsmanager: the HTTP client allows TLS below 1.2")
	}
	return nil
}
