package laki

import (
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// The records LakiConnect reports about its credentials (its API's schemas,
// field names as on the wire). Only the create answers hold a secret, as a
// secret.Value: it decodes from the wire and prints as [REDACTED].

// WhoAmI describes the calling key.
type WhoAmI struct {
	KeyID            string      `json:"key_id"`
	Environment      Environment `json:"environment"`
	MasterMerchantID string      `json:"master_merchant_id"`
	Scopes           []Scope     `json:"scopes"`
	Status           KeyStatus   `json:"status"`
	ExpiresAt        *time.Time  `json:"expires_at"`
}

// APIKey is a key without its secret.
type APIKey struct {
	ID               string            `json:"id"`
	Object           string            `json:"object"`
	Name             string            `json:"name"`
	Environment      Environment       `json:"environment"`
	MasterMerchantID string            `json:"master_merchant_id"`
	Scopes           []Scope           `json:"scopes"`
	Status           KeyStatus         `json:"status"`
	CreatedAt        time.Time         `json:"created_at"`
	ExpiresAt        *time.Time        `json:"expires_at"`
	RevokedAt        *time.Time        `json:"revoked_at"`
	LastUsedAt       *time.Time        `json:"last_used_at"`
	CreatedBy        *string           `json:"created_by"`
	SecretLast4      string            `json:"secret_last4"`
	Metadata         map[string]string `json:"metadata,omitempty"`
}

// CreateAPIKeyRequest is the body of POST /api_keys.
type CreateAPIKeyRequest struct {
	Name      string            `json:"name"`
	Scopes    []Scope           `json:"scopes"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// WebhookSecretInfo is a signing secret's metadata.
type WebhookSecretInfo struct {
	ID          string     `json:"id"`
	Status      KeyStatus  `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	SecretLast4 string     `json:"secret_last4"`
}

// WebhookEndpoint is a merchant's webhook receiver and its secrets' metadata.
type WebhookEndpoint struct {
	ID               string              `json:"id"`
	Object           string              `json:"object"`
	URL              string              `json:"url"`
	Environment      Environment         `json:"environment"`
	MasterMerchantID string              `json:"master_merchant_id"`
	EnabledEvents    []string            `json:"enabled_events"`
	Status           string              `json:"status"`
	Secrets          []WebhookSecretInfo `json:"secrets"`
}

// AuthFailureCount counts refused requests of one key and status.
type AuthFailureCount struct {
	KeyID       *string   `json:"key_id"`
	KeyPrefix   string    `json:"key_prefix"`
	StatusCode  int       `json:"status_code"`
	Count       int       `json:"count"`
	FirstSeenAt time.Time `json:"first_seen_at"`
	LastSeenAt  time.Time `json:"last_seen_at"`
}

// APIKeyWithSecret is the create response: the only time a secret is seen.
// Secret decodes from the wire but marshals as [REDACTED].
type APIKeyWithSecret struct {
	APIKey
	Secret secret.Value `json:"secret"`
	// Replayed is true when LakiConnect answered with the Idempotent-Replayed
	// header: the key was made by an earlier request with the same
	// idempotency key (another replica's, or this process's before a crash).
	Replayed bool `json:"-"`
}

// WebhookSecretWithValue is the create response for a signing secret.
type WebhookSecretWithValue struct {
	WebhookSecretInfo
	EndpointID string       `json:"endpoint_id"`
	Secret     secret.Value `json:"secret"`
	// Replayed: as APIKeyWithSecret's.
	Replayed bool `json:"-"`
}

// TestSignature is the answer of POST /webhook_endpoints/{id}/test_signature.
type TestSignature struct {
	Payload         string `json:"payload"`
	SignatureHeader string `json:"signature_header"`
}

// ListAPIKeysOptions filters and pages GET /api_keys.
type ListAPIKeysOptions struct {
	// Status keeps only keys in this status; empty means all.
	Status KeyStatus
	// PageSize is the page limit, 1..100; 0 means 100 (fewest requests).
	PageSize int
}
