package webhooksig_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
)

const (
	oldSecretText = "whsec_b2xkIHNlY3JldCBmb3IgdGVzdHMgb25seSEhISEhISE="
	newSecretText = "whsec_bmV3IHNlY3JldCBmb3IgdGVzdHMgb25seSEhISEhISE="
)

var (
	t0   = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	body = []byte(`{"id":"evt_123","type":"test.ping"}`)
)

// independentMAC recomputes the README's rule without the package's helpers.
func independentMAC(key string, unix string, body []byte) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(unix + "."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignMatchesTheDocumentedConstruction(t *testing.T) {
	got := webhooksig.Sign(t0, body, secret.New(oldSecretText), secret.New(newSecretText))
	unix := "1780315200"
	want := "t=" + unix + ",v1=" + independentMAC(oldSecretText, unix, body) + ",v1=" + independentMAC(newSecretText, unix, body)
	if got != want {
		t.Fatalf("Sign = %q\nwant %q", got, want)
	}
	// Sub-second parts of t are dropped, not rounded.
	if again := webhooksig.Sign(t0.Add(999*time.Millisecond), body, secret.New(oldSecretText), secret.New(newSecretText)); again != want {
		t.Fatalf("Sign with fractional second = %q, want %q", again, want)
	}
}

func TestSignNeverContainsTheSecret(t *testing.T) {
	h := webhooksig.Sign(t0, body, secret.New(oldSecretText))
	if strings.Contains(h, oldSecretText) || strings.Contains(h, strings.TrimPrefix(oldSecretText, "whsec_")) {
		t.Fatalf("header %q contains the secret", h)
	}
}

func TestParseHeader(t *testing.T) {
	sigA := strings.Repeat("ab", 32)
	sigB := strings.Repeat("0f", 32)
	tests := []struct {
		name    string
		in      string
		wantT   int64
		wantSig []string
		errPart string // substring of the error; "" means accepted
	}{
		{name: "one signature", in: "t=1780315200,v1=" + sigA, wantT: 1780315200, wantSig: []string{sigA}},
		{name: "two signatures in order", in: "t=1780315200,v1=" + sigA + ",v1=" + sigB, wantT: 1780315200, wantSig: []string{sigA, sigB}},
		{name: "t zero", in: "t=0,v1=" + sigA, wantT: 0, wantSig: []string{sigA}},
		{name: "empty", in: "", errPart: "empty"},
		{name: "no signature", in: "t=1780315200", errPart: "no v1 signature"},
		{name: "no t", in: "v1=" + sigA, errPart: "part 1 must be t"},
		{name: "t not first", in: "v1=" + sigA + ",t=1780315200", errPart: "part 1 must be t"},
		{name: "two t", in: "t=1780315200,t=1780315201,v1=" + sigA, errPart: "part 2: t must come first and only once"},
		{name: "uppercase hex", in: "t=1780315200,v1=" + strings.ToUpper(sigA), errPart: "part 2: v1 is not lowercase hex"},
		{name: "short signature", in: "t=1780315200,v1=" + sigA[:62], errPart: "part 2: v1 is 62 characters"},
		{name: "long signature", in: "t=1780315200,v1=" + sigA + "ab", errPart: "part 2: v1 is 66 characters"},
		{name: "non hex", in: "t=1780315200,v1=" + strings.Repeat("zz", 32), errPart: "not lowercase hex"},
		{name: "space after comma", in: "t=1780315200, v1=" + sigA, errPart: "part 2 has an unsupported scheme"},
		{name: "space in t", in: "t= 1780315200,v1=" + sigA, errPart: "not a decimal number"},
		{name: "trailing space", in: "t=1780315200,v1=" + sigA + " ", errPart: "v1 is 65 characters"},
		{name: "negative t", in: "t=-5,v1=" + sigA, errPart: "not a decimal number"},
		{name: "plus t", in: "t=+5,v1=" + sigA, errPart: "not a decimal number"},
		{name: "leading zero t", in: "t=01780315200,v1=" + sigA, errPart: "leading zero"},
		{name: "huge t", in: "t=99999999999999999999,v1=" + sigA, errPart: "more than 12 digits"},
		{name: "empty part", in: "t=1780315200,,v1=" + sigA, errPart: "part 2 is empty"},
		{name: "trailing comma", in: "t=1780315200,v1=" + sigA + ",", errPart: "part 3 is empty"},
		{name: "empty value", in: "t=1780315200,v1=", errPart: "part 2 has an empty value"},
		{name: "empty t", in: "t=,v1=" + sigA, errPart: "part 1 has an empty value"},
		{name: "no equals", in: "t=1780315200,v1" + sigA, errPart: "part 2 has no '='"},
		{name: "v0 scheme rejected", in: "t=1780315200,v1=" + sigA + ",v0=" + sigB, errPart: "part 3 has an unsupported scheme"},
		{name: "v2 scheme rejected", in: "t=1780315200,v2=" + sigB + ",v1=" + sigA, errPart: "part 2 has an unsupported scheme"},
		{name: "unknown key", in: "t=1780315200,v1=" + sigA + ",foo=bar", errPart: "unsupported scheme"},
		{name: "too long", in: "t=1780315200" + strings.Repeat(",v1="+sigA, 70), errPart: "longer than 4096"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := webhooksig.ParseHeader(tc.in)
			if tc.errPart != "" {
				if err == nil {
					t.Fatalf("ParseHeader(%q) accepted: %+v", tc.in, h)
				}
				if !errors.Is(err, webhooksig.ErrMalformedHeader) {
					t.Fatalf("error %v does not wrap ErrMalformedHeader", err)
				}
				if !strings.Contains(err.Error(), tc.errPart) {
					t.Fatalf("error %q does not say %q", err, tc.errPart)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseHeader(%q): %v", tc.in, err)
			}
			if h.Timestamp.Unix() != tc.wantT {
				t.Fatalf("timestamp %d, want %d", h.Timestamp.Unix(), tc.wantT)
			}
			if len(h.Signatures) != len(tc.wantSig) {
				t.Fatalf("%d signatures, want %d", len(h.Signatures), len(tc.wantSig))
			}
			for i, s := range tc.wantSig {
				if hex.EncodeToString(h.Signatures[i]) != s {
					t.Fatalf("signature %d = %x, want %s", i, h.Signatures[i], s)
				}
			}
			if h.String() != tc.in {
				t.Fatalf("round trip %q, want %q", h.String(), tc.in)
			}
		})
	}
}

func TestParseErrorsDoNotEchoTheHeader(t *testing.T) {
	sig := strings.Repeat("c3", 31) + "XY"
	_, err := webhooksig.ParseHeader("t=1780315200,v1=" + sig)
	if err == nil || strings.Contains(err.Error(), sig) {
		t.Fatalf("error %v echoes header content", err)
	}
}

func TestVerifyTolerance(t *testing.T) {
	s := secret.New(oldSecretText)
	fc := clock.NewFake(t0)
	v := webhooksig.Verifier{Clock: fc}
	tests := []struct {
		name    string
		signed  time.Time
		wantErr error
	}{
		{"same instant", t0, nil},
		{"at tolerance in the past", t0.Add(-300 * time.Second), nil},
		{"at tolerance in the future", t0.Add(300 * time.Second), nil},
		{"just past tolerance in the past", t0.Add(-301 * time.Second), webhooksig.ErrTimestampOutOfTolerance},
		{"just past tolerance in the future", t0.Add(301 * time.Second), webhooksig.ErrTimestampOutOfTolerance},
		{"an hour old", t0.Add(-time.Hour), webhooksig.ErrTimestampOutOfTolerance},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(webhooksig.Sign(tc.signed, body, s), body, s)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
		})
	}

	// The same valid header stops verifying once the receiver's clock moves on.
	h := webhooksig.Sign(t0, body, s)
	if err := v.Verify(h, body, s); err != nil {
		t.Fatalf("fresh header: %v", err)
	}
	fc.Advance(5*time.Minute + time.Second)
	if err := v.Verify(h, body, s); !errors.Is(err, webhooksig.ErrTimestampOutOfTolerance) {
		t.Fatalf("after 301s: %v, want ErrTimestampOutOfTolerance", err)
	}

	// A custom tolerance is honoured.
	narrow := webhooksig.Verifier{Clock: clock.NewFake(t0), Tolerance: 10 * time.Second}
	if err := narrow.Verify(webhooksig.Sign(t0.Add(-11*time.Second), body, s), body, s); !errors.Is(err, webhooksig.ErrTimestampOutOfTolerance) {
		t.Fatalf("narrow tolerance: %v", err)
	}
	if err := narrow.Verify(webhooksig.Sign(t0.Add(-10*time.Second), body, s), body, s); err != nil {
		t.Fatalf("narrow tolerance at the edge: %v", err)
	}
}

func TestVerifyOutOfToleranceEvenWithoutAValidSignature(t *testing.T) {
	v := webhooksig.Verifier{Clock: clock.NewFake(t0)}
	h := "t=1,v1=" + strings.Repeat("00", 32)
	if err := v.Verify(h, body, secret.New(oldSecretText)); !errors.Is(err, webhooksig.ErrTimestampOutOfTolerance) {
		t.Fatalf("Verify = %v, want ErrTimestampOutOfTolerance", err)
	}
}

func TestVerifyMultipleSecretsAndSignatures(t *testing.T) {
	oldS, newS := secret.New(oldSecretText), secret.New(newSecretText)
	other := secret.New("whsec_dW5yZWxhdGVkIHNlY3JldCBub3QgdXNlZCBhdCBhbGwhISE=")
	v := webhooksig.Verifier{Clock: clock.NewFake(t0)}
	bothSigned := webhooksig.Sign(t0, body, oldS, newS)
	tests := []struct {
		name    string
		header  string
		holds   []secret.Value
		wantErr error
	}{
		{"receiver holds old only", bothSigned, []secret.Value{oldS}, nil},
		{"receiver holds new only", bothSigned, []secret.Value{newS}, nil},
		{"receiver holds both", bothSigned, []secret.Value{newS, oldS}, nil},
		{"receiver holds unrelated and new", bothSigned, []secret.Value{other, newS}, nil},
		{"receiver holds unrelated only", bothSigned, []secret.Value{other}, webhooksig.ErrNoValidSignature},
		{"receiver holds nothing", bothSigned, nil, webhooksig.ErrNoValidSignature},
		{"receiver holds an empty secret", bothSigned, []secret.Value{{}}, webhooksig.ErrNoValidSignature},
		// After the old secret is expired LakiConnect signs with the new one only:
		// a receiver still holding only the rotated-out secret must fail.
		{"rotated-out secret no longer verifies", webhooksig.Sign(t0, body, newS), []secret.Value{oldS}, webhooksig.ErrNoValidSignature},
		{"rotated-in secret verifies", webhooksig.Sign(t0, body, newS), []secret.Value{oldS, newS}, nil},
		{"malformed header", "garbage", []secret.Value{oldS}, webhooksig.ErrMalformedHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(tc.header, body, tc.holds...)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				for _, s := range []string{oldSecretText, newSecretText, other.Reveal()} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error %q contains a secret", err)
					}
				}
			}
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	s := secret.New(oldSecretText)
	v := webhooksig.Verifier{Clock: clock.NewFake(t0)}
	h := webhooksig.Sign(t0, body, s)

	tampered := bytes.Replace(body, []byte("evt_123"), []byte("evt_124"), 1)
	if err := v.Verify(h, tampered, s); !errors.Is(err, webhooksig.ErrNoValidSignature) {
		t.Fatalf("tampered body: %v", err)
	}
	// Re-stamping the header with a new t without re-signing breaks the HMAC.
	parsed, err := webhooksig.ParseHeader(h)
	if err != nil {
		t.Fatal(err)
	}
	parsed.Timestamp = parsed.Timestamp.Add(time.Second)
	if err := v.Verify(parsed.String(), body, s); !errors.Is(err, webhooksig.ErrNoValidSignature) {
		t.Fatalf("re-stamped t: %v", err)
	}
}

func TestVerifierZeroValueUsesRealClockAndDefaultTolerance(t *testing.T) {
	s := secret.New(oldSecretText)
	var v webhooksig.Verifier
	if err := v.Verify(webhooksig.Sign(time.Now(), body, s), body, s); err != nil {
		t.Fatalf("fresh signature with zero Verifier: %v", err)
	}
	if err := v.Verify(webhooksig.Sign(time.Now().Add(-time.Hour), body, s), body, s); !errors.Is(err, webhooksig.ErrTimestampOutOfTolerance) {
		t.Fatalf("hour-old signature with zero Verifier: %v", err)
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add(webhooksig.Sign(t0, body, secret.New(oldSecretText)))
	f.Add(webhooksig.Sign(t0, body, secret.New(oldSecretText), secret.New(newSecretText)))
	f.Add("t=0,v1=" + strings.Repeat("0", 64))
	f.Add("t=1780315200,v0=abc,v1=" + strings.Repeat("a", 64))
	f.Add("")
	f.Add(",,,=")
	f.Fuzz(func(t *testing.T, in string) {
		h, err := webhooksig.ParseHeader(in)
		if err != nil {
			if !errors.Is(err, webhooksig.ErrMalformedHeader) {
				t.Fatalf("error %v does not wrap ErrMalformedHeader", err)
			}
			return
		}
		if len(h.Signatures) == 0 {
			t.Fatalf("accepted %q without signatures", in)
		}
		for _, sig := range h.Signatures {
			if len(sig) != sha256.Size {
				t.Fatalf("accepted %q with a %d-byte signature", in, len(sig))
			}
		}
		if out := h.String(); out != in {
			t.Fatalf("round trip of %q gave %q", in, out)
		}
		again, err := webhooksig.ParseHeader(h.String())
		if err != nil || !again.Timestamp.Equal(h.Timestamp) || len(again.Signatures) != len(h.Signatures) {
			t.Fatalf("re-parse of %q: %+v, %v", h.String(), again, err)
		}
	})
}

// BenchmarkVerify measures a receiver's cost per delivery during a rotation:
// two signatures checked against two held secrets.
func BenchmarkVerify(b *testing.B) {
	oldS, newS := secret.New(oldSecretText), secret.New(newSecretText)
	payload := bytes.Repeat([]byte("x"), 2048)
	h := webhooksig.Sign(t0, payload, oldS, newS)
	v := webhooksig.Verifier{Clock: clock.NewFake(t0)}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(h, payload, oldS, newS); err != nil {
			b.Fatal(err)
		}
	}
}
