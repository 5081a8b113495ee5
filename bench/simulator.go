package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
)

// simulator is what the benchmark asks of LakiConnect's simulator beyond the
// Management API: the dashboard's actions and a look at a key's status.
type simulator interface {
	// BaseURL is the server's root; the sandbox API is under /sandbox/v1.
	BaseURL() string
	AddMasterMerchant(ctx context.Context) (string, error)
	CreateKey(ctx context.Context, env laki.Environment, merchant, name string, scopes []laki.Scope) (laki.APIKeyWithSecret, error)
	AddWebhookEndpoint(ctx context.Context, env laki.Environment, merchant, url string) (laki.WebhookEndpoint, laki.WebhookSecretWithValue, error)
	ExposeKey(ctx context.Context, keyID string) (string, error)
	// KeyStatus reads a key's status at LakiConnect, as the merchant sees it.
	KeyStatus(ctx context.Context, merchant, keyID string) (laki.KeyStatus, error)
	Close()
}

// inProcess is the simulator in this process (tests: quick and simple; its
// memory then counts in the process's figure).
type inProcess struct {
	sim *lakisim.Simulator
	srv *httptest.Server
}

func newInProcess() *inProcess {
	sim := lakisim.New(lakisim.Options{})
	return &inProcess{sim: sim, srv: httptest.NewServer(sim.Handler())}
}

func (s *inProcess) BaseURL() string { return s.srv.URL }
func (s *inProcess) Close()          { s.srv.Close(); s.sim.Close() }
func (s *inProcess) AddMasterMerchant(context.Context) (string, error) {
	return s.sim.AddMasterMerchant(""), nil
}
func (s *inProcess) CreateKey(_ context.Context, env laki.Environment, merchant, name string, scopes []laki.Scope) (laki.APIKeyWithSecret, error) {
	return s.sim.CreateKey(env, merchant, name, scopes)
}
func (s *inProcess) AddWebhookEndpoint(_ context.Context, env laki.Environment, merchant, url string) (laki.WebhookEndpoint, laki.WebhookSecretWithValue, error) {
	return s.sim.AddWebhookEndpoint(env, merchant, url, []string{})
}
func (s *inProcess) ExposeKey(_ context.Context, keyID string) (string, error) {
	return s.sim.ExposeKey(keyID, "public_repository", "")
}
func (s *inProcess) KeyStatus(_ context.Context, _, keyID string) (laki.KeyStatus, error) {
	k, ok := s.sim.Key(keyID)
	if !ok {
		return "", fmt.Errorf("simulator: no key %s", keyID)
	}
	return k.Status, nil
}

// SimulatorChildFlag makes lakibench serve the simulator (API and admin API)
// on a loopback port, print its URL and run until its stdin closes.
const SimulatorChildFlag = "-simulator-child"

// ServeSimulatorChild is the child's side of separateProcess.
func ServeSimulatorChild(stdin io.Reader, stdout io.Writer) int {
	sim := lakisim.New(lakisim.Options{})
	defer sim.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(stdout, "error:", err)
		return 1
	}
	api, admin := sim.Handler(), sim.AdminHandler()
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, lakisim.AdminPrefix) {
			admin.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, stdin)
	_ = srv.Close()
	return 0
}

// separateProcess runs the simulator as a child process, so that the
// benchmark's memory figure is the rotator's alone.
type separateProcess struct {
	url   string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	http  *http.Client

	mu        sync.Mutex
	observers map[string]*lakiconnect.Client // merchant -> client with a key of its own
}

func startSeparateProcess(executable string) (*separateProcess, error) {
	cmd := exec.Command(executable, SimulatorChildFlag)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the simulator process: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	line = strings.TrimSpace(line)
	if err != nil || !strings.HasPrefix(line, "http://127.0.0.1:") {
		_ = stdin.Close()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the simulator process did not start: %q %v", line, err)
	}
	return &separateProcess{url: line, cmd: cmd, stdin: stdin, http: &http.Client{Timeout: 30 * time.Second}, observers: map[string]*lakiconnect.Client{}}, nil
}

func (s *separateProcess) BaseURL() string { return s.url }

// PID is the child's process id, for its memory figure.
func (s *separateProcess) PID() int { return s.cmd.Process.Pid }

func (s *separateProcess) Close() {
	_ = s.stdin.Close()
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

func (s *separateProcess) admin(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+lakisim.AdminPrefix+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("simulator admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("simulator admin %s: %s: %s", path, resp.Status, strings.TrimSpace(string(raw)))
	}
	return json.Unmarshal(raw, out)
}

func (s *separateProcess) AddMasterMerchant(ctx context.Context) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := s.admin(ctx, "merchants", map[string]string{"id": ""}, &out)
	return out.ID, err
}

func (s *separateProcess) CreateKey(ctx context.Context, env laki.Environment, merchant, name string, scopes []laki.Scope) (laki.APIKeyWithSecret, error) {
	var out laki.APIKeyWithSecret
	err := s.admin(ctx, "keys", map[string]any{"environment": env, "master_merchant_id": merchant, "name": name, "scopes": scopes}, &out)
	if err == nil && (out.ID == "" || out.Secret.IsZero()) {
		err = errors.New("simulator admin keys: the answer holds no key")
	}
	return out, err
}

func (s *separateProcess) AddWebhookEndpoint(ctx context.Context, env laki.Environment, merchant, url string) (laki.WebhookEndpoint, laki.WebhookSecretWithValue, error) {
	var out struct {
		Endpoint laki.WebhookEndpoint        `json:"endpoint"`
		Secret   laki.WebhookSecretWithValue `json:"secret"`
	}
	err := s.admin(ctx, "webhook_endpoints", map[string]any{"environment": env, "master_merchant_id": merchant, "url": url, "enabled_events": []string{}}, &out)
	if err == nil && (out.Endpoint.ID == "" || out.Secret.Secret.IsZero()) {
		err = errors.New("simulator admin webhook_endpoints: the answer holds no endpoint")
	}
	return out.Endpoint, out.Secret, err
}

func (s *separateProcess) ExposeKey(ctx context.Context, keyID string) (string, error) {
	var out struct {
		EventID string `json:"event_id"`
	}
	err := s.admin(ctx, "keys/"+keyID+"/expose", map[string]string{"source": "public_repository"}, &out)
	return out.EventID, err
}

// KeyStatus asks the Management API with a key of the merchant's own (not
// the rotator's: its rate limit is the rotator's to use).
func (s *separateProcess) KeyStatus(ctx context.Context, merchant, keyID string) (laki.KeyStatus, error) {
	s.mu.Lock()
	c, ok := s.observers[merchant]
	s.mu.Unlock()
	if !ok {
		k, err := s.CreateKey(ctx, laki.Sandbox, merchant, "lakibench observer", []laki.Scope{laki.ScopeAPIKeysRead})
		if err != nil {
			return "", err
		}
		c, err = lakiconnect.NewClient(lakiconnect.Config{BaseURL: s.url + "/sandbox/v1", APIKey: k.Secret})
		if err != nil {
			return "", err
		}
		s.mu.Lock()
		s.observers[merchant] = c
		s.mu.Unlock()
	}
	k, err := c.GetAPIKey(ctx, keyID)
	return k.Status, err
}
