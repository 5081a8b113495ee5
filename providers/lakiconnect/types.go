// Package lakiconnect speaks LakiConnect's Management API
// (../shared/lakiconnect/openapi.yaml in the design docs): the wire types in
// this file are shared by the client and by the project's simulator. The
// vocabulary (environments, scopes, states, ids, limits, the records of
// keys and endpoints) lives in package laki.
package lakiconnect

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// APIKeyWithSecret is the create response: the only time a secret is seen.
// Secret decodes from the wire but marshals as [REDACTED].
type APIKeyWithSecret struct {
	APIKey
	Secret secret.Value `json:"secret"`
}

// ExpireRequest is the body of the expire endpoints. A nil ExpiresAt means now.
type ExpireRequest struct {
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// WebhookSecretWithValue is the create response for a signing secret.
type WebhookSecretWithValue struct {
	WebhookSecretInfo
	EndpointID string       `json:"endpoint_id"`
	Secret     secret.Value `json:"secret"`
}

// TestSignature is the answer of POST /webhook_endpoints/{id}/test_signature.
type TestSignature struct {
	Payload         string `json:"payload"`
	SignatureHeader string `json:"signature_header"`
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

// Header names of the API.
const (
	SignatureHeader          = "X-LakiConnect-Signature"
	IdempotencyKeyHeader     = "Idempotency-Key"
	IdempotentReplayedHeader = "Idempotent-Replayed"
	RequestIDHeader          = "Request-Id"
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
