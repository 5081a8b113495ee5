// Command devvault runs a HashiCorp Vault v1.14.1 server (MPL-2.0) in
// process, unsealed, with KV v2 at secret/ and the AppRole and AWS auth
// methods compiled in, serving the real HTTP API on a loopback port. It is
// for tests and local trials: it prints one JSON line with the address, the
// root token and (with -tls) the CA file, then serves until stdin reaches
// end of file or it is signalled.
//
// It is its own Go module so that the product's go.mod does not carry
// Vault's dependencies; see README.md next to it.
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/api"
	credAppRole "github.com/hashicorp/vault/builtin/credential/approle"
	credAws "github.com/hashicorp/vault/builtin/credential/aws"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/internalshared/configutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
	testing "github.com/mitchellh/go-testing-interface"
)

// Ready is the line devvault prints once it serves.
type Ready struct {
	Addr   string `json:"addr"`
	Token  string `json:"token"`
	CAFile string `json:"ca_file,omitempty"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to serve on")
	tlsDir := flag.String("tls", "", "serve HTTPS with a fresh CA and certificate written to this directory (ca.pem)")
	flag.Parse()
	if err := run(*listen, *tlsDir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "devvault:", err)
		os.Exit(1)
	}
}

func run(listen, tlsDir string, out io.Writer) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: devvault serves on a loopback address only", listen)
	}
	core, _, rootToken := vault.TestCoreUnsealedWithConfig(&testing.RuntimeT{}, &vault.CoreConfig{
		Logger:          hclog.New(&hclog.LoggerOptions{Name: "devvault", Level: hclog.Warn, Output: os.Stderr}),
		LogicalBackends: map[string]logical.Factory{"kv": kv.Factory},
		CredentialBackends: map[string]logical.Factory{
			"approle": credAppRole.Factory,
			"aws":     credAws.Factory,
		},
	})

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	scheme := "http"
	ready := Ready{Token: rootToken}
	if tlsDir != "" {
		cfg, caFile, err := selfSignedTLS(tlsDir)
		if err != nil {
			return err
		}
		ln = tls.NewListener(ln, cfg)
		scheme = "https"
		ready.CAFile = caFile
	}
	ready.Addr = fmt.Sprintf("%s://%s", scheme, ln.Addr().String())
	handler := vaulthttp.Handler.Handler(&vault.HandlerProperties{
		Core:           core,
		ListenerConfig: &configutil.Listener{Address: ln.Addr().String()},
	})
	server := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ErrorLog: core.Logger().StandardLogger(nil)}
	go func() { _ = server.Serve(ln) }()

	if err := mountKVv2(ready, tlsDir != ""); err != nil {
		return err
	}
	if err := json.NewEncoder(out).Encode(ready); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A test that dies closes our stdin: serve no longer than it lives.
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	<-ctx.Done()
	return nil
}

// mountKVv2 replaces the test core's KV v1 mount at secret/ with KV v2 and
// waits until the new mount answers.
func mountKVv2(ready Ready, useTLS bool) error {
	cfg := api.DefaultConfig()
	cfg.Address = ready.Addr
	if useTLS {
		if err := cfg.ConfigureTLS(&api.TLSConfig{CACert: ready.CAFile}); err != nil {
			return err
		}
	}
	client, err := api.NewClient(cfg)
	if err != nil {
		return err
	}
	client.SetToken(ready.Token)
	sys := client.Sys()
	if err := sys.Unmount("secret"); err != nil {
		return fmt.Errorf("unmount secret/: %w", err)
	}
	if err := sys.Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		return fmt.Errorf("mount secret/ as KV v2: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := client.Logical().Read("secret/config")
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(errors.New("secret/ did not become ready"), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
