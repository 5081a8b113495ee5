package cli_test

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serve --demo clears only a directory the demo created and marked: one
// holding someone's files is refused and left as it was.
func TestServeDemoLeavesAForeignDirectoryAlone(t *testing.T) {
	// Hold the demo's fixed port if it is free, so that a demo that did not
	// refuse stops at once instead of serving; if another process holds
	// it, the demo stops there just the same.
	if ln, err := net.Listen("tcp", "127.0.0.1:8088"); err == nil {
		defer ln.Close()
	}
	dir := t.TempDir()
	precious := filepath.Join(dir, "thesis.tex")
	require.NoError(t, os.WriteFile(precious, []byte("years of work\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "photos"), 0o700))

	r := run(map[string]string{"LAKIROTATOR_DEMO_DIR": dir}, "serve", "--demo")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.err, dir+" is not empty and has no .lakirotator-demo marker")
	b, err := os.ReadFile(precious)
	require.NoError(t, err, "the foreign file is still there")
	assert.Equal(t, "years of work\n", string(b))
	_, err = os.Stat(filepath.Join(dir, "photos"))
	assert.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "nothing added either")
}
