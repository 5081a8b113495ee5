package rotator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// StepError is a failed rotation step: it names the secret and the step.
// It never holds a secret value: the causes it wraps are store and API
// errors, which carry ids and messages only.
type StepError struct {
	Secret string
	Step   string
	Err    error
	// Permanent is set when retrying cannot help (bad input, wrong
	// environment, a credential that fails its test, refused permission).
	Permanent bool
}

func (e *StepError) Error() string {
	return fmt.Sprintf("rotate %q: %s: %v", e.Secret, e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

func stepErr(name, step string, err error) error {
	if err == nil {
		return nil
	}
	var se *StepError
	if errors.As(err, &se) || errors.Is(err, ErrAborted) {
		return err
	}
	return &StepError{Secret: name, Step: step, Err: err, Permanent: !retryable(err)}
}

func permanent(name, step string, format string, args ...any) error {
	return &StepError{Secret: name, Step: step, Err: fmt.Errorf(format, args...), Permanent: true}
}

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var se *StepError
	if errors.As(err, &se) && se.Permanent {
		return false
	}
	if errors.Is(err, ErrAborted) || errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, laki.ErrRefused) {
		switch {
		case errors.Is(err, laki.ErrRateLimited), errors.Is(err, laki.ErrUnavailable):
			return true
		case errors.Is(err, laki.ErrUnauthorized):
			// The management key may have just been rotated (by this
			// process or a replica): the next attempt reads it again.
			return true
		case errors.Is(err, laki.ErrConflict):
			// key_limit_reached needs people; others (an idempotent
			// request still in progress) settle by themselves.
			return !errors.Is(err, laki.ErrKeyLimit)
		default:
			return false
		}
	}
	for _, kind := range []error{secretstore.ErrNotFound, secretstore.ErrScheduledForDeletion, secretstore.ErrTokenReused,
		secretstore.ErrAccessDenied, secretstore.ErrMalformedValue, secretstore.ErrInvalidRequest} {
		if errors.Is(err, kind) {
			return false
		}
	}
	return true
}

// sanitize makes an error fit a Secrets Manager tag value: at most 256
// characters from the allowed set (letters, digits, spaces, _ . : / = + - @).
// Errors never carry secret values; this only shapes them.
func sanitize(msg string) string {
	var b strings.Builder
	for _, r := range msg {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9',
			strings.ContainsRune(" _.:/=+-@", r):
			b.WriteRune(r)
		default:
			b.WriteByte(' ')
		}
		if b.Len() >= 256 {
			break
		}
	}
	s := strings.Join(strings.Fields(b.String()), " ")
	if len(s) > 256 {
		s = s[:256]
	}
	return s
}
