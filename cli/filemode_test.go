package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A {file: PATH} secret reference to a file its group or others may read is
// refused, naming the file and its mode, unless the reference opts out.
func TestSecretFileReadableByOthersIsRefused(t *testing.T) {
	w := newCLIWorld(t, []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}, false)
	tokenFile := filepath.Join(w.dir, "api-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600))
	require.NoError(t, os.Chmod(tokenFile, 0o644)) // WriteFile's mode passes through the umask
	cfg, err := os.ReadFile(w.cfgPath)
	require.NoError(t, err)
	withFile := strings.Replace(string(cfg), "token: {env: LAKIROTATOR_TOKEN}", "token: {file: "+tokenFile+"}", 1)
	require.NotEqual(t, string(cfg), withFile)
	require.NoError(t, os.WriteFile(w.cfgPath, []byte(withFile), 0o600))

	r := run(w.env, "status", "--local", "--config", w.cfgPath)
	assert.Equal(t, 2, r.code, r.err)
	assert.Contains(t, r.err, "secret file "+tokenFile+" has mode 0644")
	assert.Contains(t, r.err, "http.tokens[0].token")
	assert.NotContains(t, r.out+r.err, testToken)

	require.NoError(t, os.Chmod(tokenFile, 0o600))
	r = run(w.env, "status", "--local", "--config", w.cfgPath)
	assert.Equal(t, 0, r.code, r.err)

	// The documented opt-out, for platforms that mount secrets group-readable.
	require.NoError(t, os.Chmod(tokenFile, 0o640))
	optOut := strings.Replace(withFile, "token: {file: "+tokenFile+"}", "token: {file: "+tokenFile+", allow_group_world_access: true}", 1)
	require.NoError(t, os.WriteFile(w.cfgPath, []byte(optOut), 0o600))
	r = run(w.env, "status", "--local", "--config", w.cfgPath)
	assert.Equal(t, 0, r.code, r.err)
}
