package rotator

import (
	"context"
	"iter"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
)

// The engine's seams to LakiConnect, in the engine's terms: what it asks of
// the issuer of API keys and of webhook signing secrets, for one environment
// and master merchant, calling as that merchant's management key. Their
// method sets are the LakiConnect client's own, so that the client for a
// merchant's current key (lakiconnect.Merchants) is an Issuer as it is, and
// a fake implements only what its test needs. Refusals are classified with
// laki's error kinds (laki.ErrNotFound, laki.ErrKeyLimit, ...).

// APIKeys issues and ends API keys (and the management key).
type APIKeys interface {
	// WhoAmI describes the management key itself.
	WhoAmI(ctx context.Context) (laki.WhoAmI, error)
	// WhoAmIWith describes the key given (not the management key): the test step.
	WhoAmIWith(ctx context.Context, key secret.Value) (laki.WhoAmI, error)
	CreateAPIKey(ctx context.Context, idempotencyKey string, req laki.CreateAPIKeyRequest) (laki.APIKeyWithSecret, error)
	GetAPIKey(ctx context.Context, keyID string) (laki.APIKey, error)
	ListAPIKeys(ctx context.Context, opts laki.ListAPIKeysOptions) iter.Seq2[laki.APIKey, error]
	ExpireAPIKey(ctx context.Context, idempotencyKey, keyID string, expiresAt *time.Time) (laki.APIKey, error)
	RevokeAPIKey(ctx context.Context, idempotencyKey, keyID string) (laki.APIKey, error)
}

// WebhookSecrets issues, proves and ends webhook signing secrets.
type WebhookSecrets interface {
	GetWebhookEndpoint(ctx context.Context, endpointID string) (laki.WebhookEndpoint, error)
	CreateWebhookSecret(ctx context.Context, idempotencyKey, endpointID string) (laki.WebhookSecretWithValue, error)
	ExpireWebhookSecret(ctx context.Context, idempotencyKey, endpointID, secretID string, expiresAt *time.Time) (laki.WebhookEndpoint, error)
	TestWebhookSignature(ctx context.Context, idempotencyKey, endpointID string) (laki.TestSignature, error)
}

// Issuer is both seams of one environment and master merchant.
type Issuer interface {
	APIKeys
	WebhookSecrets
}

// IssuerSource hands out the Issuer for an environment and master merchant.
type IssuerSource interface {
	Issuer(ctx context.Context, env laki.Environment, masterMerchantID string) (Issuer, error)
}

// KeyInvalidator is implemented by an IssuerSource whose management keys
// are cached: the engine calls it right after promoting a new management
// key, and after a 401, so that the next call reads the key again.
type KeyInvalidator interface {
	InvalidateManagementKey(env laki.Environment, masterMerchantID string)
}

// Issuers makes an IssuerSource of a factory of per-merchant clients and
// its key invalidation: rotator.Issuers(merchants.Client,
// merchants.InvalidateManagementKey) with lakiconnect.Merchants.
func Issuers[C Issuer](clientOf func(env laki.Environment, masterMerchantID string) (C, error), invalidate func(env laki.Environment, masterMerchantID string)) IssuerSource {
	return issuers[C]{clientOf: clientOf, invalidate: invalidate}
}

type issuers[C Issuer] struct {
	clientOf   func(laki.Environment, string) (C, error)
	invalidate func(laki.Environment, string)
}

func (s issuers[C]) Issuer(_ context.Context, env laki.Environment, mm string) (Issuer, error) {
	c, err := s.clientOf(env, mm)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (s issuers[C]) InvalidateManagementKey(env laki.Environment, mm string) {
	if s.invalidate != nil {
		s.invalidate(env, mm)
	}
}

// SignatureVerifier checks an X-LakiConnect-Signature header against a body
// with the secrets given. webhooksig.Verifier satisfies it.
type SignatureVerifier interface {
	Verify(header string, body []byte, secrets ...secret.Value) error
}
