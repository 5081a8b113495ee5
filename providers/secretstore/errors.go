package secretstore

import (
	"errors"
	"fmt"
)

// Kinds of store errors; match them with errors.Is.
var (
	ErrNotFound             = errors.New("secret or version not found")
	ErrScheduledForDeletion = errors.New("secret is scheduled for deletion")
	ErrTokenReused          = errors.New("client request token already used with a different value")
	ErrThrottled            = errors.New("throttled")
	ErrAccessDenied         = errors.New("access denied")
	ErrMalformedValue       = errors.New("malformed stored value")
	ErrInvalidRequest       = errors.New("invalid request")
)

// Error is a store failure: the operation, the secret, what kind of failure,
// and the underlying cause. It never holds a secret value.
type Error struct {
	Op     string // e.g. "PutPending"
	Secret string // the secret's name or ARN
	Kind   error  // one of the Err* kinds, or nil when unclassified
	Err    error  // the cause, may be nil
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("secret store: %s %q", e.Op, e.Secret)
	if e.Kind != nil {
		msg += ": " + e.Kind.Error()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap exposes both the kind and the cause to errors.Is and errors.As.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}
