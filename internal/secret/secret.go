// Package secret holds the type for credential values. A Value prints, logs
// and marshals as [REDACTED] by default, so that a secret cannot leak into a
// log line, an error, an audit record or a notification by accident; the only
// way to the plain text is an explicit call to Reveal.
package secret

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what a Value shows in place of itself.
const Redacted = "[REDACTED]"

// Value is a secret string. The zero Value is empty.
//
// The string sits behind a pointer: where fmt prints by reflection without
// calling Format (a wrong verb on a struct that holds a Value), a pointer
// comes out as an address, never as the secret.
type Value struct {
	p *string
}

// New wraps a plain secret string.
func New(s string) Value {
	if s == "" {
		return Value{}
	}
	return Value{p: &s}
}

// Reveal returns the plain secret. Call it only where the secret must leave
// the process: an Authorization header, an HMAC key, a stored value.
func (v Value) Reveal() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

// IsZero reports whether the value is empty.
func (v Value) IsZero() bool { return v.p == nil || *v.p == "" }

// Last4 returns the last four characters, the part LakiConnect and the audit
// trail show to tell keys apart. Shorter values give "".
func (v Value) Last4() string {
	s := v.Reveal()
	if len(s) < 12 {
		return ""
	}
	return s[len(s)-4:]
}

// Equal compares two values in constant time.
func (v Value) Equal(o Value) bool {
	return subtle.ConstantTimeCompare([]byte(v.Reveal()), []byte(o.Reveal())) == 1
}

func (Value) String() string   { return Redacted }
func (Value) GoString() string { return Redacted }

// Format makes every fmt verb (%v, %+v, %#v, %s, %q, %x) print the redaction.
func (Value) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue keeps log/slog from printing the secret.
func (Value) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON redacts: a struct that holds a Value and is marshalled for a
// log, an API answer or an audit record shows no secret. Code that must write
// the secret (the stored value, a request body) reveals it explicitly.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText redacts for encoders that use encoding.TextMarshaler (YAML, CSV).
func (Value) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// UnmarshalJSON accepts a JSON string, so that API responses that carry a
// secret decode straight into a Value.
func (v *Value) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("secret: expected a JSON string")
	}
	*v = New(s)
	return nil
}
