// Package lakiconnect speaks LakiConnect's Management API
// (../shared/lakiconnect/openapi.yaml in the design docs): the wire types in
// this file are shared by the client and by the project's simulator. The
// vocabulary (environments, scopes, states, ids, limits, the records of
// keys and endpoints) lives in package laki.
package lakiconnect

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/lakirotator/lakirotator/laki"
)

// ExpireRequest is the body of the expire endpoints. A nil ExpiresAt means now.
type ExpireRequest struct {
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// List is one page of a list endpoint.
type List[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
}

// Event is a webhook delivery body.
type Event struct {
	ID               string           `json:"id"`
	Object           string           `json:"object"`
	Type             string           `json:"type"`
	Created          int64            `json:"created"`
	MasterMerchantID string           `json:"master_merchant_id"`
	Environment      laki.Environment `json:"environment"`
	IdempotencyKey   string           `json:"idempotency_key"`
	Data             json.RawMessage  `json:"data"`
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
	FoundIn    string    `json:"source"` // where the key was seen: public_repository, paste_site, report
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

// Is matches the error kinds of package laki, so that callers classify an
// answer with errors.Is(err, laki.ErrNotFound) and the like.
func (e *APIError) Is(target error) bool {
	switch target {
	case laki.ErrRefused:
		return true
	case laki.ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case laki.ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case laki.ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case laki.ErrConflict:
		return e.StatusCode == http.StatusConflict
	case laki.ErrKeyLimit:
		return e.Code == CodeKeyLimitReached
	case laki.ErrTooManySecrets:
		return e.Code == CodeTooManySecrets
	case laki.ErrKeyRevoked:
		return e.Code == CodeKeyRevoked
	case laki.ErrIdempotencyKeyReused:
		return e.Code == CodeIdempotencyKeyReused || e.StatusCode == http.StatusUnprocessableEntity
	case laki.ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case laki.ErrUnavailable:
		return e.StatusCode >= 500
	}
	return false
}
