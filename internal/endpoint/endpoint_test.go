package endpoint

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		raw  string
		want error // nil: accepted
	}{
		{"https://api.lakiconnect.example/v1", nil},
		{"HTTPS://api.lakiconnect.example", nil},
		{"https://10.0.0.1:8443", nil},
		{"http://127.0.0.1:8080/v1", nil},
		{"http://127.9.9.9", nil},
		{"http://localhost:4566", nil},
		{"http://LocalHost:4566", nil},
		{"http://[::1]:8200", nil},
		{"http://api.lakiconnect.example/v1", ErrPlainHTTP},
		{"http://10.0.0.1/v1", ErrPlainHTTP},
		{"http://localhost.attacker.example", ErrPlainHTTP},
		{"http://[::ffff:10.0.0.1]", ErrPlainHTTP},
		{"http://0.0.0.0:8080", ErrPlainHTTP},
		{"ftp://127.0.0.1/x", ErrScheme},
		{"file://localhost/etc/passwd", ErrScheme},
		{"https:///v1", ErrNoHost},
		{"https://:443/v1", ErrNoHost},
		{"127.0.0.1:8080", ErrNotURL},
		{"not a url", ErrNoHost},
		{"", ErrNoHost},
		{"http://[::1", ErrNotURL},
	}
	for _, tc := range tests {
		u, err := Parse(tc.raw)
		if !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.raw, err, tc.want)
		}
		if tc.want == nil && (u == nil || u.Host == "") {
			t.Errorf("Parse(%q) accepted it but returned %v", tc.raw, u)
		}
		if tc.want != nil && u != nil {
			t.Errorf("Parse(%q) refused it but returned a URL", tc.raw)
		}
	}
}

// A refused URL may be a secret (a Slack webhook); the error must not carry it.
func TestErrorsNeverQuoteTheURL(t *testing.T) {
	for _, raw := range []string{
		"http://hooks.slack.example/services/T000/B000/s3cr3tpath",
		"gopher://user:s3cr3tpath@example.com",
		"https://:1/s3cr3tpath",
		"http://[::1/s3cr3tpath",
	} {
		_, err := Parse(raw)
		if err == nil {
			t.Fatalf("Parse(%q) accepted it", raw)
		}
		if strings.Contains(err.Error(), "s3cr3tpath") {
			t.Errorf("Parse(%q) error %q quotes the URL", raw, err)
		}
	}
}

func TestIsLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "localhost.example": false,
		"[::1]": false, // a Hostname never has brackets; a caller that passes u.Host is wrong
	} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
