package httpapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// authCatcher is a plain-http server that records every Authorization
// header it receives: where a leaked token would land.
type authCatcher struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newAuthCatcher(t *testing.T) *authCatcher {
	c := &authCatcher{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.seen = append(c.seen, r.Header.Get("Authorization"))
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"secrets":[]}`))
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *authCatcher) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

func TestClientRefusesHTTPSToHTTPRedirectAndKeepsTheToken(t *testing.T) {
	plain := newAuthCatcher(t)
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(tlsSrv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(tlsSrv.Certificate())

	c, err := httpapi.NewClient(tlsSrv.URL, secret.New(goodToken), &tls.Config{RootCAs: roots})
	require.NoError(t, err)
	_, err = c.Inventory(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "may not change scheme or host")
	assert.NotContains(t, err.Error(), goodToken)
	assert.Empty(t, plain.requests(), "nothing, least of all the token, may reach the http URL")
}

func TestClientFollowsSameOriginRedirect(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/inventory" {
			http.Redirect(w, r, "/v2/inventory", http.StatusTemporaryRedirect)
			return
		}
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = w.Write([]byte(`{"secrets":[]}`))
	}))
	t.Cleanup(srv.Close)
	c, err := httpapi.NewClient(srv.URL, secret.New(goodToken), nil)
	require.NoError(t, err)
	_, err = c.Inventory(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"Bearer " + goodToken}, auth)
}
