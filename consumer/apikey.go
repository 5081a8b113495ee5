package consumer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-secretsmanager-caching-go/v2/secretcache"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// DefaultTTL is how long a value read from Secrets Manager is served before
// it is read again, when no TTL is given. Scheduled rotations keep the old
// credential for hours; five minutes keeps consumers far inside that.
const DefaultTTL = 5 * time.Minute

// SecretsManagerClient is the part of the Secrets Manager API the package
// calls, with the SDK's own signatures: *secretsmanager.Client satisfies it.
// It is the caching library's interface, which needs the other methods too.
type SecretsManagerClient = secretcache.SecretsManagerAPIClient

// ErrWrongType is returned when a secret holds another kind of credential
// than asked for (a webhook secret where an API key is expected).
var ErrWrongType = errors.New("consumer: the secret holds another kind of credential")

// APIKey serves the current LakiConnect API key of one managed secret.
// Safe for concurrent use.
type APIKey struct {
	name   string
	client SecretsManagerClient
	cache  *secretcache.Cache

	mu sync.Mutex
	// fresh is AWSCURRENT as read after a 401, served while the cache still
	// returns a key that LakiConnect refused.
	fresh secretstore.Credential
	// refused holds hashes of keys LakiConnect answered 401 to (a few).
	refused [][sha256.Size]byte
}

// APIKeyOptions tunes an APIKey.
type APIKeyOptions struct {
	// TTL bounds how long a value is served before Secrets Manager is asked
	// again; zero means DefaultTTL.
	TTL time.Duration
}

// NewAPIKey serves the API key stored in secretName (a name or an ARN).
func NewAPIKey(client SecretsManagerClient, secretName string, opts APIKeyOptions) (*APIKey, error) {
	if client == nil || secretName == "" {
		return nil, errors.New("consumer: NewAPIKey needs a client and a secret name")
	}
	ttl := opts.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	c, err := secretcache.New(func(c *secretcache.Cache) {
		c.Client = client
		c.CacheItemTTL = ttl.Nanoseconds()
		c.MaxCacheSize = 16
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return &APIKey{name: secretName, client: client, cache: c}, nil
}

// Credential returns the whole stored credential of AWSCURRENT (key id,
// environment, master merchant, scopes, secret).
func (k *APIKey) Credential(ctx context.Context) (secretstore.Credential, error) {
	s, err := k.cache.GetSecretStringWithStageWithContext(ctx, k.name, secretstore.StageCurrent)
	if err != nil {
		return secretstore.Credential{}, fmt.Errorf("consumer: reading %s AWSCURRENT: %w", k.name, err)
	}
	c, err := decode(k.name, secret.New(s), secretstore.TypeAPIKey)
	if err != nil {
		return secretstore.Credential{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fresh.Secret.IsZero() {
		return c, nil
	}
	if k.isRefused(c.Secret) {
		// The cache has not caught up with the rotation yet.
		return k.fresh, nil
	}
	// The cache now serves a key nobody refused: the newest one.
	k.fresh = secretstore.Credential{}
	return c, nil
}

// Key returns the current API key's secret, for the Authorization header.
func (k *APIKey) Key(ctx context.Context) (secret.Value, error) {
	c, err := k.Credential(ctx)
	if err != nil {
		return secret.Value{}, err
	}
	return c.Secret, nil
}

// Refused tells the APIKey that LakiConnect answered 401 to key. It reads
// AWSCURRENT from Secrets Manager at once, unless a concurrent caller has
// already done so for the same key, and returns the key to retry with;
// changed is false when AWSCURRENT still holds the refused key (the key
// was revoked without a rotation: retrying cannot help).
func (k *APIKey) Refused(ctx context.Context, key secret.Value) (next secret.Value, changed bool, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.isRefused(key) && !k.fresh.Secret.IsZero() && !k.fresh.Secret.Equal(key) {
		return k.fresh.Secret, true, nil
	}
	out, err := k.client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
		SecretId: &k.name, VersionStage: ptr(secretstore.StageCurrent)})
	if err != nil {
		return secret.Value{}, false, fmt.Errorf("consumer: re-reading %s AWSCURRENT after a 401: %w", k.name, err)
	}
	if out.SecretString == nil {
		return secret.Value{}, false, fmt.Errorf("consumer: %s AWSCURRENT holds no string", k.name)
	}
	c, err := decode(k.name, secret.New(*out.SecretString), secretstore.TypeAPIKey)
	if err != nil {
		return secret.Value{}, false, err
	}
	k.markRefused(key)
	if c.Secret.Equal(key) {
		return key, false, nil
	}
	k.fresh = c
	return c.Secret, true, nil
}

// maxRefused bounds the refused keys remembered; a few rotations' worth.
const maxRefused = 8

func (k *APIKey) markRefused(key secret.Value) {
	if k.isRefused(key) {
		return
	}
	k.refused = append(k.refused, sha256.Sum256([]byte(key.Reveal())))
	if len(k.refused) > maxRefused {
		k.refused = k.refused[1:]
	}
}

func (k *APIKey) isRefused(key secret.Value) bool {
	h := sha256.Sum256([]byte(key.Reveal()))
	for _, r := range k.refused {
		if r == h {
			return true
		}
	}
	return false
}

// Transport returns an http.RoundTripper that sends every request with
// "Authorization: Bearer <current key>" and, on a 401, re-reads AWSCURRENT
// and sends the request once more with the new key. A request whose body
// cannot be replayed (no GetBody) is not retried. base nil means
// http.DefaultTransport.
func (k *APIKey) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{key: k, base: base}
}

type transport struct {
	key  *APIKey
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	key, err := t.key.Key(ctx)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(withKey(req, key, nil))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil
	}
	next, changed, rerr := t.key.Refused(ctx, key)
	if rerr != nil || !changed {
		return resp, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil {
		if body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	_ = resp.Body.Close()
	return t.base.RoundTrip(withKey(req, next, body))
}

// withKey clones req with the Authorization header set (RoundTrippers must
// not change the caller's request) and, when given, a fresh body.
func withKey(req *http.Request, key secret.Value, body io.ReadCloser) *http.Request {
	r := req.Clone(req.Context())
	if body != nil {
		r.Body = body
	}
	r.Header.Set("Authorization", "Bearer "+key.Reveal())
	return r
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
}

// decode reads a stored value and checks it holds the kind asked for.
func decode(name string, v secret.Value, want secretstore.CredentialType) (secretstore.Credential, error) {
	c, err := secretstore.DecodeCredential(name, v)
	if err != nil {
		return secretstore.Credential{}, fmt.Errorf("consumer: %w", err)
	}
	if c.Type != want {
		return secretstore.Credential{}, fmt.Errorf("%w: %s holds %q, want %q", ErrWrongType, name, c.Type, want)
	}
	return c, nil
}

func ptr[T any](v T) *T { return &v }
