// Command lakisim runs the LakiConnect simulator on loopback for a local
// demo or for end-to-end tests: both environments under /sandbox/v1 and
// /production/v1, its admin API under /_sim/, seeded from a file or flags.
// The seeded secrets are written once, to stdout or to a 0600 file.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lakirotator/lakirotator/internal/endpoint"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

type flags struct {
	addr, tlsCert, tlsKey, seed, merchant, scopes, credsOut, webhookCA, logLevel string
	rateLimit                                                                    float64
	deliverTwice                                                                 bool
	spikeThreshold                                                               int
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("lakisim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8787", "loopback address to listen on (port 0 picks one)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate file: serve TLS (with -tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key file for -tls-cert")
	fs.StringVar(&f.seed, "seed", "", "seed file (YAML or JSON); without it one merchant and a management key per environment are made")
	fs.StringVar(&f.merchant, "merchant", "", "master merchant id when not seeding from a file (mm_ + 16 alphanumerics; empty: generated)")
	fs.StringVar(&f.scopes, "scopes", "", "comma-separated scopes of the management keys when not seeding from a file (empty: every scope)")
	fs.StringVar(&f.credsOut, "credentials-out", "", "write the seeded secrets to this file (mode 0600) instead of stdout")
	fs.StringVar(&f.webhookCA, "webhook-ca", "", "PEM CA file trusted, besides the system roots, for webhook deliveries")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Float64Var(&f.rateLimit, "rate-limit", 0, "requests per second per key (0: LakiConnect's 100; negative: off)")
	fs.BoolVar(&f.deliverTwice, "deliver-twice", false, "deliver every webhook event twice")
	fs.IntVar(&f.spikeThreshold, "spike-threshold", 0, "refused requests per minute that raise security.auth_failure_spike (0: 20; negative: off)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return f, errors.New("-tls-cert and -tls-key go together")
	}
	if f.seed != "" && (f.merchant != "" || f.scopes != "") {
		return f, errors.New("-seed and -merchant/-scopes exclude each other")
	}
	return f, nil
}

// checkLoopback refuses any address but loopback: the simulator hands out
// secrets and takes orders to break things.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if endpoint.IsLoopbackHost(host) {
		return nil
	}
	return fmt.Errorf("-addr %q: the simulator listens on loopback only (127.0.0.1, ::1 or localhost)", addr)
}

func run(args []string, stdout, stderr io.Writer) int {
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "lakisim:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(stderr, "lakisim: -log-level %q: %v\n", f.logLevel, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if err := serve(f, log, stdout); err != nil {
		log.Error("lakisim: stopped", "error", err)
		return 1
	}
	return 0
}

func serve(f flags, log *slog.Logger, stdout io.Writer) error {
	if err := checkLoopback(f.addr); err != nil {
		return err
	}
	client, err := deliveryClient(f.webhookCA)
	if err != nil {
		return err
	}
	var seed seedFile
	if f.seed != "" {
		if seed, err = loadSeed(f.seed); err != nil {
			return err
		}
	} else if seed, err = flagSeed(f.merchant, f.scopes); err != nil {
		return err
	}

	sim := lakisim.New(lakisim.Options{
		Logger: log, RateLimit: f.rateLimit, DeliveryClient: client,
		DeliverTwice: f.deliverTwice, AuthFailureSpikeThreshold: f.spikeThreshold,
	})
	defer sim.Close()

	var creds credentials
	if err := seed.apply(sim, &creds); err != nil {
		return fmt.Errorf("seed: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle(lakisim.AdminPrefix, sim.AdminHandler())
	mux.Handle("/", sim.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if f.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	base := scheme + "://" + ln.Addr().String()
	creds.SandboxURL = base + "/sandbox/v1"
	creds.ProductionURL = base + "/production/v1"
	creds.AdminURL = base + "/_sim"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	// Written after the listener is up, so a waiting test may take the
	// file's appearance as "ready".
	if err := writeCredentials(creds, f.credsOut, stdout); err != nil {
		_ = srv.Close()
		return err
	}
	log.Info("lakisim: listening", "sandbox_url", creds.SandboxURL, "production_url", creds.ProductionURL, "admin_url", creds.AdminURL)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("lakisim: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

func flagSeed(merchant, scopes string) (seedFile, error) {
	var sc []laki.Scope
	if scopes != "" {
		for i, s := range strings.Split(scopes, ",") {
			s := laki.Scope(strings.TrimSpace(s))
			if !s.Valid() {
				return seedFile{}, fmt.Errorf("-scopes: item %d: unknown scope %q", i+1, s)
			}
			sc = append(sc, s)
		}
	}
	return seedFile{Merchants: []seedMerchant{{
		ID: merchant,
		Keys: []seedKey{
			{Environment: laki.Sandbox, Name: "management (sandbox)", Scopes: sc},
			{Environment: laki.Production, Name: "management (production)", Scopes: sc},
		},
	}}}, nil
}

func deliveryClient(caFile string) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("-webhook-ca: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("-webhook-ca %s: no PEM certificate in it", caFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}, nil
}

// writeCredentials hands the seeded secrets out once: to a file only its
// owner can read, or to stdout.
func writeCredentials(c credentials, path string, stdout io.Writer) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("-credentials-out: %w", err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // WriteFile keeps the mode of a file that existed
		return fmt.Errorf("-credentials-out: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("-credentials-out: %w", err)
	}
	return nil
}
