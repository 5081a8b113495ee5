package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A newcomer copies the example config into an empty directory and checks
// it with the real binary: the relative policies_dir no longer points at
// anything, and the error says where (file:line:col), what (the resolved
// path) and why, once, without contacting AWS.
func TestCopiedExampleConfigValidatesWithAPositionedError(t *testing.T) {
	example, err := os.ReadFile(filepath.Join("..", "config", "example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lakirotator.yaml"), example, 0o600); err != nil {
		t.Fatal(err)
	}
	validate := func(args ...string) (int, string, string) {
		cmd := exec.Command(bin("lakirotator"), append([]string{"config", "validate", "--config", "lakirotator.yaml"}, args...)...)
		cmd.Dir = dir
		// No AWS anywhere: offline validation must not need it.
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String(), errb.String()
	}
	code, out, stderr := validate()
	want := "lakirotator: lakirotator.yaml:57:15: policies_dir: directory " + filepath.Join(filepath.Dir(dir), "policies", "examples") + " does not exist"
	if code != 2 || !strings.HasPrefix(stderr, want) {
		t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
	if strings.Count(stderr, "\n") != 1 || strings.Contains(stderr, "policies: policies") || out != "" {
		t.Errorf("want one line on stderr and nothing on stdout; got stdout %q stderr %q", out, stderr)
	}

	// With the policies beside it, as the error suggests, it validates, offline.
	pols := filepath.Join(dir, "policies")
	if err := os.CopyFS(pols, os.DirFS(filepath.Join("..", "policies", "examples"))); err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(example), "policies_dir: ../policies/examples", "policies_dir: policies", 1)
	if err := os.WriteFile(filepath.Join(dir, "lakirotator.yaml"), []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = validate("-o", "json")
	if code != 0 || !strings.Contains(out, `"ok": true`) {
		t.Errorf("fixed copy: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
}
