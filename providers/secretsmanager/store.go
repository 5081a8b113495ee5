// store.go is long on purpose: it maps every store operation onto its one
// Secrets Manager call, with the error translation each needs, so the call
// budget of a rotation can be read off this file alone.

package secretsmanager

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/internal/endpoint"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// API is the part of the Secrets Manager client the store calls: exactly
// the operations of Operations(), with the SDK's signatures, so that the
// real client and wrappers or fakes all satisfy it.
type API interface {
	DescribeSecret(ctx context.Context, params *sm.DescribeSecretInput, optFns ...func(*sm.Options)) (*sm.DescribeSecretOutput, error)
	GetSecretValue(ctx context.Context, params *sm.GetSecretValueInput, optFns ...func(*sm.Options)) (*sm.GetSecretValueOutput, error)
	ListSecrets(ctx context.Context, params *sm.ListSecretsInput, optFns ...func(*sm.Options)) (*sm.ListSecretsOutput, error)
	PutSecretValue(ctx context.Context, params *sm.PutSecretValueInput, optFns ...func(*sm.Options)) (*sm.PutSecretValueOutput, error)
	TagResource(ctx context.Context, params *sm.TagResourceInput, optFns ...func(*sm.Options)) (*sm.TagResourceOutput, error)
	UpdateSecretVersionStage(ctx context.Context, params *sm.UpdateSecretVersionStageInput, optFns ...func(*sm.Options)) (*sm.UpdateSecretVersionStageOutput, error)
}

var (
	_ API                     = (*sm.Client)(nil)
	_ secretstore.Store       = (*Store)(nil)
	_ sm.ListSecretsAPIClient = API(nil)
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

// Store is the Secrets Manager implementation of secretstore.Store. Safe
// for concurrent use.
type Store struct {
	api   API
	read  *rate.Limiter
	write *rate.Limiter
	quota QuotaKey
}

// New builds a client from the default credential chain with the SDK's
// adaptive retry mode, and returns a store on it.
func New(ctx context.Context, cfg Config, opts ...Option) (*Store, error) {
	if err := checkEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
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
	load := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
				ao.StandardOptions = append(ao.StandardOptions, func(so *retry.StandardOptions) { so.MaxAttempts = maxAttempts })
			})
		}),
	}
	if cfg.Region != "" {
		load = append(load, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(cfg.Credentials))
	}
	if cfg.HTTPClient != nil {
		load = append(load, config.WithHTTPClient(cfg.HTTPClient))
	}
	// The SDK's own logger writes warnings (an IMDSv1 fallback) straight
	// to stderr; failures reach the caller as errors, explained by Explain.
	sdkLogger := cfg.SDKLogger
	if sdkLogger == nil {
		sdkLogger = logging.Nop{}
	}
	load = append(load, config.WithLogger(sdkLogger))
	awsCfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("secretsmanager: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("secretsmanager: no AWS region: set the region in the config or AWS_REGION")
	}
	if cfg.RoleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(newSTS(awsCfg, cfg.Endpoint), cfg.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "lakirotator"
				if cfg.ExternalID != "" {
					o.ExternalID = aws.String(cfg.ExternalID)
				}
			}))
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
		account, err := callerAccount(ctx, newSTS(awsCfg, cfg.Endpoint))
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
		read:  rate.NewLimiter(rate.Limit(l.ReadRate), l.ReadBurst),
		write: rate.NewLimiter(rate.Limit(l.WriteRate), l.WriteBurst),
	}
}

// withQuotaKey tells NewFromAPI which account and region the client reaches.
func withQuotaKey(k QuotaKey) Option { return func(o *options) { o.quotaKey = k } }

// WithQuotaKey shares limiters through q for a client known to reach key
// (NewFromAPI; New finds the key itself with WithQuotas).
func WithQuotaKey(q *Quotas, key QuotaKey) Option {
	return func(o *options) { o.quotas, o.quotaKey = q, key }
}

// newSTS is an STS client with awsCfg's credentials, at stsEndpoint's address.
func newSTS(awsCfg aws.Config, endpoint string) *sts.Client {
	return sts.NewFromConfig(awsCfg, func(so *sts.Options) {
		if ep := stsEndpoint(endpoint); ep != "" {
			so.BaseEndpoint = aws.String(ep)
		}
	})
}

// stsEndpoint is where STS calls go: the SDK's choice (which honours
// AWS_ENDPOINT_URL_STS) except when Secrets Manager is reached through a
// loopback stand-in and no STS endpoint is set, where the stand-in serves
// STS too (moto serves every service on one address).
func stsEndpoint(smEndpoint string) string {
	if smEndpoint == "" {
		return ""
	}
	for _, v := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		if e, ok := os.LookupEnv(v); ok && e != "" {
			return ""
		}
	}
	u, err := url.Parse(smEndpoint)
	if err != nil || !endpoint.IsLoopbackHost(u.Hostname()) {
		return ""
	}
	return smEndpoint
}

func checkEndpoint(raw string) error {
	if raw == "" {
		return nil
	}
	if _, err := endpoint.Parse(raw); err != nil {
		return fmt.Errorf("secretsmanager: endpoint %q: %w", raw, err)
	}
	return nil
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

func (s *Store) wait(ctx context.Context, l *rate.Limiter, op, name string) error {
	if err := l.Wait(ctx); err != nil {
		return &secretstore.Error{Op: op, Secret: name, Err: fmt.Errorf("waiting for the client-side rate limit: %w", err)}
	}
	return nil
}

// Get reads one version's value, by id when the selector has one, else by
// stage (AWSCURRENT when neither is set, as AWS does).
func (s *Store) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	return s.get(ctx, "Get", name, sel)
}

func (s *Store) get(ctx context.Context, op, name string, sel secretstore.Selector) (secretstore.Version, error) {
	if err := s.wait(ctx, s.read, op, name); err != nil {
		return secretstore.Version{}, err
	}
	in := &sm.GetSecretValueInput{SecretId: aws.String(name)}
	if sel.VersionID != "" {
		in.VersionId = aws.String(sel.VersionID)
	}
	if sel.Stage != "" {
		in.VersionStage = aws.String(sel.Stage)
	}
	out, err := s.api.GetSecretValue(ctx, in)
	if err != nil {
		return secretstore.Version{}, mapError(op, name, err)
	}
	if out.SecretString == nil {
		return secretstore.Version{}, &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrMalformedValue,
			Err: fmt.Errorf("version %s holds binary data, not a string", aws.ToString(out.VersionId))}
	}
	return secretstore.Version{
		SecretName: aws.ToString(out.Name),
		ARN:        aws.ToString(out.ARN),
		ID:         aws.ToString(out.VersionId),
		Stages:     out.VersionStages,
		Value:      secret.New(*out.SecretString),
		CreatedAt:  aws.ToTime(out.CreatedDate),
	}, nil
}

// Describe returns the secret's metadata and its versions' stages. The
// versions' CreatedAt is zero: DescribeSecret does not return it.
func (s *Store) Describe(ctx context.Context, name string) (secretstore.Secret, error) {
	const op = "Describe"
	if err := s.wait(ctx, s.read, op, name); err != nil {
		return secretstore.Secret{}, err
	}
	out, err := s.api.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		return secretstore.Secret{}, mapError(op, name, err)
	}
	return toSecret(aws.ToString(out.Name), aws.ToString(out.ARN), aws.ToString(out.Description),
		out.Tags, out.VersionIdsToStages, out.DeletedDate, out.LastChangedDate, out.CreatedDate), nil
}

// PutPending writes value as version versionID with the stage AWSPENDING:
// one write, no read. A repeat with the same token and value changes
// nothing; the same token with another value is AWS's
// ResourceExistsException, mapped to ErrTokenReused. moto overwrites instead
// (MOTO.md), so the engine never relies on that refusal: it looks the
// version id up in the listing's versions before it asks LakiConnect for a
// new credential, and a rotation's version id is only ever written with the
// credential made for it.
func (s *Store) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	const op = "PutPending"
	if err := checkPut(versionID, value); err != nil {
		return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest, Err: err}
	}
	if err := s.wait(ctx, s.write, op, name); err != nil {
		return err
	}
	_, err := s.api.PutSecretValue(ctx, &sm.PutSecretValueInput{
		SecretId:           aws.String(name),
		ClientRequestToken: aws.String(versionID),
		SecretString:       aws.String(value.Reveal()),
		VersionStages:      []string{secretstore.StagePending},
	})
	if err != nil {
		return mapError(op, name, err)
	}
	return nil
}

// checkPut holds a put to AWS's constraints, so both stores reject the same input.
func checkPut(versionID string, value secret.Value) error {
	if n := len(versionID); n < 32 || n > 64 {
		return fmt.Errorf("version id %q has %d characters; AWS wants 32 to 64", versionID, n)
	}
	if value.IsZero() {
		return errors.New("the value is empty")
	}
	return nil
}

// MoveStage puts stage on toVersionID and removes it from fromVersionID.
// An empty toVersionID only removes the stage from fromVersionID.
func (s *Store) MoveStage(ctx context.Context, name, stage, toVersionID, fromVersionID string) error {
	const op = "MoveStage"
	if stage == "" || (toVersionID == "" && fromVersionID == "") {
		return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrInvalidRequest,
			Err: errors.New("need a stage and a version to move it to or from")}
	}
	if err := s.wait(ctx, s.write, op, name); err != nil {
		return err
	}
	in := &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String(stage)}
	if toVersionID != "" {
		in.MoveToVersionId = aws.String(toVersionID)
	}
	if fromVersionID != "" {
		in.RemoveFromVersionId = aws.String(fromVersionID)
	}
	if _, err := s.api.UpdateSecretVersionStage(ctx, in); err != nil {
		return mapError(op, name, err)
	}
	return nil
}

// listFilterLimit is AWS's limit on filters per ListSecrets call.
const listFilterLimit = 10

// List pages through ListSecrets. The tag filters go to the server to
// narrow the listing (there they are prefix matches), and are applied again
// exactly here: key equal, value one of the values of the same tag.
func (s *Store) List(ctx context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	const op = "List"
	in := &sm.ListSecretsInput{
		IncludePlannedDeletion: aws.Bool(false),
		MaxResults:             aws.Int32(100),
		Filters:                serverFilters(filters),
	}
	pages := sm.NewListSecretsPaginator(s.api, in)
	for pages.HasMorePages() {
		if err := s.wait(ctx, s.read, op, ""); err != nil {
			return err
		}
		page, err := pages.NextPage(ctx)
		if err != nil {
			return mapError(op, "", err)
		}
		for _, e := range page.SecretList {
			if e.DeletedDate != nil || !matches(e.Tags, filters) {
				continue
			}
			sec := toSecret(aws.ToString(e.Name), aws.ToString(e.ARN), aws.ToString(e.Description),
				e.Tags, e.SecretVersionsToStages, e.DeletedDate, e.LastChangedDate, e.CreatedDate)
			if err := fn(sec); err != nil {
				return err
			}
		}
	}
	return nil
}

func serverFilters(filters []secretstore.TagFilter) []types.Filter {
	var out []types.Filter
	add := func(name types.FilterNameStringType, values []string) {
		var vs []string
		for _, v := range values {
			// A leading "!" negates an AWS filter value; such values are
			// left to the exact check.
			if v != "" && !strings.HasPrefix(v, "!") {
				vs = append(vs, v)
			}
		}
		if len(vs) == 0 || len(vs) > 10 || len(out) == listFilterLimit {
			return
		}
		out = append(out, types.Filter{Key: name, Values: vs})
	}
	for _, f := range filters {
		add(types.FilterNameStringTypeTagKey, []string{f.Key})
	}
	for _, f := range filters {
		add(types.FilterNameStringTypeTagValue, f.Values)
	}
	return out
}

func matches(tags []types.Tag, filters []secretstore.TagFilter) bool {
	for _, f := range filters {
		ok := false
		for _, t := range tags {
			if aws.ToString(t.Key) != f.Key {
				continue
			}
			if len(f.Values) == 0 {
				ok = true
			}
			for _, v := range f.Values {
				if aws.ToString(t.Value) == v {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Tag sets tags on the secret.
func (s *Store) Tag(ctx context.Context, name string, tags map[string]string) error {
	const op = "Tag"
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	in := &sm.TagResourceInput{SecretId: aws.String(name)}
	for _, k := range keys {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	if err := s.wait(ctx, s.write, op, name); err != nil {
		return err
	}
	if _, err := s.api.TagResource(ctx, in); err != nil {
		return mapError(op, name, err)
	}
	return nil
}

func toSecret(name, arn, description string, tags []types.Tag, stages map[string][]string, deleted, changed, created *time.Time) secretstore.Secret {
	sec := secretstore.Secret{Name: name, ARN: arn, Description: description, Tags: map[string]string{}, DeletedAt: deleted}
	for _, t := range tags {
		sec.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	for id, st := range stages {
		sec.Versions = append(sec.Versions, secretstore.VersionInfo{ID: id, Stages: append([]string(nil), st...)})
	}
	sort.Slice(sec.Versions, func(i, j int) bool { return sec.Versions[i].ID < sec.Versions[j].ID })
	switch {
	case changed != nil:
		sec.LastChangedAt = *changed
	case created != nil:
		sec.LastChangedAt = *created
	}
	return sec
}

// mapError turns an SDK error into a *secretstore.Error of the right kind.
// AWS error messages name resources, never secret values.
func mapError(op, name string, err error) error {
	var se *secretstore.Error
	if errors.As(err, &se) {
		return err
	}
	var kind error
	switch code := ErrorCode(err); code {
	case "ResourceNotFoundException":
		kind = secretstore.ErrNotFound
	case "InvalidRequestException":
		kind = secretstore.ErrInvalidRequest
		if mentionsDeletion(err) {
			kind = secretstore.ErrScheduledForDeletion
		}
	case "ResourceExistsException":
		kind = secretstore.ErrTokenReused
	case "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded":
		kind = secretstore.ErrThrottled
	case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "ExpiredTokenException":
		kind = secretstore.ErrAccessDenied
	case "InvalidParameterException", "ValidationException":
		kind = secretstore.ErrInvalidRequest
	}
	return &secretstore.Error{Op: op, Secret: name, Kind: kind, Err: err}
}

func mentionsDeletion(err error) bool {
	m := strings.ToLower(err.Error())
	return strings.Contains(m, "deletion") || strings.Contains(m, "deleted")
}
