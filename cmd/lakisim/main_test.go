package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
	"github.com/lakirotator/lakirotator/internal/testutil/testcerts"
	"github.com/lakirotator/lakirotator/laki"
)

func TestRefusesNonLoopbackAndBadFlags(t *testing.T) {
	cases := map[string][]string{
		"public address":   {"-addr", "0.0.0.0:0"},
		"lan address":      {"-addr", "192.0.2.1:8787"},
		"cert without key": {"-tls-cert", "c.pem"},
		"seed and scopes":  {"-seed", "s.yaml", "-scopes", "api_keys:read"},
		"unknown scope":    {"-addr", "127.0.0.1:0", "-scopes", "api_keys:read,keys:all"},
		"stray argument":   {"extra"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(args, &out, &errb); code == 0 {
				t.Fatalf("exit 0, stderr %s", errb.String())
			}
			if out.Len() != 0 {
				t.Fatalf("printed credentials although it refused to start: %s", out.String())
			}
		})
	}
}

func TestSeedFileErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"merchants[0].keys[0].scopes[1]":                "merchants:\n  - keys:\n      - {environment: sandbox, name: m, scopes: [api_keys:read, nope]}\n",
		"merchants[0].webhook_endpoints[0].environment": "merchants:\n  - webhook_endpoints:\n      - {environment: staging, url: https://x}\n",
		"line 3":                "merchants:\n  - keys: []\n    colour: blue\n",
		"at least one merchant": "merchants: []\n",
	}
	for want, body := range cases {
		p := filepath.Join(dir, "seed.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := loadSeed(p)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), p) {
			t.Fatalf("error %v does not name %q and the file", err, want)
		}
	}
}

func TestBinaryStartsSeedsAndAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	seed := filepath.Join(dir, "seed.yaml")
	if err := os.WriteFile(seed, []byte(`merchants:
  - id: mm_DEMO0123456789ab
    keys:
      - environment: sandbox
        name: rotator
        scopes: [api_keys:read, api_keys:write]
      - environment: production
        name: rotator
    webhook_endpoints:
      - environment: sandbox
        url: https://127.0.0.1:1/hooks
        enabled_events: ["*"]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	credsPath := filepath.Join(dir, "creds.json")
	var stdout, stderr syncbuf.Buffer
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-seed", seed, "-credentials-out", credsPath, "-log-level", "debug")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	var creds credentials
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(credsPath)
		if err == nil && json.Unmarshal(b, &creds) == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no credentials file after 20s; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := os.Stat(credsPath)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v (%v), want 0600", st.Mode().Perm(), err)
	}
	if len(creds.Keys) != 2 || len(creds.WebhookSecrets) != 1 || creds.Merchants[0] != "mm_DEMO0123456789ab" {
		t.Fatalf("credentials = %+v", creds.Merchants)
	}

	call := func(method, url, key, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	sandbox := creds.Keys[0]
	status, body := call("GET", creds.SandboxURL+"/whoami", sandbox.Secret, "")
	var who laki.WhoAmI
	if status != 200 || json.Unmarshal(body, &who) != nil || who.KeyID != sandbox.KeyID || who.MasterMerchantID != "mm_DEMO0123456789ab" || len(who.Scopes) != 2 {
		t.Fatalf("whoami: %d %s", status, body)
	}
	if status, _ := call("GET", creds.ProductionURL+"/whoami", sandbox.Secret, ""); status != 401 {
		t.Fatalf("sandbox key on production: %d", status)
	}
	if status, _ := call("GET", creds.ProductionURL+"/whoami", creds.Keys[1].Secret, ""); status != 200 {
		t.Fatalf("production key: %d", status)
	}

	// Drive it through the admin API.
	if status, body := call("POST", creds.AdminURL+"/faults", "", `{"method":"GET","path_prefix":"/whoami","status":503,"times":1}`); status != 201 {
		t.Fatalf("inject fault: %d %s", status, body)
	}
	if status, _ := call("GET", creds.SandboxURL+"/whoami", sandbox.Secret, ""); status != 503 {
		t.Fatalf("after fault: %d", status)
	}
	if status, body := call("POST", creds.AdminURL+"/keys/"+sandbox.KeyID+"/expose", "", `{"source":"paste_site"}`); status != 201 || !strings.Contains(string(body), "evt_") {
		t.Fatalf("expose: %d %s", status, body)
	}
	status, body = call("GET", creds.AdminURL+"/requests", "", "")
	var reqs []struct {
		Path string `json:"path"`
	}
	if status != 200 || json.Unmarshal(body, &reqs) != nil || len(reqs) != 4 {
		t.Fatalf("requests: %d %s", status, body)
	}
	if status, body := call("GET", creds.AdminURL+"/deliveries", "", ""); status != 200 || !strings.HasPrefix(string(body), "[") {
		t.Fatalf("deliveries: %d %s", status, body)
	}

	// Graceful stop on SIGTERM.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("still running 15s after SIGTERM")
	}
	logs := stderr.String()
	if !strings.Contains(logs, "lakisim: listening") {
		t.Fatalf("no start line in stderr:\n%s", logs)
	}
	for _, s := range []string{creds.Keys[0].Secret, creds.Keys[1].Secret, creds.WebhookSecrets[0].Secret} {
		if strings.Contains(logs, s) || strings.Contains(stdout.String(), s) {
			t.Fatal("a seeded secret appears in the binary's log or stdout although it went to the credentials file")
		}
	}
}

func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "lakisim")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key as PEM
// files; pool trusts the CA that signed it.
func selfSignedCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	ca := testcerts.NewCA(t, "lakisim test CA")
	certPEM, keyPEM := ca.Issue(t, "lakisim test", true)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, ca.Pool
}

func TestBinaryServesTLSAndPrintsCredentialsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	certFile, keyFile, pool := selfSignedCert(t, dir)
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-tls-cert", certFile, "-tls-key", keyFile,
		"-merchant", "mm_TLS0123456789abc", "-scopes", "api_keys:read,webhooks:read")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncbuf.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var creds credentials
	if err := json.NewDecoder(stdout).Decode(&creds); err != nil {
		t.Fatalf("decode credentials from stdout: %v; stderr:\n%s", err, stderr.String())
	}
	if !strings.HasPrefix(creds.SandboxURL, "https://127.0.0.1:") || len(creds.Keys) != 2 || creds.Merchants[0] != "mm_TLS0123456789abc" {
		t.Fatalf("credentials: %s, %d keys, %v", creds.SandboxURL, len(creds.Keys), creds.Merchants)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequest("GET", creds.SandboxURL+"/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+creds.Keys[0].Secret)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var who laki.WhoAmI
	_ = json.NewDecoder(resp.Body).Decode(&who)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(who.Scopes) != 2 || who.Scopes[0] != laki.ScopeAPIKeysRead {
		t.Fatalf("whoami over TLS: %d %+v", resp.StatusCode, who)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v", err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("stdout got more after the credentials: %q", rest)
	}
	if strings.Contains(stderr.String(), creds.Keys[0].Secret) {
		t.Fatal("a secret appears in the log")
	}
}
