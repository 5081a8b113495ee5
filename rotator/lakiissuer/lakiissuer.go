// Package lakiissuer adapts the LakiConnect client to the rotation engine's
// Issuer seam, calling through lakiconnect.Merchants with each merchant's
// current management key (rotator.ManagementKeySource in the daemon) so that
// the engine picks up its own rotated key.
package lakiissuer

import (
	"context"
	"iter"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

// Issuer is a rotator.Issuer over one LakiConnect client.
type Issuer struct {
	c *lakiconnect.Client
}

var _ rotator.Issuer = (*Issuer)(nil)

// New wraps a client that calls with the management key.
func New(c *lakiconnect.Client) *Issuer { return &Issuer{c: c} }

func (i *Issuer) WhoAmIWith(ctx context.Context, key secret.Value) (lakiconnect.WhoAmI, error) {
	return i.c.WithAPIKey(key).WhoAmI(ctx)
}

func (i *Issuer) WhoAmI(ctx context.Context) (lakiconnect.WhoAmI, error) { return i.c.WhoAmI(ctx) }

func (i *Issuer) CreateAPIKey(ctx context.Context, idem string, req lakiconnect.CreateAPIKeyRequest) (lakiconnect.APIKeyWithSecret, error) {
	return i.c.CreateAPIKey(ctx, idem, req)
}

func (i *Issuer) GetAPIKey(ctx context.Context, keyID string) (lakiconnect.APIKey, error) {
	return i.c.GetAPIKey(ctx, keyID)
}

func (i *Issuer) ListAPIKeys(ctx context.Context, status lakiconnect.KeyStatus) iter.Seq2[lakiconnect.APIKey, error] {
	return i.c.ListAPIKeys(ctx, lakiconnect.ListAPIKeysOptions{Status: status, PageSize: lakiconnect.MaxPageLimit})
}

func (i *Issuer) ExpireAPIKey(ctx context.Context, idem, keyID string, at *time.Time) (lakiconnect.APIKey, error) {
	return i.c.ExpireAPIKey(ctx, idem, keyID, at)
}

func (i *Issuer) RevokeAPIKey(ctx context.Context, idem, keyID string) (lakiconnect.APIKey, error) {
	return i.c.RevokeAPIKey(ctx, idem, keyID)
}

func (i *Issuer) GetWebhookEndpoint(ctx context.Context, id string) (lakiconnect.WebhookEndpoint, error) {
	return i.c.GetWebhookEndpoint(ctx, id)
}

func (i *Issuer) CreateWebhookSecret(ctx context.Context, idem, endpointID string) (lakiconnect.WebhookSecretWithValue, error) {
	return i.c.CreateWebhookSecret(ctx, idem, endpointID)
}

func (i *Issuer) ExpireWebhookSecret(ctx context.Context, idem, endpointID, secretID string, at *time.Time) (lakiconnect.WebhookEndpoint, error) {
	return i.c.ExpireWebhookSecret(ctx, idem, endpointID, secretID, at)
}

func (i *Issuer) TestWebhookSignature(ctx context.Context, idem, endpointID string) (lakiconnect.TestSignature, error) {
	return i.c.TestWebhookSignature(ctx, idem, endpointID)
}

// KeySource hands out the management key to call with.
type KeySource = lakiconnect.KeySource

// Target is one environment and master merchant.
type Target = lakiconnect.Merchant

// StaticKey is a KeySource that never changes (tests, one-shot CLI use).
type StaticKey = lakiconnect.StaticKey

// Source is a rotator.IssuerSource over the clients of each merchant's
// current management key.
type Source struct {
	merchants *lakiconnect.Merchants
	err       error
}

var (
	_ rotator.IssuerSource   = (*Source)(nil)
	_ rotator.KeyInvalidator = (*Source)(nil)
)

// NewSource builds a source of one base client per environment and one
// management key source per target.
func NewSource(clients map[lakiconnect.Environment]*lakiconnect.Client, keys map[Target]KeySource) *Source {
	m, err := lakiconnect.NewMerchants(clients, keys)
	return &Source{merchants: m, err: err}
}

// FromMerchants builds a source of the merchants' clients.
func FromMerchants(m *lakiconnect.Merchants) *Source { return &Source{merchants: m} }

// Issuer returns an issuer calling with the target's current management key.
func (s *Source) Issuer(_ context.Context, env lakiconnect.Environment, mm string) (rotator.Issuer, error) {
	if s.err != nil {
		return nil, s.err
	}
	c, err := s.merchants.Client(env, mm)
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

// InvalidateManagementKey drops a cached management key after its rotation.
func (s *Source) InvalidateManagementKey(env lakiconnect.Environment, mm string) {
	if s.merchants != nil {
		s.merchants.InvalidateManagementKey(env, mm)
	}
}
