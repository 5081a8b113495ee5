package openapitest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/httpapi/openapitest"
)

// spy records what Wrap reports instead of failing the test.
type spy struct {
	testing.TB
	errs []string
}

func (s *spy) Errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

// The checker can fail: an answer with Go field names, and a malformed
// request that is served, are both reported.
func TestWrapReportsWhatTheDocumentDoesNotAllow(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		answer                   func(w http.ResponseWriter)
		want                     string
	}{
		{"Go field names in an answer", "GET", "/v1/inventory", "", func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"secrets":[{"Name":"x"}]}`))
		}, "not what the document says"},
		{"a bad request served", "POST", "/v1/triggers", `{"secrett":"x","cause":"manual"}`, func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{}`))
		}, "does not allow this request"},
		{"an undocumented route", "GET", "/v1/secrets", "", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, "not in the document"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &spy{TB: t}
			srv := httptest.NewServer(openapitest.Wrap(s, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tc.answer(w) })))
			defer srv.Close()
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if !strings.Contains(strings.Join(s.errs, "\n"), tc.want) {
				t.Errorf("reported %q, want %q", s.errs, tc.want)
			}
		})
	}
}
