// Package awsfault makes a Secrets Manager test server answer as AWS does
// where moto does not (see the project's MOTO.md): it is SDK middleware
// that injects AWS's real error shapes.
//
//   - ThrottlingException above a configured rate per API class (AWS's
//     quotas; moto never throttles). Injected per attempt, inside the SDK's
//     retry loop, so the adaptive retryer sees it as it would from AWS.
//   - ResourceExistsException for PutSecretValue with a ClientRequestToken
//     already used with another value (moto overwrites the version).
//   - InvalidRequestException for PutSecretValue and UpdateSecretVersionStage
//     on a secret scheduled for deletion (moto accepts them).
//
// The injector learns the server's state from the traffic of every client
// it is installed on (CreateSecret, PutSecretValue, DeleteSecret,
// RestoreSecret), so install it on the seeding client too. For tests only.
package awsfault

import (
	"context"
	"crypto/sha256"
	"maps"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/internal/clock"
)

// Config says which AWS behaviours to emulate.
type Config struct {
	// ReadRate and WriteRate are the quotas per second above which calls
	// are throttled; 0 turns throttling off for the class. Writes are
	// PutSecretValue, UpdateSecretVersionStage and TagResource (one shared
	// quota in AWS); every other operation is a read.
	ReadRate, WriteRate float64
	// ReadBurst and WriteBurst default to one second's worth.
	ReadBurst, WriteBurst int
	// TokenReuse rejects a reused token with another value.
	TokenReuse bool
	// Deletion rejects writes to secrets scheduled for deletion.
	Deletion bool
	// Clock drives the quota buckets; nil is the real clock.
	Clock clock.Clock
}

// Injector is the middleware. Safe for concurrent use.
type Injector struct {
	cfg   Config
	read  *rate.Limiter
	write *rate.Limiter

	mu       sync.Mutex
	versions map[versionKey][32]byte // hash of each version's value
	deleted  map[string]bool         // by name and ARN
	injected map[string]int          // "<Operation>/<ErrorCode>"
}

type versionKey struct{ secret, id string }

// New returns an injector for cfg.
func New(cfg Config) *Injector {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	in := &Injector{cfg: cfg, versions: map[versionKey][32]byte{}, deleted: map[string]bool{}, injected: map[string]int{}}
	if cfg.ReadRate > 0 {
		in.read = rate.NewLimiter(rate.Limit(cfg.ReadRate), burst(cfg.ReadBurst, cfg.ReadRate))
	}
	if cfg.WriteRate > 0 {
		in.write = rate.NewLimiter(rate.Limit(cfg.WriteRate), burst(cfg.WriteBurst, cfg.WriteRate))
	}
	return in
}

func burst(b int, r float64) int {
	if b > 0 {
		return b
	}
	return max(1, int(r))
}

// APIOption installs the injector on a client (sm.Options.APIOptions, or
// secretsmanager.WithAPIOptions).
func (f *Injector) APIOption() func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		if err := st.Initialize.Add(middleware.InitializeMiddlewareFunc("awsfault.State", f.initialize), middleware.After); err != nil {
			return err
		}
		return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("awsfault.Throttle", f.finalize), middleware.After)
	}
}

// ClientOption installs the injector on a client built with sm.New or sm.NewFromConfig.
func (f *Injector) ClientOption() func(*sm.Options) {
	return func(o *sm.Options) { o.APIOptions = append(o.APIOptions, f.APIOption()) }
}

// Injected returns how many errors were injected, keyed "<Operation>/<ErrorCode>".
func (f *Injector) Injected() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.injected)
}

func (f *Injector) fail(op, code, msg string) error {
	f.mu.Lock()
	f.injected[op+"/"+code]++
	f.mu.Unlock()
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: smithy.FaultClient}
}

func (f *Injector) initialize(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	op := middleware.GetOperationName(ctx)
	if err := f.check(op, in.Parameters); err != nil {
		return middleware.InitializeOutput{}, middleware.Metadata{}, err
	}
	out, md, err := next.HandleInitialize(ctx, in)
	if err == nil {
		f.learn(in.Parameters, out.Result)
	}
	return out, md, err
}

// check returns the error AWS would give where moto would not.
func (f *Injector) check(op string, params any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var secretID string
	switch p := params.(type) {
	case *sm.PutSecretValueInput:
		secretID = aws.ToString(p.SecretId)
		if f.cfg.TokenReuse && p.ClientRequestToken != nil {
			if h, ok := f.versions[versionKey{secretID, *p.ClientRequestToken}]; ok && h != hashOf(p.SecretString, p.SecretBinary) {
				defer func() { f.injected[op+"/ResourceExistsException"]++ }()
				return &smithy.GenericAPIError{Code: "ResourceExistsException", Fault: smithy.FaultClient,
					Message: "You can't modify an existing version, you can only create a new version."}
			}
		}
	case *sm.UpdateSecretVersionStageInput:
		secretID = aws.ToString(p.SecretId)
	default:
		return nil
	}
	if f.cfg.Deletion && f.deleted[secretID] {
		f.injected[op+"/InvalidRequestException"]++
		return &smithy.GenericAPIError{Code: "InvalidRequestException", Fault: smithy.FaultClient,
			Message: "You can't perform this operation on the secret because it was marked for deletion."}
	}
	return nil
}

// learn records what a successful call changed on the server.
func (f *Injector) learn(params, result any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch p := params.(type) {
	case *sm.CreateSecretInput:
		if r, ok := result.(*sm.CreateSecretOutput); ok && r.VersionId != nil {
			h := hashOf(p.SecretString, p.SecretBinary)
			f.versions[versionKey{aws.ToString(r.Name), *r.VersionId}] = h
			f.versions[versionKey{aws.ToString(r.ARN), *r.VersionId}] = h
		}
	case *sm.PutSecretValueInput:
		if r, ok := result.(*sm.PutSecretValueOutput); ok && r.VersionId != nil {
			h := hashOf(p.SecretString, p.SecretBinary)
			for _, id := range []string{aws.ToString(p.SecretId), aws.ToString(r.Name), aws.ToString(r.ARN)} {
				if _, seen := f.versions[versionKey{id, *r.VersionId}]; !seen {
					f.versions[versionKey{id, *r.VersionId}] = h
				}
			}
		}
	case *sm.DeleteSecretInput:
		if r, ok := result.(*sm.DeleteSecretOutput); ok {
			for _, id := range []string{aws.ToString(p.SecretId), aws.ToString(r.Name), aws.ToString(r.ARN)} {
				f.deleted[id] = true
			}
		}
	case *sm.RestoreSecretInput:
		if r, ok := result.(*sm.RestoreSecretOutput); ok {
			for _, id := range []string{aws.ToString(p.SecretId), aws.ToString(r.Name), aws.ToString(r.ARN)} {
				delete(f.deleted, id)
			}
		}
	}
}

func hashOf(s *string, b []byte) [32]byte {
	if s != nil {
		return sha256.Sum256([]byte("s:" + *s))
	}
	return sha256.Sum256(append([]byte("b:"), b...))
}

// finalize runs once per attempt, after the retry middleware.
func (f *Injector) finalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	op := middleware.GetOperationName(ctx)
	l := f.read
	if isWrite(op) {
		l = f.write
	}
	if l != nil && !l.AllowN(f.cfg.Clock.Now(), 1) {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, f.fail(op, "ThrottlingException", "Rate exceeded")
	}
	return next.HandleFinalize(ctx, in)
}

func isWrite(op string) bool {
	switch op {
	case "PutSecretValue", "UpdateSecretVersionStage", "TagResource":
		return true
	}
	return false
}
