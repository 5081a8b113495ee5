package vaultstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/vaultserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func vid() string { return randomHex(16) }

// rotated seeds a secret and rotates it once: v0 (by hand) is AWSPREVIOUS,
// v1 AWSCURRENT and AWSPENDING.
func rotated(t *testing.T, s *Store, admin *api.Client) (name, v0, v1 string) {
	t.Helper()
	ctx := context.Background()
	name = "behaviour/" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + randomHex(4)
	initial := secret.New("initial-" + randomHex(8))
	if err := vaultserver.Create(ctx, admin, "secret", name, "", nil, &initial); err != nil {
		t.Fatal(err)
	}
	sec, err := s.Describe(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cur, ok := sec.VersionWithStage(secretstore.StageCurrent)
	if !ok {
		t.Fatalf("a secret written by hand has no AWSCURRENT: %+v", sec.Versions)
	}
	v0, v1 = cur.ID, vid()
	if err := s.PutPending(ctx, name, v1, secret.New("next-"+randomHex(8))); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveStage(ctx, name, secretstore.StageCurrent, v1, v0); err != nil {
		t.Fatal(err)
	}
	return name, v0, v1
}

func sharedStore(t *testing.T) (*Store, *api.Client) {
	srv := vault.Server(t)
	return tokenStore(t, srv, "secret", srv.Token, "behaviour"), srv.Client(t)
}

func wantErr(t *testing.T, what string, err, kind error, parts ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: error %v, want kind %q", what, err, kind)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %q does not say %q", what, err, p)
		}
	}
}

// Two replicas promote from the same current version: the one whose
// check-and-set write loses re-reads and is refused as on AWS, naming the
// path and the version that won.
func TestCASRaceLoserIsRefusedNamingThePath(t *testing.T) {
	ctx := context.Background()
	s, admin := sharedStore(t)
	name, _, v1 := rotated(t, s, admin)
	a, b := vid(), vid()
	for _, id := range []string{a, b} {
		if err := s.PutPending(ctx, name, id, secret.New("value-"+id)); err != nil {
			t.Fatal(err)
		}
	}
	// Replica A computed its move from the state before B's.
	before, err := s.load(ctx, "test", name)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MoveStage(ctx, name, secretstore.StageCurrent, b, v1); err != nil {
		t.Fatal(err)
	}
	next, _, err := s.moved(name, before.rec, secretstore.StageCurrent, a, v1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.write(ctx, "MoveStage", name, before.meta.Current, map[string]any{dataRecord: next.encode()}); !errors.Is(err, errCASLost) {
		t.Fatalf("a write computed from version %d after another writer's: %v, want the check-and-set refusal", before.meta.Current, err)
	}
	err = s.MoveStage(ctx, name, secretstore.StageCurrent, a, v1)
	wantErr(t, "MoveStage from a version that lost AWSCURRENT", err, secretstore.ErrInvalidRequest, "secret/data/"+name, b, "another writer")
	sec, err := s.Describe(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if cur, _ := sec.VersionWithStage(secretstore.StageCurrent); cur.ID != b {
		t.Errorf("AWSCURRENT is on %s, want the winner %s", cur.ID, b)
	}
	if prev, _ := sec.VersionWithStage(secretstore.StagePrevious); prev.ID != v1 {
		t.Errorf("AWSPREVIOUS is on %s, want %s", prev.ID, v1)
	}
}

// A crash between the data write (the new version with the stage record)
// and the copy into custom metadata loses nothing: the record is in the
// data; the copy shows it is behind until the retried put refreshes it.
func TestCrashBetweenDataWriteAndMetadataCopy(t *testing.T) {
	ctx := context.Background()
	s, admin := sharedStore(t)
	name, _, v1 := rotated(t, s, admin)
	st, err := s.load(ctx, "test", name)
	if err != nil {
		t.Fatal(err)
	}
	id, value := vid(), secret.New("crash-"+randomHex(8))
	next := st.rec.clone()
	n := st.meta.Current + 1
	next.Versions[n] = id
	next.Stages[secretstore.StagePending] = n
	// The put's data write, then the crash: no copy.
	if err := s.write(ctx, "PutPending", name, st.meta.Current, map[string]any{dataRecord: next.encode(), dataVersionID: id, dataValue: value.Reveal()}); err != nil {
		t.Fatal(err)
	}
	meta, err := admin.KVv2("secret").GetMetadata(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if got := meta.CustomMetadata[metaRecord]; got == strconv.Itoa(n) {
		t.Fatalf("the copy is at %v before it was written", got)
	}
	got, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StagePending))
	if err != nil || got.ID != id || !got.Value.Equal(value) {
		t.Fatalf("Get(AWSPENDING) after the crash = %s, %v; want the crashed put's version %s", got.ID, err, id)
	}
	if cur, _ := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent)); cur.ID != v1 {
		t.Errorf("AWSCURRENT moved to %s on a crashed put, want %s", cur.ID, v1)
	}
	// The engine retries the put: nothing new is written, the copy catches up.
	if err := s.PutPending(ctx, name, id, value); err != nil {
		t.Fatal(err)
	}
	meta, err = admin.KVv2("secret").GetMetadata(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if meta.CurrentVersion != n {
		t.Errorf("the retried put wrote version %d, want none after %d", meta.CurrentVersion, n)
	}
	want := map[string]string{metaRecord: strconv.Itoa(n), metaPending: strconv.Itoa(n), metaCurrent: strconv.Itoa(n - 2)}
	for k, v := range want {
		if meta.CustomMetadata[k] != v {
			t.Errorf("custom metadata %s = %v, want %s (all %v)", k, meta.CustomMetadata[k], v, meta.CustomMetadata)
		}
	}
}

// Versions deleted or destroyed behind the store's back are clear errors
// naming the path and the KV version, and say whether they can come back.
func TestDeletedAndDestroyedVersions(t *testing.T) {
	ctx := context.Background()
	s, admin := sharedStore(t)
	kv := admin.KVv2("secret")

	name, v0, _ := rotated(t, s, admin)
	// v0 is KV version 1 (written by hand).
	if err := kv.DeleteVersions(ctx, name, []int{1}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Get(ctx, name, secretstore.ByID(v0))
	wantErr(t, "Get of a deleted version", err, secretstore.ErrNotFound, "version 1 of secret/data/"+name, "deleted", "vault kv undelete -mount=secret -versions=1 "+name)
	_, err = s.Get(ctx, name, secretstore.ByStage(secretstore.StagePrevious))
	wantErr(t, "Get(AWSPREVIOUS) of a deleted version", err, secretstore.ErrNotFound, "deleted")
	if err := kv.Undelete(ctx, name, []int{1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, name, secretstore.ByID(v0)); err != nil {
		t.Fatalf("Get after undelete: %v", err)
	}
	if err := kv.Destroy(ctx, name, []int{1}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(ctx, name, secretstore.ByID(v0))
	wantErr(t, "Get of a destroyed version", err, secretstore.ErrNotFound, "version 1 of secret/data/"+name, "destroyed and cannot be brought back")

	// The latest version holds the stage record: deleting it is a scheduled
	// deletion, destroying it a clear refusal.
	name2, _, _ := rotated(t, s, admin)
	if err := kv.Delete(ctx, name2); err != nil {
		t.Fatal(err)
	}
	err = s.PutPending(ctx, name2, vid(), secret.New("x-"+randomHex(4)))
	wantErr(t, "PutPending after vault kv delete", err, secretstore.ErrScheduledForDeletion, "secret/data/"+name2, "vault kv undelete")
	meta, err := kv.GetMetadata(ctx, name2)
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Destroy(ctx, name2, []int{meta.CurrentVersion}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Describe(ctx, name2)
	wantErr(t, "Describe after the latest version was destroyed", err, secretstore.ErrMalformedValue, "secret/data/"+name2, "destroyed")
	// Discovery still lists it (and every other secret), without versions.
	listed := map[string]int{}
	if err := s.List(ctx, nil, func(sec secretstore.Secret) error { listed[sec.Name] = len(sec.Versions); return nil }); err != nil {
		t.Fatalf("List with one broken secret: %v", err)
	}
	if n, ok := listed[name2]; !ok || n != 0 {
		t.Errorf("the broken secret is listed %v with %d versions, want listed without versions", ok, n)
	}
	if n := listed[name]; n != 2 {
		t.Errorf("%s is listed with %d versions, want 2", name, n)
	}
}

// A version written by hand on top of the store's becomes AWSCURRENT, the
// old current AWSPREVIOUS, as a PutSecretValue without stages does on AWS.
func TestVersionWrittenByHandIsAdopted(t *testing.T) {
	ctx := context.Background()
	s, admin := sharedStore(t)
	name, _, v1 := rotated(t, s, admin)
	out, err := admin.KVv2("secret").Put(ctx, name, map[string]any{"value": "by-hand-" + randomHex(4)})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := s.Describe(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := sec.VersionWithStage(secretstore.StageCurrent)
	prev, _ := sec.VersionWithStage(secretstore.StagePrevious)
	if want := "kv-" + strconv.Itoa(out.VersionMetadata.Version); cur.ID != want || prev.ID != v1 {
		t.Errorf("after a write by hand AWSCURRENT = %s, AWSPREVIOUS = %s; want %s and %s", cur.ID, prev.ID, want, v1)
	}
}

// A token Vault refuses is a clear access-denied error naming the path.
func TestForbiddenNamesThePathAndPolicy(t *testing.T) {
	ctx := context.Background()
	srv := vault.Server(t)
	admin := srv.Client(t)
	token, err := vaultserver.PolicyToken(ctx, admin, "read-only-elsewhere", `path "other/*" { capabilities = ["read"] }`)
	if err != nil {
		t.Fatal(err)
	}
	s := tokenStore(t, srv, "secret", token)
	_, err = s.Describe(ctx, "team/orders-api")
	wantErr(t, "Describe without a policy", err, secretstore.ErrAccessDenied,
		`"team/orders-api"`, "403", `must grant "read" on "secret/metadata/team/orders-api"`, PolicyFile)
}

func TestAddressAndTLSRules(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"https://vault.example.com:8200", true},
		{"http://127.0.0.1:8200", true},
		{"http://localhost:8200", true},
		{"http://[::1]:8200", true},
		{"http://vault.example.com:8200", false},
		{"http://10.0.0.5:8200", false},
		{"ftp://vault.example.com", false},
		{"vault.example.com:8200", false},
	} {
		err := CheckAddress(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddress(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
	// The client library reads VAULT_SKIP_VERIFY; the store must not.
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_AGENT_ADDR", "http://127.0.0.1:1")
	c, err := newClient(Config{Address: "https://vault.example.com:8200"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Address() != "https://vault.example.com:8200" {
		t.Errorf("address %s, want the configured one", c.Address())
	}
	tr, ok := c.CloneConfig().HttpClient.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil {
		t.Fatal("the client has no TLS settings")
	}
	if tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("TLS settings: skip verify %v, min version %#x; want verification on and TLS 1.2 or later",
			tr.TLSClientConfig.InsecureSkipVerify, tr.TLSClientConfig.MinVersion)
	}
}

// Over TLS with the CA file the store works; without the CA the server's
// certificate is refused (verification stays on).
func TestTLSWithCAFile(t *testing.T) {
	ctx := context.Background()
	srv := vaultserver.Start(t, vaultserver.Options{TLS: true})
	if !strings.HasPrefix(srv.Addr, "https://") {
		t.Fatalf("devvault with TLS serves %s", srv.Addr)
	}
	admin := srv.Client(t)
	initial := secret.New("tls-initial")
	if err := vaultserver.Create(ctx, admin, "secret", "tls/one", "", nil, &initial); err != nil {
		t.Fatal(err)
	}
	s := tokenStore(t, srv, "secret", srv.Token)
	got, err := s.Get(ctx, "tls/one", secretstore.ByStage(secretstore.StageCurrent))
	if err != nil || !got.Value.Equal(initial) {
		t.Fatalf("Get over TLS with the CA file: %v", err)
	}
	noCA, err := New(Config{Address: srv.Addr, Auth: Auth{Method: AuthToken, Token: secret.New(srv.Token)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noCA.Get(ctx, "tls/one", secretstore.ByStage(secretstore.StageCurrent)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Get without the CA file: %v, want a certificate error", err)
	}
}
