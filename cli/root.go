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
	ExitOK         = 0
	ExitFailure    = 1 // something failed, or part of a bulk operation did
	ExitUsage      = 2 // the command line or the config is wrong
	ExitViolations = 3 // policy check found violations at or above the threshold
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
}

// Main runs the command line and returns the process exit code.
func Main(args []string, stdio IO) int {
	if stdio.Env == nil {
		stdio.Env = os.Getenv
	}
	root := newRoot(stdio)
	root.SetArgs(args)
	root.SetIn(stdio.In)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stdio.Err, "lakirotator:", err)
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

func newRoot(stdio IO) *cobra.Command {
	root := &cobra.Command{
		Use:           "lakirotator",
		Short:         "Rotates LakiConnect API keys and webhook secrets kept in AWS Secrets Manager",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g := &globalFlags{}
	root.PersistentFlags().StringVar(&g.config, "config", "", "config file (YAML)")
	root.PersistentFlags().StringVar(&g.api, "api", "", "URL of a running daemon's API (default from LAKIROTATOR_API)")
	root.PersistentFlags().StringVar(&g.tokenFile, "token-file", "", "file holding the API bearer token (default: the LAKIROTATOR_TOKEN variable)")
	root.PersistentFlags().BoolVar(&g.demo, "demo", false, "use the embedded demo (serve) or talk to the running demo daemon (other verbs)")
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
	)
	return root
}

type globalFlags struct {
	config    string
	api       string
	tokenFile string
	demo      bool
	output    string
}

func (g *globalFlags) checkOutput() error {
	if g.output != "table" && g.output != "json" {
		return usageErr("--output %q: use table or json", g.output)
	}
	return nil
}
