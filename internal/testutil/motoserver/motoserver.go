// Package motoserver runs moto_server, the project's Secrets Manager test
// server, for Go tests. A missing moto_server fails the test: the Secrets
// Manager store is never tested by skipping.
package motoserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Settings the SDK and the aws CLI use against moto: any credentials do.
const (
	Region          = "us-east-1"
	AccessKeyID     = "testing"
	SecretAccessKey = "testing"
)

// InstallHint says how to get moto_server when it is missing.
const InstallHint = "moto_server is not on PATH; install it with: pip install 'moto[server]==5.2.1'"

const startTimeout = 30 * time.Second

// Server is one running moto_server process.
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
	output   *syncBuffer
	done     chan struct{}
}

// Start starts moto_server on a free loopback port, waits until it answers
// and stops it when the test ends. It returns the endpoint URL.
func Start(t testing.TB) string {
	t.Helper()
	s, err := Launch()
	if err != nil {
		t.Fatalf("motoserver: %v", err)
	}
	t.Cleanup(s.Stop)
	return s.Endpoint
}

// Launch starts moto_server and waits until it answers. The caller must Stop it.
func Launch() (*Server, error) {
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return nil, errors.New(InstallHint)
	}
	// The port is picked by binding :0 and releasing it; another process
	// could take it in between, so a failed start is retried on a new port.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := launchOn(bin, port)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func launchOn(bin string, port int) (*Server, error) {
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	out := &syncBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	// Its own process group, so Stop ends moto and whatever the launcher
	// shim started under it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+AccessKeyID, "AWS_SECRET_ACCESS_KEY="+SecretAccessKey, "AWS_DEFAULT_REGION="+Region)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, output: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("moto_server on port %d: %w; output:\n%s", port, err, out.String())
	}
	return s, nil
}

func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/moto-api/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-s.done:
			return errors.New("exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("did not answer within %s", startTimeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the server's process group and waits for it to exit.
func (s *Server) Stop() {
	if s == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.done
}

// Shared starts one moto_server per test binary, on first use. Declare one
// in a test file, call Endpoint from tests, and stop it in TestMain:
//
//	var moto motoserver.Shared
//	func TestMain(m *testing.M) { os.Exit(moto.Run(m)) }
//
// Tests sharing it isolate themselves by unique secret name prefixes.
type Shared struct {
	once   sync.Once
	server *Server
	err    error
}

// Endpoint starts the server on the first call and returns its URL; a
// failure to start fails the test.
func (s *Shared) Endpoint(t testing.TB) string {
	t.Helper()
	s.once.Do(func() { s.server, s.err = Launch() })
	if s.err != nil {
		t.Fatalf("motoserver: %v", s.err)
	}
	return s.server.Endpoint
}

// Run runs the tests and stops the server afterwards; use it from TestMain.
func (s *Shared) Run(m *testing.M) int {
	defer s.Close()
	return m.Run()
}

// Close stops the server if it was started.
func (s *Shared) Close() {
	s.once.Do(func() {}) // no start after Close
	s.server.Stop()
}

// Env is the environment for a child process (the aws CLI) talking to moto.
func Env() []string {
	return append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+AccessKeyID, "AWS_SECRET_ACCESS_KEY="+SecretAccessKey,
		"AWS_DEFAULT_REGION="+Region, "AWS_REGION="+Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_PAGER=")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free loopback port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects the server's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil // keep the start, where startup errors are
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// EmptyAWSEnv leaves the SDK's default credential chain nothing to find
// for the rest of the test: no variables, no files, no instance metadata.
func EmptyAWSEnv(t testing.TB) {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
