package vaultstore

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// headerLog records the namespace header of every request on its way to Vault.
type headerLog struct {
	mu    sync.Mutex
	seen  map[string]string // path -> X-Vault-Namespace
	paths []string
}

// Why a proxy: Vault's open-source server accepts and ignores
// X-Vault-Namespace (namespaces are an Enterprise/HCP feature), so the
// server itself cannot show that the store sends it. A reverse proxy in
// front of the real server records the header on every request, logins
// included.
func TestNamespaceGoesOnEveryRequestAndIntoTheARN(t *testing.T) {
	ctx := context.Background()
	srv := vault.Server(t)
	admin := srv.Client(t)
	target, _ := url.Parse(srv.Addr)
	log := &headerLog{seen: map[string]string{}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.mu.Lock()
		log.seen[r.URL.Path] = r.Header.Get("X-Vault-Namespace")
		log.paths = append(log.paths, r.URL.Path)
		log.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	name := "auth/ns-" + randomHex(4)
	want := seedAuthSecret(t, admin, name)
	enableAuth(t, admin, "approle-ns", "approle")
	if _, err := admin.Logical().Write("auth/approle-ns/role/rotator", map[string]any{"token_policies": "auth-reader"}); err != nil {
		t.Fatal(err)
	}
	rid, _ := admin.Logical().Read("auth/approle-ns/role/rotator/role-id")
	sid, _ := admin.Logical().Write("auth/approle-ns/role/rotator/secret-id", nil)
	s, err := New(Config{Address: front.URL, Namespace: "payments/", Auth: Auth{Method: AuthAppRole, MountPath: "approle-ns",
		RoleID: rid.Data["role_id"].(string), SecretID: secret.New(sid.Data["secret_id"].(string))}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil || !got.Value.Equal(want) {
		t.Fatalf("Get through the namespace: %v", err)
	}
	if got.ARN != "vault:payments/secret/"+name {
		t.Errorf("ARN %q, want the namespace in it", got.ARN)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if _, ok := log.seen["/v1/auth/approle-ns/login"]; !ok {
		t.Fatalf("no login went through the proxy: %v", log.paths)
	}
	for _, p := range log.paths {
		if ns := log.seen[p]; ns != "payments/" && ns != "payments" {
			t.Errorf("%s went out with namespace %q, want payments", p, ns)
		}
	}
}

// A login token is replaced by a new login once two thirds of its lease
// have passed on the store's clock.
func TestLoginTokenRenewedBeforeItsLeaseEnds(t *testing.T) {
	ctx := context.Background()
	srv := vault.Server(t)
	admin := srv.Client(t)
	name := "auth/renew-" + randomHex(4)
	seedAuthSecret(t, admin, name)
	enableAuth(t, admin, "approle-renew", "approle")
	if _, err := admin.Logical().Write("auth/approle-renew/role/rotator", map[string]any{"token_policies": "auth-reader", "token_ttl": "30m"}); err != nil {
		t.Fatal(err)
	}
	rid, _ := admin.Logical().Read("auth/approle-renew/role/rotator/role-id")
	sid, _ := admin.Logical().Write("auth/approle-renew/role/rotator/secret-id", nil)
	clk := clock.NewFake(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s, err := New(Config{Address: srv.Addr, Clock: clk, Auth: Auth{Method: AuthAppRole, MountPath: "approle-renew",
		RoleID: rid.Data["role_id"].(string), SecretID: secret.New(sid.Data["secret_id"].(string))}})
	if err != nil {
		t.Fatal(err)
	}
	read := func() string {
		t.Helper()
		if _, err := s.Describe(ctx, name); err != nil {
			t.Fatal(err)
		}
		return s.client.Token()
	}
	first := read()
	clk.Advance(19 * time.Minute)
	if read() != first {
		t.Errorf("the token was replaced before two thirds of its 30m lease")
	}
	clk.Advance(2 * time.Minute)
	if read() == first {
		t.Errorf("the token was not replaced after two thirds of its 30m lease")
	}
}
