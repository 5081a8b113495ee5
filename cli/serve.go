package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
	"github.com/lakirotator/lakirotator/trigger"
)

func newServeCmd(stdio IO, g *globalFlags) *cobra.Command {
	var configEnv string
	cmd := &cobra.Command{
		Use:     "serve",
		Short:   "Run the rotation daemon (--demo: the embedded demo, no AWS or Slack needed)",
		Example: "  lakirotator serve --demo\n  lakirotator serve --config lakirotator.yaml\n  lakirotator serve --config-env LAKIROTATOR_CONFIG",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if g.demo {
				return runDemo(ctx, stdio)
			}
			return serveConfig(ctx, stdio, g, configEnv)
		},
	}
	cmd.Flags().StringVar(&configEnv, "config-env", "", "read the config YAML from this environment variable (containers with a read-only filesystem)")
	return cmd
}

// loadConfig reads the config from --config or --config-env; every problem
// is reported at once with file, line and field.
func loadConfig(stdio IO, g *globalFlags, configEnv string) (*config.Config, error) {
	cfg, err := readConfig(stdio, g, configEnv)
	if cfg != nil && g.logLevel != "" {
		cfg.Log.Level = g.logLevel
	}
	return cfg, err
}

func readConfig(stdio IO, g *globalFlags, configEnv string) (*config.Config, error) {
	switch {
	case configEnv != "" && g.config != "":
		return nil, usageErr("give --config or --config-env, not both")
	case configEnv != "":
		data := stdio.Env(configEnv)
		if data == "" {
			return nil, usageErr("environment variable %s is empty or not set", configEnv)
		}
		cfg, err := config.Parse("$"+configEnv, []byte(data))
		return cfg, withCode(ExitUsage, err)
	case g.config != "":
		cfg, err := config.Load(g.config)
		return cfg, withCode(ExitUsage, err)
	case g.demo:
		return loadDemoConfig(stdio)
	default:
		return nil, usageErr("no config: give --config FILE (or --demo for the embedded demo)")
	}
}

// newLogger returns the daemon's logger: JSON in production, text on a terminal.
func newLogger(w io.Writer, lc config.LogConfig) *slog.Logger {
	opts := &slog.HandlerOptions{Level: lc.SlogLevel()}
	format := lc.Format
	if format == "" || format == config.LogAuto {
		format = config.LogJSON
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = config.LogText
			}
		}
	}
	if format == config.LogText {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func serveConfig(ctx context.Context, stdio IO, g *globalFlags, configEnv string) error {
	cfg, err := loadConfig(stdio, g, configEnv)
	if err != nil {
		return err
	}
	logger := newLogger(stdio.Err, cfg.Log)
	build := func(cfg *config.Config) (*daemon.Service, error) {
		return daemon.Build(ctx, cfg, daemon.BuildOptions{Logger: logger, Stdout: stdio.Out, LookupEnv: lookupEnv(stdio)})
	}
	svc, err := build(cfg)
	if err != nil {
		return buildErr(err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		// The service closes its listener when it stops; a reloaded one
		// listens again on the same address.
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			_ = svc.Close(context.Background())
			return withCode(ExitFailure, fmt.Errorf("http.listen: %w", err))
		}
		logger.Info("lakirotator serving", "listen", ln.Addr().String(), "config", cfg.File())
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- svc.Run(runCtx, ln) }()
	wait:
		select {
		case err := <-done:
			stop()
			return withCode(ExitFailure, err)
		case <-hup:
			next, err := loadConfig(stdio, g, configEnv)
			if err == nil {
				_, err = daemon.CheckConfig(next)
			}
			if err != nil {
				logger.Error("config reload refused; the running config stays", "err", err)
				goto wait
			}
			if next.HTTP.Listen != cfg.HTTP.Listen {
				logger.Warn("http.listen changed: it takes effect at the next restart", "listening", cfg.HTTP.Listen)
				next.HTTP.Listen = cfg.HTTP.Listen
			}
			logger.Info("config reload: finishing the rotations in hand before switching")
			stop()
			<-done
			nextSvc, err := build(next)
			if err != nil {
				logger.Error("config reload failed at start; going back to the running config", "err", err)
				if nextSvc, err = build(cfg); err != nil {
					return withCode(ExitFailure, fmt.Errorf("restarting with the previous config: %w", err))
				}
			} else {
				cfg = next
				logger.Info("config reloaded", "config", cfg.File())
			}
			svc = nextSvc
		}
	}
}

func lookupEnv(stdio IO) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v := stdio.Env(k)
		return v, v != ""
	}
}

// localService builds the engine in this process for --local verbs.
func localService(ctx context.Context, stdio IO, g *globalFlags) (*daemon.Service, error) {
	cfg, err := loadConfig(stdio, g, "")
	if err != nil {
		return nil, err
	}
	// A verb's stdout holds its result alone: the engine's log lines go to
	// stderr, and only warnings unless --log-level asks for more; terminal
	// notifications and streamed audit records go to stderr too.
	if g.logLevel == "" && cfg.Log.SlogLevel() < slog.LevelWarn {
		cfg.Log.Level = "warn"
	}
	logger := newLogger(stdio.Err, cfg.Log)
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{Logger: logger, Stdout: stdio.Err, LookupEnv: lookupEnv(stdio)})
	if err != nil {
		return nil, buildErr(err)
	}
	if err := svc.Daemon.Catalog().Refresh(ctx, time.Now()); err != nil {
		_ = svc.Shutdown(context.Background())
		return nil, withCode(ExitFailure, err)
	}
	return svc, nil
}

func runLocalTrigger(cmd *cobra.Command, stdio IO, g *globalFlags, req httpapi.TriggerRequest) error {
	ctx := cmd.Context()
	svc, err := localService(ctx, stdio, g)
	if err != nil {
		return err
	}
	defer func() { _ = svc.Shutdown(context.Background()) }()
	// In-process, the principal is the user running the command; a
	// --requester naming someone else is kept as on_behalf_of.
	actor := requester(stdio, "")
	treq := req.ToTrigger(actor, events.SourceCLI)
	if treq.OnBehalfOf == actor {
		treq.OnBehalfOf = ""
	}
	st, err := svc.Daemon.Trigger(ctx, treq)
	if ref, ok := trigger.Refused(err); ok {
		return usageErr("%v", ref)
	}
	if err != nil {
		return withCode(ExitFailure, err)
	}
	fmt.Fprintf(stdio.Err, "rotating %d secret(s) in this process\n", st.Total)
	get := func(context.Context) (httpapi.TriggerStatus, error) {
		cur, ok := svc.Daemon.TriggerStatus(st.ID)
		if !ok {
			return httpapi.TriggerStatus{}, fmt.Errorf("no trigger %q in this process", st.ID)
		}
		return httpapi.StatusJSON(cur), nil
	}
	final, err := follow(ctx, get, 50*time.Millisecond, func(p httpapi.TriggerStatus) {
		if g.output == "table" {
			fmt.Fprintf(stdio.Err, "  %d/%d done, %d failed\n", p.Done+p.Failed, p.Total, p.Failed)
		}
	})
	if err != nil {
		return withCode(ExitFailure, err)
	}
	return reportFinal(stdio, final, g.output, true)
}

// openLocal is the prologue of a verb that runs the engine here: -o
// checked, the service built from --config or --demo, and its stop to defer.
func openLocal(ctx context.Context, stdio IO, g *globalFlags) (*daemon.Service, func(), error) {
	if err := g.checkOutput(); err != nil {
		return nil, nil, err
	}
	svc, err := localService(ctx, stdio, g)
	if err != nil {
		return nil, nil, err
	}
	return svc, func() { _ = svc.Shutdown(context.Background()) }, nil
}

func localInventory(cmd *cobra.Command, stdio IO, g *globalFlags) (httpapi.Inventory, error) {
	svc, err := localService(cmd.Context(), stdio, g)
	if err != nil {
		return httpapi.Inventory{}, err
	}
	defer func() { _ = svc.Shutdown(context.Background()) }()
	return svc.Daemon.Inventory(cmd.Context())
}

// buildErr gives a failure to start its exit code: AWS that cannot be
// reached or refuses the credentials is not a config error.
func buildErr(err error) error {
	if secretsmanager.Explain(err) != nil {
		return withCode(ExitUnreachable, err)
	}
	return withCode(ExitUsage, err)
}
