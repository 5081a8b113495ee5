package lakisim_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
)

// answer is one raw HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// errorCode returns the type and code of an Error answer.
func (a answer) errorCode(t *testing.T) (string, string) {
	t.Helper()
	var e lakiconnect.ErrorBody
	a.decode(t, &e)
	return e.Error.Type, e.Error.Code
}

func (a answer) wantError(t *testing.T, status int, typ, code string) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d; body %s", a.status, status, a.body)
	}
	gotType, gotCode := a.errorCode(t)
	if gotType != typ || gotCode != code {
		t.Fatalf("error = %s/%s, want %s/%s; body %s", gotType, gotCode, typ, code, a.body)
	}
}

type request struct {
	method  string
	url     string
	key     secret.Value
	body    string
	headers map[string]string
}

func send(t *testing.T, f *lakisimtest.Fixture, r request) answer {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, r.url, body)
	if err != nil {
		t.Fatal(err)
	}
	if !r.key.IsZero() {
		req.Header.Set("Authorization", "Bearer "+r.key.Reveal())
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	resp, err := f.Server.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get(lakiconnect.RequestIDHeader) == "" {
		t.Errorf("%s %s: no Request-Id header", r.method, r.url)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

func get(t *testing.T, f *lakisimtest.Fixture, url string, key secret.Value) answer {
	t.Helper()
	return send(t, f, request{method: http.MethodGet, url: url, key: key})
}

func post(t *testing.T, f *lakisimtest.Fixture, url string, key secret.Value, body string) answer {
	t.Helper()
	return send(t, f, request{method: http.MethodPost, url: url, key: key, body: body})
}

// createdKey is a create answer decoded with the secret in plain text.
type createdKey struct {
	laki.APIKey
	Secret string `json:"secret"`
}

func (c createdKey) value() secret.Value { return secret.New(c.Secret) }

func createKey(t *testing.T, f *lakisimtest.Fixture, env laki.Environment, caller secret.Value, body string) createdKey {
	t.Helper()
	a := post(t, f, f.URL(env)+"/api_keys", caller, body)
	if a.status != http.StatusCreated {
		t.Fatalf("create key: status %d: %s", a.status, a.body)
	}
	var k createdKey
	a.decode(t, &k)
	return k
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func containsAny(haystack []byte, needles ...string) (string, bool) {
	for _, n := range needles {
		if n != "" && bytes.Contains(haystack, []byte(n)) {
			return n, true
		}
	}
	return "", false
}

func httptestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
