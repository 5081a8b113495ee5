package laki

import "errors"

// Kinds of LakiConnect's refusals. The client's errors match them with
// errors.Is, so that the engine and the scans classify an answer without
// knowing how it travelled (status codes, error codes).
var (
	// ErrRefused is every error answer of the API.
	ErrRefused = errors.New("lakiconnect refused the request")
	// ErrUnauthorized: 401, the key is unknown, revoked, expired, or of the other environment.
	ErrUnauthorized = errors.New("lakiconnect: the key is not accepted")
	// ErrForbidden: 403, the key lacks a scope (missing_scope, scope_escalation).
	ErrForbidden = errors.New("lakiconnect: the key may not do this")
	// ErrNotFound: 404, no such key, endpoint or secret.
	ErrNotFound = errors.New("lakiconnect: not found")
	// ErrConflict: 409, the state does not allow it (now or until people act).
	ErrConflict = errors.New("lakiconnect: conflict")
	// ErrKeyLimit: 409 key_limit_reached, 50 keys that are not revoked.
	ErrKeyLimit = errors.New("lakiconnect: key limit reached")
	// ErrTooManySecrets: too_many_secrets, an endpoint's 2 live secrets.
	ErrTooManySecrets = errors.New("lakiconnect: too many secrets")
	// ErrKeyRevoked: key_revoked, the key acted on is already revoked.
	ErrKeyRevoked = errors.New("lakiconnect: key revoked")
	// ErrIdempotencyKeyReused: 422 (idempotency_key_reused), the idempotency
	// key came with another body.
	ErrIdempotencyKeyReused = errors.New("lakiconnect: idempotency key reused")
	// ErrRateLimited: 429.
	ErrRateLimited = errors.New("lakiconnect: rate limited")
	// ErrUnavailable: 5xx, LakiConnect failed; another attempt may succeed.
	ErrUnavailable = errors.New("lakiconnect: unavailable")
)
