// Package e2e runs the real binaries end to end: lakirotator (daemon and
// CLI) against moto (Secrets Manager), lakisim (LakiConnect) and a fake
// Slack Web API, and checks what an operator would check.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds the binaries built once for the whole package.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lakirotator-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	for _, pkg := range []string{"lakirotator", "lakisim"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, pkg), "github.com/lakirotator/lakirotator/cmd/"+pkg)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building cmd/%s: %v\n", pkg, err)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

func bin(name string) string { return filepath.Join(binDir, name) }
