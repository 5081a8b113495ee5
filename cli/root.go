// Package cli is the lakirotator command line: the daemon (serve) and the
// verbs people use (rotate, trigger, plan, status, sweep, policy check,
// audit). Verbs that act talk to a running daemon's API, or run the engine
// in-process with --local.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK          = 0
	ExitFailure     = 1 // something failed, or part of a bulk operation did
	ExitUsage       = 2 // the command line or the config is wrong
	ExitViolations  = 3 // policy check found violations at or above the threshold
	ExitUnreachable = 4 // AWS or LakiConnect could not be reached, or refused the credentials (config validate --online)
)

// exitError carries an exit code up to Main.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// IO is where a command reads and writes.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Env reads the environment (os.Getenv in main), injected for tests.
	Env func(string) string
	// Terminal, when set, says whether In is a person at a terminal (tests
	// answer prompts through a reader); otherwise In's file mode decides.
	Terminal *bool
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdio IO) int {
	if stdio.Env == nil {
		stdio.Env = os.Getenv
	}
	root, g := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	printError(stdio, g, err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// cobra's own errors are about the command line.
	if isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "required flag", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

func newRoot(stdio IO) (*cobra.Command, *globalFlags) {
	root := &cobra.Command{
		Use:           "lakirotator",
		Short:         "Rotates LakiConnect API keys and webhook secrets kept in AWS Secrets Manager",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       readBuildInfo().String(),
		Example: "  lakirotator serve --demo\n  lakirotator config validate --config lakirotator.yaml\n" +
			"  lakirotator status --demo\n  lakirotator completion bash > /etc/bash_completion.d/lakirotator",
	}
	root.SetVersionTemplate("{{.Version}}\n")
	g := &globalFlags{}
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error { return g.checkExclusive(cmd) }
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "", "debug, info, warn or error (default: the config's log.level); debug also shows the AWS SDK's error chains")
	root.PersistentFlags().StringVar(&g.config, "config", "", "config file (YAML)")
	root.PersistentFlags().StringVar(&g.api, "api", "", "URL of a running daemon's API (default from LAKIROTATOR_API)")
	root.PersistentFlags().StringVar(&g.tokenFile, "token-file", "", "file holding the API bearer token (default: the LAKIROTATOR_TOKEN variable)")
	root.PersistentFlags().BoolVar(&g.demo, "demo", false, "use the embedded demo (serve), talk to the running demo daemon (rotate, trigger, status), or use its config (plan, sweep, policy check, audit report, config validate)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(
		newServeCmd(stdio, g),
		newRotateCmd(stdio, g),
		newTriggerCmd(stdio, g),
		newStatusCmd(stdio, g, "status"),
		newStatusCmd(stdio, g, "inventory"),
		newPlanCmd(stdio, g),
		newSweepCmd(stdio, g),
		newPolicyCmd(stdio, g),
		newAuditCmd(stdio, g),
		newVersionCmd(stdio, g),
		newConfigCmd(stdio, g),
		newBootstrapCmd(stdio, g),
	)
	return root, g
}

type globalFlags struct {
	logLevel  string
	config    string
	api       string
	tokenFile string
	demo      bool
	output    string
}

// checkExclusive refuses flags that contradict each other instead of
// silently preferring one.
func (g *globalFlags) checkExclusive(cmd *cobra.Command) error {
	switch g.logLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return usageErr("--log-level %q: use debug, info, warn or error", g.logLevel)
	}
	if !g.demo {
		return nil
	}
	for _, name := range []string{"api", "config", "token-file"} {
		if f := cmd.Flags().Lookup(name); f != nil && f.Changed {
			return usageErr("--%s and --demo: give one (--demo finds the demo daemon and its config by itself)", name)
		}
	}
	if f := cmd.Flags().Lookup("config-env"); f != nil && f.Changed {
		return usageErr("--config-env and --demo: give one")
	}
	return nil
}

func (g *globalFlags) checkOutput() error {
	if g.output != "table" && g.output != "json" {
		return usageErr("--output %q: use table or json", g.output)
	}
	return nil
}
