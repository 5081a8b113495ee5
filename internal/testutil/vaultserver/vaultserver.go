// Package vaultserver runs devvault, the project's in-process Vault v1.14.1
// test server (internal/testutil/devvault, its own Go module), for Go
// tests, as motoserver runs moto_server. The binary is built once into
// .tools/bin/devvault and rebuilt when its source is newer. A build that
// fails fails the test: the Vault store is never tested by skipping.
package vaultserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

const startTimeout = 60 * time.Second

// BuildHint says how to build devvault by hand.
const BuildHint = "build it with: make devvault (a cold build takes about 3 minutes and 2.4 GB of module cache)"

// Server is one running devvault process.
type Server struct {
	Addr   string
	Token  string // root token
	CAFile string // set when the server speaks TLS
	cmd    *exec.Cmd
	stdin  io.Closer
	done   chan struct{}
}

// Options chooses how devvault serves.
type Options struct {
	// TLS serves HTTPS with a throwaway CA written to a temporary directory.
	TLS bool
}

// Start starts devvault and stops it when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	dir := ""
	if o.TLS {
		dir = t.TempDir()
	}
	s, err := Launch(dir)
	if err != nil {
		t.Fatalf("vaultserver: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Launch builds devvault if needed, starts it (with TLS when tlsDir is not
// empty: the CA goes there) and waits for its ready line. The caller must Stop it.
func Launch(tlsDir string) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	args := []string{}
	if tlsDir != "" {
		args = append(args, "-tls", tlsDir)
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tail{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	select {
	case line, ok := <-lines:
		var ready struct {
			Addr   string `json:"addr"`
			Token  string `json:"token"`
			CAFile string `json:"ca_file"`
		}
		if !ok || json.Unmarshal([]byte(line), &ready) != nil || ready.Addr == "" {
			s.Stop()
			return nil, fmt.Errorf("devvault did not print its address; output:\n%s", stderr.String())
		}
		s.Addr, s.Token, s.CAFile = ready.Addr, ready.Token, ready.CAFile
		return s, nil
	case <-time.After(startTimeout):
		s.Stop()
		return nil, fmt.Errorf("devvault did not start within %s; output:\n%s", startTimeout, stderr.String())
	}
}

// Stop ends the server's process group and waits for it to exit.
func (s *Server) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = s.stdin.Close()
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Client returns a client with the root token, for seeding and checks.
func (s *Server) Client(t testing.TB) *api.Client {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	if s.CAFile != "" {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: s.CAFile}); err != nil {
			t.Fatal(err)
		}
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(s.Token)
	c.ClearNamespace()
	return c
}

// Shared starts one devvault per test binary, on first use; stop it in TestMain:
//
//	var vault vaultserver.Shared
//	func TestMain(m *testing.M) { os.Exit(vault.Run(m)) }
type Shared struct {
	once   sync.Once
	server *Server
	err    error
}

// Server starts the server on the first call; a failure fails the test.
func (s *Shared) Server(t testing.TB) *Server {
	t.Helper()
	s.once.Do(func() { s.server, s.err = Launch("") })
	if s.err != nil {
		t.Fatalf("vaultserver: %v", s.err)
	}
	return s.server
}

// Run runs the tests and stops the server, if one was started.
func (s *Shared) Run(m *testing.M) int {
	code := m.Run()
	if s.server != nil {
		s.server.Stop()
	}
	return code
}

// Binary returns the path of the devvault binary, building it when it is
// missing or older than its source. Concurrent test binaries build it once:
// the build holds a lock file and renames its output into place.
func Binary() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "internal", "testutil", "devvault")
	binDir := filepath.Join(root, ".tools", "bin")
	bin := filepath.Join(binDir, "devvault")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(binDir, "devvault.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if fresh(bin, src) {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building devvault needs go on PATH: %w", err)
	}
	tmp := bin + ".tmp-" + strconv.Itoa(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("building devvault in %s failed: %v\n%s\n%s", src, err, out, BuildHint)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// fresh reports whether bin exists and is newer than every file of src.
func fresh(bin, src string) bool {
	bi, err := os.Stat(bin)
	if err != nil {
		return false
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		return false
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || info.ModTime().After(bi.ModTime()) {
			return false
		}
	}
	return true
}

// moduleRoot is the product module's directory, found from this file.
func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("vaultserver: cannot locate the module")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("vaultserver: no go.mod at %s: %w", root, err)
	}
	return filepath.Clean(root), nil
}

// tail keeps the last 8 KiB of the server's log for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = t.buf[len(t.buf)-8192:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
