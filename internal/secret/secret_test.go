package secret_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/lakirotator/lakirotator/internal/secret"
)

const plain = "lk_live_0123456789abcdefghijABCDEFGHIJ0123456789"

type holder struct {
	Name  string       `json:"name" yaml:"name"`
	Key   secret.Value `json:"key" yaml:"key"`
	Inner *holder      `json:"inner,omitempty" yaml:"inner,omitempty"`
}

// Every way a value commonly leaves a program prints the redaction, never the secret.
func TestValueNeverPrintsItself(t *testing.T) {
	v := secret.New(plain)
	h := holder{Name: "checkout", Key: v, Inner: &holder{Name: "nested", Key: v}}
	var out bytes.Buffer
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		fmt.Fprintf(&out, verb+"\n", v)
		fmt.Fprintf(&out, verb+"\n", h)
		fmt.Fprintf(&out, verb+"\n", &h)
	}
	fmt.Fprintln(&out, v, h, []secret.Value{v}, map[string]secret.Value{"k": v})
	fmt.Fprintln(&out, fmt.Errorf("calling with %v: %w", v, errors.New("boom")))
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(b)
	y, err := yaml.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(y)
	for _, handler := range []slog.Handler{slog.NewJSONHandler(&out, nil), slog.NewTextHandler(&out, nil)} {
		l := slog.New(handler)
		l.Info("created", "key", v, "holder", h, slog.Any("any", v))
	}
	if strings.Contains(out.String(), plain) || strings.Contains(out.String(), fmt.Sprintf("%x", plain)) {
		t.Fatalf("the secret leaked:\n%s", out.String())
	}
	if n := strings.Count(out.String(), secret.Redacted); n < 20 {
		t.Errorf("only %d redactions in the output; the value should appear (redacted) everywhere:\n%s", n, out.String())
	}
}

func TestRevealRoundTripAndHelpers(t *testing.T) {
	var v secret.Value
	if !v.IsZero() {
		t.Error("zero Value is not IsZero")
	}
	if err := json.Unmarshal([]byte(`"`+plain+`"`), &v); err != nil {
		t.Fatal(err)
	}
	if v.Reveal() != plain {
		t.Error("UnmarshalJSON did not keep the value")
	}
	if v.Last4() != "6789" {
		t.Errorf("Last4 = %q", v.Last4())
	}
	if secret.New("short").Last4() != "" {
		t.Error("Last4 of a short value gives away too much of it")
	}
	if !v.Equal(secret.New(plain)) || v.Equal(secret.New(plain+"x")) {
		t.Error("Equal is wrong")
	}
	if err := json.Unmarshal([]byte(`42`), &v); err == nil || strings.Contains(err.Error(), "42") {
		t.Errorf("a non-string is refused without quoting it: %v", err)
	}
}
