// Package demo is the embedded default: the daemon with the LakiConnect
// simulator in-process, a local store in a directory of its own, policies
// with fast schedules, notifications to the terminal, and a handful of
// sandbox and production secrets. A newcomer watches keys being created,
// tested, promoted and retired within a minute, and fires triggers from a
// second terminal through the daemon's API. Nothing here is a production
// default.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/providers/lakisim"
)

// Options configure the demo.
type Options struct {
	// Dir holds the demo's store, audit trail, policies, API token and state.
	Dir string
	// Listen is the daemon's API address (default 127.0.0.1:8088; loopback only).
	Listen string
	Out    io.Writer // notifications and the banner
	Err    io.Writer // logs
	// Schedule overrides the demo policies' schedule (default "@every 30s").
	Schedule string
	// Grace overrides the scheduled grace (default 20s).
	Grace time.Duration
	// ExposeAfter is when the simulator reports the production checkout key
	// as exposed (default 75s; negative: never).
	ExposeAfter time.Duration
	// RetireInterval overrides how often old keys are checked (default 5s).
	RetireInterval time.Duration
	// Clock drives the daemon, the simulator and the exposure (default the
	// real clock; the golden test of the terminal output uses a fake one).
	Clock clock.Clock
	// Workers overrides the engine's rotation workers (default 4).
	Workers int
}

// State is what the demo leaves for the CLI's --demo verbs.
type State struct {
	API       string `json:"api"`
	TokenFile string `json:"token_file"`
}

// Run starts the demo and serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Dir == "" {
		return errors.New("demo: a directory for its store and audit trail is required")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8088"
	}
	if o.Schedule == "" {
		o.Schedule = "@every 30s"
	}
	if o.Grace == 0 {
		o.Grace = 20 * time.Second
	}
	if o.ExposeAfter == 0 {
		o.ExposeAfter = 75 * time.Second
	}
	if o.RetireInterval == 0 {
		o.RetireInterval = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Err == nil {
		o.Err = os.Stderr
	}
	if err := prepareDir(o.Dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "policies"), 0o700); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	logger := slog.New(newTerminalLog(o.Err, slog.LevelWarn))

	apiLn, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("demo: the daemon's API cannot listen on %s (is another demo running?): %w", o.Listen, err)
	}
	apiURL := "http://" + apiLn.Addr().String()

	sim := lakisim.New(lakisim.Options{Logger: slog.New(slog.DiscardHandler), Clock: o.Clock})
	defer sim.Close()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: simulator: %w", err)
	}
	simSrv := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = simSrv.Serve(simLn) }()
	defer simSrv.Close()
	simURL := "http://" + simLn.Addr().String()

	seeded, err := seed(ctx, o.Dir, sim, apiURL, o.Clock)
	if err != nil {
		apiLn.Close()
		return err
	}
	if err := writePolicies(filepath.Join(o.Dir, "policies"), o.Schedule, o.Grace); err != nil {
		apiLn.Close()
		return err
	}
	tokenFile := filepath.Join(o.Dir, "api-token")
	if err := writeToken(tokenFile); err != nil {
		apiLn.Close()
		return err
	}
	cfgYAML, err := renderConfig(configData{
		Dir: o.Dir, SimURL: simURL, Listen: apiLn.Addr().String(), TokenFile: tokenFile, Merchant: seeded.merchant, Workers: o.Workers,
		SecurityEndpoint: seeded.securityEndpoint, Envs: []string{"sandbox", "production"},
	})
	if err != nil {
		apiLn.Close()
		return err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "config.yaml"), cfgYAML, 0o600); err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	cfg, err := config.Parse(filepath.Join(o.Dir, "config.yaml"), cfgYAML)
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: its own config does not validate (a bug): %w", err)
	}
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{
		Logger: logger, Stdout: o.Out, RetireInterval: o.RetireInterval, RefreshInterval: 30 * time.Second, Clock: o.Clock,
	})
	if err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	state, _ := json.Marshal(State{API: apiURL, TokenFile: tokenFile})
	if err := os.WriteFile(filepath.Join(o.Dir, "state.json"), state, 0o600); err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	defer os.Remove(filepath.Join(o.Dir, "state.json"))

	if err := svc.Daemon.Catalog().Refresh(ctx, o.Clock.Now()); err != nil {
		apiLn.Close()
		return fmt.Errorf("demo: %w", err)
	}
	printBanner(o.Out, o, apiURL, len(svc.Daemon.Catalog().All()))
	if o.ExposeAfter > 0 {
		go exposeLater(ctx, o, sim, "demo/production/checkout")
	}
	stopping := make(chan struct{})
	go func() {
		<-ctx.Done()
		fmt.Fprintln(o.Out, "\nlakirotator demo: stopping: finishing the rotations in hand, starting nothing new")
		close(stopping)
	}()
	err = svc.Run(ctx, apiLn)
	if ctx.Err() != nil {
		<-stopping
	}
	fmt.Fprintf(o.Out, "lakirotator demo: stopped. Its audit trail stays in %s until the next `serve --demo`, which starts afresh.\n",
		filepath.Join(o.Dir, "audit.jsonl"))
	return err
}
