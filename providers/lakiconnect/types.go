// Package lakiconnect speaks LakiConnect's Management API
// (../shared/lakiconnect/openapi.yaml in the design docs): the wire types in
// this file are shared by the client and by the project's simulator.
package lakiconnect

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// Environment is a LakiConnect environment. Keys of one never work in the other.
type Environment string

const (
	Sandbox    Environment = "sandbox"
	Production Environment = "production"
)

// Valid reports whether e is one of LakiConnect's environments.
func (e Environment) Valid() bool { return e == Sandbox || e == Production }

// SecretPrefix is the prefix of API key secrets in this environment.
func (e Environment) SecretPrefix() string {
	if e == Production {
		return "lk_live_"
	}
	return "lk_test_"
}

// KeyStatus is the life stage of an API key or webhook secret.
type KeyStatus string

const (
	StatusActive   KeyStatus = "active"
	StatusExpiring KeyStatus = "expiring"
	StatusRevoked  KeyStatus = "revoked"
)

// Scope is one RBAC permission.
type Scope string

const (
	ScopePaymentsRead      Scope = "payments:read"
	ScopePaymentsWrite     Scope = "payments:write"
	ScopeRefundsRead       Scope = "refunds:read"
	ScopeRefundsWrite      Scope = "refunds:write"
	ScopePayoutsRead       Scope = "payouts:read"
	ScopePayoutsWrite      Scope = "payouts:write"
	ScopeCustomersRead     Scope = "customers:read"
	ScopeCustomersWrite    Scope = "customers:write"
	ScopeSubMerchantsRead  Scope = "sub_merchants:read"
	ScopeSubMerchantsWrite Scope = "sub_merchants:write"
	ScopeReportsRead       Scope = "reports:read"
	ScopeWebhooksRead      Scope = "webhooks:read"
	ScopeWebhooksWrite     Scope = "webhooks:write"
	ScopeAPIKeysRead       Scope = "api_keys:read"
	ScopeAPIKeysWrite      Scope = "api_keys:write"
)

// AllScopes is the Scope enum of the API, in its order.
var AllScopes = []Scope{
	ScopePaymentsRead, ScopePaymentsWrite, ScopeRefundsRead, ScopeRefundsWrite,
	ScopePayoutsRead, ScopePayoutsWrite, ScopeCustomersRead, ScopeCustomersWrite,
	ScopeSubMerchantsRead, ScopeSubMerchantsWrite, ScopeReportsRead,
	ScopeWebhooksRead, ScopeWebhooksWrite, ScopeAPIKeysRead, ScopeAPIKeysWrite,
}

// Valid reports whether s is in the API's Scope enum.
func (s Scope) Valid() bool {
	for _, k := range AllScopes {
		if k == s {
			return true
		}
	}
	return false
}

// ScopeNames returns the scopes as plain strings, the stored value's form.
func ScopeNames(s []Scope) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// ScopesFrom turns plain strings back into Scopes (it does not validate them).
func ScopesFrom(ss []string) []Scope {
	out := make([]Scope, len(ss))
	for i, x := range ss {
		out[i] = Scope(x)
	}
	return out
}

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

// APIKeyWithSecret is the create response: the only time a secret is seen.
// Secret decodes from the wire but marshals as [REDACTED].
type APIKeyWithSecret struct {
	APIKey
	Secret secret.Value `json:"secret"`
}

// CreateAPIKeyRequest is the body of POST /api_keys.
type CreateAPIKeyRequest struct {
	Name      string            `json:"name"`
	Scopes    []Scope           `json:"scopes"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

// ExpireRequest is the body of the expire endpoints. A nil ExpiresAt means now.
type ExpireRequest struct {
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// WebhookSecretInfo is a signing secret's metadata.
type WebhookSecretInfo struct {
	ID          string     `json:"id"`
	Status      KeyStatus  `json:"status"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at"`
	SecretLast4 string     `json:"secret_last4"`
}

// WebhookSecretWithValue is the create response for a signing secret.
type WebhookSecretWithValue struct {
	WebhookSecretInfo
	EndpointID string       `json:"endpoint_id"`
	Secret     secret.Value `json:"secret"`
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

// TestSignature is the answer of POST /webhook_endpoints/{id}/test_signature.
type TestSignature struct {
	Payload         string `json:"payload"`
	SignatureHeader string `json:"signature_header"`
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

// List is one page of a list endpoint.
type List[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// Event is a webhook delivery body.
type Event struct {
	ID               string          `json:"id"`
	Object           string          `json:"object"`
	Type             string          `json:"type"`
	Created          int64           `json:"created"`
	MasterMerchantID string          `json:"master_merchant_id"`
	Environment      Environment     `json:"environment"`
	IdempotencyKey   string          `json:"idempotency_key"`
	Data             json.RawMessage `json:"data"`
}

// Security event types.
const (
	EventAPIKeyExposed          = "api_key.exposed"
	EventAPIKeyRevoked          = "api_key.revoked"
	EventAPIKeyExpiringSoon     = "api_key.expiring_soon"
	EventAuthFailureSpike       = "security.auth_failure_spike"
	EventTestPing               = "test.ping"
	MaxKeysPerMerchant          = 50
	MaxLiveSecretsPerEndpoint   = 2
	MaxExpireDelay              = 7 * 24 * time.Hour
	MaxCreateExpiresAhead       = 400 * 24 * time.Hour
	SignatureHeader             = "X-LakiConnect-Signature"
	IdempotencyKeyHeader        = "Idempotency-Key"
	IdempotentReplayedHeader    = "Idempotent-Replayed"
	RequestIDHeader             = "Request-Id"
	RateLimitPerKeyPerSecond    = 100
	IdempotencyWindow           = 24 * time.Hour
	DefaultPageLimit            = 20
	MaxPageLimit                = 100
	AuthFailureKeyPrefixLength  = 12
	SignatureToleranceInSeconds = 300
)

// APIKeyExposedData is the data of an api_key.exposed event.
type APIKeyExposedData struct {
	KeyID      string    `json:"key_id"`
	Source     string    `json:"source"`
	URL        string    `json:"url,omitempty"`
	DetectedAt time.Time `json:"detected_at"`
}

// APIKeyRevokedData is the data of an api_key.revoked event.
type APIKeyRevokedData struct {
	KeyID  string `json:"key_id"`
	Reason string `json:"reason"`
}

// APIKeyExpiringSoonData is the data of an api_key.expiring_soon event.
type APIKeyExpiringSoonData struct {
	KeyID     string    `json:"key_id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AuthFailureSpikeData is the data of a security.auth_failure_spike event.
type AuthFailureSpikeData struct {
	KeyID         *string `json:"key_id"`
	KeyPrefix     string  `json:"key_prefix"`
	StatusCode    int     `json:"status_code"`
	Count         int     `json:"count"`
	WindowSeconds int     `json:"window_seconds"`
}

// Error types of the API's Error schema.
const (
	ErrTypeInvalidRequest = "invalid_request_error"
	ErrTypeAuthentication = "authentication_error"
	ErrTypePermission     = "permission_error"
	ErrTypeIdempotency    = "idempotency_error"
	ErrTypeConflict       = "conflict_error"
	ErrTypeRateLimit      = "rate_limit_error"
	ErrTypeAPI            = "api_error"
)

// Error codes the rules name; the simulator uses these, the client keeps
// whatever code the server sent.
const (
	CodeMissingScope         = "missing_scope"
	CodeScopeEscalation      = "scope_escalation"
	CodeKeyLimitReached      = "key_limit_reached"
	CodeIdempotencyKeyReused = "idempotency_key_reused"
	CodeKeyRevoked           = "key_revoked"
	CodeTooManySecrets       = "too_many_secrets"
	CodeLastSecret           = "last_secret"
	CodeInvalidAPIKey        = "invalid_api_key"
	CodeRateLimited          = "rate_limited"
	CodeResourceMissing      = "resource_missing"
	CodeParameterInvalid     = "parameter_invalid"
	CodeInternal             = "internal_error"
)

// ErrorBody is the API's Error schema.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inner object of ErrorBody.
type ErrorDetail struct {
	Type    string  `json:"type"`
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param,omitempty"`
}

// APIError is an error answer from LakiConnect. Use errors.As to reach it.
type APIError struct {
	StatusCode int
	Type       string
	Code       string
	Message    string
	Param      string
	RequestID  string
	// RetryAfter is the server's Retry-After on a 429, zero otherwise.
	RetryAfter time.Duration
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("lakiconnect: %d %s/%s: %s", e.StatusCode, e.Type, e.Code, e.Message)
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}
