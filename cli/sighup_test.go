package cli_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/laki"

	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/cli"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/providers/lakisim/lakisimtest"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// TestSIGHUPReloadsAGoodConfigAndKeepsTheOldOneOnABadOne runs `serve` and
// sends the process SIGHUP twice: first with a broken config on disk (the
// reload is refused, the daemon keeps serving), then with a good one.
func TestSIGHUPReloadsAGoodConfigAndKeepsTheOldOneOnABadOne(t *testing.T) {
	fx := lakisimtest.Start(t, lakisimtest.WithClock(clock.NewFake(time.Now().UTC())))
	dir := t.TempDir()
	mgmt, err := fx.Sim.CreateKey(laki.Sandbox, fx.MasterMerchantID, "management", []laki.Scope{
		laki.ScopeReportsRead, laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite})
	require.NoError(t, err)
	store, err := localstore.Open(filepath.Join(dir, "store.json"))
	require.NoError(t, err)
	v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: "sandbox", MasterMerchantID: fx.MasterMerchantID,
		KeyID: mgmt.ID, Secret: mgmt.Secret, Scopes: []string{"reports:read", "api_keys:read", "api_keys:write"}, CreatedAt: time.Now().UTC()}.Encode()
	require.NoError(t, err)
	_, err = store.Create(context.Background(), "mgmt/sandbox", "", nil, &v)
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "policies"), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policies", "reporting.yaml"), []byte(
		"name: reporting\nkind: api_key\nscopes: [reports:read]\nenvironments: [sandbox]\nmax_age: 30d\nschedule: \"0 3 * * *\"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "policies", "mgmt.yaml"), []byte(
		"name: mgmt\nkind: management_key\nscopes: [reports:read, api_keys:read, api_keys:write]\nenvironments: [sandbox]\nmax_age: 30d\nschedule: \"0 4 * * 0\"\n"), 0o600))
	cfgPath := filepath.Join(dir, "lakirotator.yaml")
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	listen := probe.Addr().String()
	require.NoError(t, probe.Close())
	writeConfig := func(level string) {
		require.NoError(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf(`version: 1
store: {kind: local, local_path: store.json}
policies_dir: policies
environments:
  sandbox:
    aws: {region: us-east-1}
    lakiconnect:
      base_url: %s
      master_merchants:
        - id: %s
          management_key: {secret: mgmt/sandbox, policy: mgmt}
http: {listen: "%s"}
log: {format: json, level: %s}
`, fx.SandboxURL, fx.MasterMerchantID, listen, level)), 0o600))
	}
	writeConfig("info")

	var stderr syncbuf.Buffer
	code := make(chan int, 1)
	go func() {
		code <- cli.Main([]string{"serve", "--config", cfgPath}, cli.IO{In: strings.NewReader(""), Out: &syncbuf.Buffer{}, Err: &stderr, Env: func(string) string { return "" }})
	}()
	waitFor := func(what string) {
		t.Helper()
		require.Eventually(t, func() bool {
			select {
			case c := <-code:
				t.Fatalf("serve exited with %d while waiting for %q:\n%s", c, what, stderr.String())
			default:
			}
			return strings.Contains(stderr.String(), what)
		}, 10*time.Second, 10*time.Millisecond,
			"waiting for %q in the daemon's log:\n%s", what, stderr.String())
	}
	waitFor(`"msg":"lakirotator serving"`)

	require.NoError(t, os.WriteFile(cfgPath, []byte("version: 1\nenvironments: {sandbox: {bogus: 1}}\n"), 0o600))
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitFor("config reload refused; the running config stays")
	require.Contains(t, stderr.String(), "bogus", "the refusal names what is wrong")

	writeConfig("debug")
	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGHUP))
	waitFor(`"msg":"config reloaded"`)
	require.Equal(t, 2, strings.Count(stderr.String(), `"msg":"lakirotator serving"`), "the reloaded service serves again")

	require.NoError(t, syscall.Kill(os.Getpid(), syscall.SIGTERM))
	select {
	case c := <-code:
		require.Equal(t, cli.ExitOK, c, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("serve did not stop after SIGTERM:\n%s", stderr.String())
	}
}
