package cli_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A daemon URL that redirects to another origin must not get the CLI to
// send its bearer token there.
func TestCLIRefusesRedirectToAnotherOrigin(t *testing.T) {
	var mu sync.Mutex
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"secrets":[]}`))
	}))
	defer other.Close()
	daemon := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	defer daemon.Close()

	res := run(map[string]string{"LAKIROTATOR_TOKEN": testToken}, "status", "--api", daemon.URL)
	assert.Equal(t, 1, res.code, res.err)
	assert.Contains(t, res.err, "may not change scheme or host")
	assert.False(t, strings.Contains(res.out+res.err, testToken), "the token is never printed")
	mu.Lock()
	defer mu.Unlock()
	assert.Empty(t, leaked, "the other origin got a request (with Authorization %q)", leaked)
}
