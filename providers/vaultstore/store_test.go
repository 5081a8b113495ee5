package vaultstore

import (
	"context"
	"os"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/vaultserver"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
)

var vault vaultserver.Shared

func TestMain(m *testing.M) { os.Exit(vault.Run(m)) }

// tokenStore is a store on the shared devvault with the given token.
func tokenStore(t *testing.T, srv *vaultserver.Server, mount, token string, paths ...string) *Store {
	t.Helper()
	s, err := New(Config{Address: srv.Addr, CAFile: srv.CAFile, Mount: mount, Paths: paths,
		Auth: Auth{Method: AuthToken, Token: secret.New(token)}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func seedHarness(s *Store, admin *api.Client, mount string) storetest.Harness {
	return storetest.Harness{
		Store: s,
		Create: func(ctx context.Context, name, description string, tags map[string]string, initial *secret.Value) error {
			return vaultserver.Create(ctx, admin, mount, name, description, tags, initial)
		},
		ScheduleDeletion: func(ctx context.Context, name string) error {
			return vaultserver.ScheduleDeletion(ctx, admin, mount, name)
		},
	}
}

// The store passes the suite every store passes, on a real Vault server
// (v1.14.1 in process, KV v2 at secret/), with the root token.
func TestConformance(t *testing.T) {
	srv := vault.Server(t)
	admin := srv.Client(t)
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		return seedHarness(tokenStore(t, srv, "secret", srv.Token, "storetest"), admin, "secret")
	})
}
