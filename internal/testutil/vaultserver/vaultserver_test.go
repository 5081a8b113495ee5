package vaultserver

import (
	"net/http"
	"testing"
)

func TestStartServesVaultAndStops(t *testing.T) {
	var addr string
	t.Run("start", func(t *testing.T) {
		srv := Start(t, Options{})
		addr = srv.Addr
		c := srv.Client(t)
		mounts, err := c.Sys().ListMounts()
		if err != nil {
			t.Fatal(err)
		}
		m, ok := mounts["secret/"]
		if !ok || m.Type != "kv" || m.Options["version"] != "2" {
			t.Fatalf("secret/ is %+v, want KV version 2", m)
		}
	})
	// The subtest's cleanup has stopped the server.
	if resp, err := http.Get(addr + "/v1/sys/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("devvault at %s still answers after the test ended", addr)
	}
}
