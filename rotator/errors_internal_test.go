package rotator

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// refusal is a LakiConnect answer as the seam presents it: matched by laki's
// kinds with errors.Is, however it travelled.
func refusal(kinds ...error) error {
	return fmt.Errorf("create api key: %w", errors.Join(append([]error{laki.ErrRefused}, kinds...)...))
}

// The engine decides whether another attempt may help from the seams' own
// error kinds (laki's and secretstore's), never from a client's error type:
// what people must act on fails at once, what settles by itself is retried.
func TestRetryableByTheSeamsKinds(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"rate limited (429)":             {refusal(laki.ErrRateLimited), true},
		"unavailable (5xx)":              {refusal(laki.ErrUnavailable), true},
		"management key just rotated":    {refusal(laki.ErrUnauthorized), true},
		"idempotent request in flight":   {refusal(laki.ErrConflict), true},
		"key limit reached":              {refusal(laki.ErrConflict, laki.ErrKeyLimit), false},
		"missing scope (403)":            {refusal(laki.ErrForbidden), false},
		"not found (404)":                {refusal(laki.ErrNotFound), false},
		"idempotency key reused (422)":   {refusal(laki.ErrIdempotencyKeyReused), false},
		"store: no such secret":          {&secretstore.Error{Op: "Describe", Secret: "s", Kind: secretstore.ErrNotFound}, false},
		"store: access denied":           {&secretstore.Error{Op: "PutPending", Secret: "s", Kind: secretstore.ErrAccessDenied}, false},
		"store: token reused":            {&secretstore.Error{Op: "PutPending", Secret: "s", Kind: secretstore.ErrTokenReused}, false},
		"store: malformed value":         {&secretstore.Error{Op: "Get", Secret: "s", Kind: secretstore.ErrMalformedValue}, false},
		"store: throttled":               {&secretstore.Error{Op: "Get", Secret: "s", Kind: secretstore.ErrThrottled}, true},
		"network error":                  {errors.New("dial tcp: connection refused"), true},
		"cancelled":                      {fmt.Errorf("create: %w", context.Canceled), false},
		"aborted (a test hook, SIGTERM)": {fmt.Errorf("%w after create", ErrAborted), false},
		"a step already found permanent": {&StepError{Secret: "s", Step: "test", Err: errors.New("wrong environment"), Permanent: true}, false},
	} {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("%s: retryable = %v, want %v (%v)", name, got, tc.want, tc.err)
		}
		// stepErr carries the same answer as the step's Permanent flag.
		if se := (*StepError)(nil); errors.As(stepErr("s", "create", tc.err), &se) && se.Permanent == tc.want {
			t.Errorf("%s: stepErr Permanent = %v, want %v", name, se.Permanent, !tc.want)
		}
	}
}
