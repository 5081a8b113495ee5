// Package webhooksig signs and verifies LakiConnect's X-LakiConnect-Signature
// header:
//
//	t=<unix seconds>,v1=<hex>[,v1=<hex>...]
//
// Each v1 is the lowercase hex HMAC-SHA256, keyed with the UTF-8 bytes of one
// whole secret string (prefix included), over "<t>" + "." + the raw body. One
// v1 is sent for every secret the endpoint signs with, so that a receiver
// holding either the old or the new secret verifies during a rotation.
//
// Parsing is strict. The header must be exactly "t=" then one or more
// ",v1=" parts, in that order: t first and once, a canonical decimal (no sign,
// no leading zeros), every v1 64 lowercase hex digits, no spaces, no empty
// parts. Scheme names other than v1 (v0, v2, ...) are rejected, not ignored:
// LakiConnect's contract defines only v1 and tells receivers to reject what is
// malformed, and a part a receiver does not understand is indistinguishable
// from tampering. Because of this strictness every accepted header is in the
// one form Sign produces, and Header.String reproduces it byte for byte.
package webhooksig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// DefaultTolerance is how far the header's t may be from the receiver's clock,
// either way, when Verifier.Tolerance is zero.
const DefaultTolerance = 300 * time.Second

// MaxHeaderLength bounds the header a receiver will parse; a real header with
// a handful of signatures is well under 1 KiB.
const MaxHeaderLength = 4096

// maxTimestampDigits keeps t within what time.Unix handles sensibly.
const maxTimestampDigits = 12

// Errors of Verify and ParseHeader; they are wrapped with detail, test with errors.Is.
var (
	ErrMalformedHeader         = errors.New("webhooksig: malformed signature header")
	ErrTimestampOutOfTolerance = errors.New("webhooksig: signature timestamp outside tolerance")
	ErrNoValidSignature        = errors.New("webhooksig: no signature matches any secret")
)

// Sign returns the header value "t=<unix>,v1=<hex>[,v1=<hex>...]", one v1 per
// secret, in the given order.
func Sign(t time.Time, body []byte, secrets ...secret.Value) string {
	h := Header{Timestamp: time.Unix(t.Unix(), 0)}
	for _, s := range secrets {
		h.Signatures = append(h.Signatures, mac(h.Timestamp.Unix(), body, s))
	}
	return h.String()
}

// mac is HMAC-SHA256 keyed with the whole secret string over "<t>.<body>".
func mac(unix int64, body []byte, s secret.Value) []byte {
	m := hmac.New(sha256.New, []byte(s.Reveal()))
	m.Write([]byte(strconv.FormatInt(unix, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Header is a parsed signature header. Signatures are the raw HMAC bytes.
type Header struct {
	Timestamp  time.Time
	Signatures [][]byte
}

// String formats h as the header value Sign would send.
func (h Header) String() string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(h.Timestamp.Unix(), 10))
	for _, sig := range h.Signatures {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(sig))
	}
	return b.String()
}

// ParseHeader parses a header value strictly (see the package comment). Its
// errors wrap ErrMalformedHeader and name the offending part by position,
// never echoing its content.
func ParseHeader(v string) (Header, error) {
	if v == "" {
		return Header{}, fmt.Errorf("%w: empty", ErrMalformedHeader)
	}
	if len(v) > MaxHeaderLength {
		return Header{}, fmt.Errorf("%w: %d bytes, longer than %d", ErrMalformedHeader, len(v), MaxHeaderLength)
	}
	parts := strings.Split(v, ",")
	var h Header
	for i, p := range parts {
		n := i + 1
		name, value, ok := strings.Cut(p, "=")
		switch {
		case p == "":
			return Header{}, fmt.Errorf("%w: part %d is empty", ErrMalformedHeader, n)
		case !ok:
			return Header{}, fmt.Errorf("%w: part %d has no '='", ErrMalformedHeader, n)
		case value == "":
			return Header{}, fmt.Errorf("%w: part %d has an empty value", ErrMalformedHeader, n)
		}
		switch name {
		case "t":
			if i != 0 {
				return Header{}, fmt.Errorf("%w: part %d: t must come first and only once", ErrMalformedHeader, n)
			}
			unix, err := parseUnix(value)
			if err != nil {
				return Header{}, fmt.Errorf("%w: part %d: t %v", ErrMalformedHeader, n, err)
			}
			h.Timestamp = time.Unix(unix, 0)
		case "v1":
			if i == 0 {
				return Header{}, fmt.Errorf("%w: part 1 must be t", ErrMalformedHeader)
			}
			sig, err := parseSig(value)
			if err != nil {
				return Header{}, fmt.Errorf("%w: part %d: v1 %v", ErrMalformedHeader, n, err)
			}
			h.Signatures = append(h.Signatures, sig)
		default:
			if i == 0 {
				return Header{}, fmt.Errorf("%w: part 1 must be t", ErrMalformedHeader)
			}
			return Header{}, fmt.Errorf("%w: part %d has an unsupported scheme (only v1 is accepted)", ErrMalformedHeader, n)
		}
	}
	if len(h.Signatures) == 0 {
		return Header{}, fmt.Errorf("%w: no v1 signature", ErrMalformedHeader)
	}
	return h, nil
}

func parseUnix(s string) (int64, error) {
	if len(s) > maxTimestampDigits {
		return 0, fmt.Errorf("has more than %d digits", maxTimestampDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("is not a decimal number")
		}
	}
	if len(s) > 1 && s[0] == '0' {
		return 0, errors.New("has a leading zero")
	}
	return strconv.ParseInt(s, 10, 64)
}

func parseSig(s string) ([]byte, error) {
	if len(s) != 2*sha256.Size {
		return nil, fmt.Errorf("is %d characters, want %d", len(s), 2*sha256.Size)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return nil, errors.New("is not lowercase hex")
		}
	}
	return hex.DecodeString(s)
}

// Verifier checks signature headers against a clock.
type Verifier struct {
	// Clock is the receiver's clock; nil means the system clock.
	Clock clock.Clock
	// Tolerance is how far t may be from Clock.Now, either way; zero means DefaultTolerance.
	Tolerance time.Duration
}

// Verify parses the header, rejects a timestamp more than the tolerance away
// from now (either way, whatever the signatures), and accepts if any v1 equals
// the HMAC of body under any of the secrets, compared in constant time.
// Empty secrets are skipped: they are a misconfiguration, never a key.
func (v Verifier) Verify(header string, body []byte, secrets ...secret.Value) error {
	h, err := ParseHeader(header)
	if err != nil {
		return err
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	var c clock.Clock = clock.Real{}
	if v.Clock != nil {
		c = v.Clock
	}
	skew := c.Now().Sub(h.Timestamp)
	if skew > tol || skew < -tol {
		return fmt.Errorf("%w: timestamp is %s from now, tolerance %s", ErrTimestampOutOfTolerance, skew.Round(time.Second), tol)
	}
	unix := h.Timestamp.Unix()
	ok := false
	for _, s := range secrets {
		if s.IsZero() {
			continue
		}
		want := mac(unix, body, s)
		for _, got := range h.Signatures {
			// No early exit: the work done does not depend on which pair matched.
			if hmac.Equal(want, got) {
				ok = true
			}
		}
	}
	if !ok {
		return fmt.Errorf("%w: %d signature(s) checked against %d secret(s)", ErrNoValidSignature, len(h.Signatures), len(secrets))
	}
	return nil
}
