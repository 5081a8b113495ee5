package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// DemoState is what `serve --demo` leaves for the other verbs: where its API
// listens and the file (mode 0600) that holds its API token.
type DemoState struct {
	API       string `json:"api"`
	TokenFile string `json:"token_file"`
}

// demoDir is where the demo keeps its local store, audit file and state.
func demoDir(env func(string) string) string {
	if d := env("LAKIROTATOR_DEMO_DIR"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "lakirotator-demo")
	}
	return filepath.Join(os.TempDir(), "lakirotator-demo")
}

// loadDemoConfig reads the config the running demo wrote for itself, so
// that the verbs that run here (plan, sweep, policy check) work with --demo.
// Its simulator lives in the demo's process: the demo must be running.
func loadDemoConfig(stdio IO) (*config.Config, error) {
	if _, err := readDemoState(stdio.Env); err != nil {
		return nil, withCode(ExitFailure, err)
	}
	cfg, err := config.Load(filepath.Join(demoDir(stdio.Env), "config.yaml"))
	if err != nil {
		return nil, withCode(ExitUsage, err)
	}
	// The running demo owns audit.jsonl: a second writer would fork its
	// hash chain. What a verb does here is recorded in a trail of its own.
	cfg.Audit.File = filepath.Join(demoDir(stdio.Env), "audit-cli.jsonl")
	return cfg, nil
}

func readDemoState(env func(string) string) (DemoState, error) {
	path := filepath.Join(demoDir(env), "state.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return DemoState{}, fmt.Errorf("no running demo found (%v): start one with `lakirotator serve --demo`", err)
	}
	var st DemoState
	if err := json.Unmarshal(b, &st); err != nil {
		return DemoState{}, fmt.Errorf("demo state %s is not valid JSON: %v", path, err)
	}
	return st, nil
}

// apiClient connects to the daemon named by --api / LAKIROTATOR_API, or to the demo.
func (g *globalFlags) apiClient(stdio IO) (*httpapi.Client, error) {
	url, tokenFile := g.api, g.tokenFile
	if g.demo {
		st, err := readDemoState(stdio.Env)
		if err != nil {
			return nil, err
		}
		url, tokenFile = st.API, st.TokenFile
	}
	if url == "" {
		url = stdio.Env("LAKIROTATOR_API")
	}
	if url == "" {
		return nil, usageErr("no daemon to talk to: give --api URL (or LAKIROTATOR_API), --demo for the demo daemon, or --local to run the engine here")
	}
	var token secret.Value
	switch {
	case tokenFile != "":
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, usageErr("reading the API token: %v", err)
		}
		token = secret.New(strings.TrimSpace(string(b)))
	case stdio.Env("LAKIROTATOR_TOKEN") != "":
		token = secret.New(stdio.Env("LAKIROTATOR_TOKEN"))
	}
	c, err := httpapi.NewClient(url, token, nil)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return c, nil
}

// waitAndReport follows a trigger to its end, printing progress, and returns
// the exit code its outcome deserves.
func waitAndReport(ctx context.Context, stdio IO, c *httpapi.Client, st httpapi.TriggerStatus, output string) error {
	get := func(ctx context.Context) (httpapi.TriggerStatus, error) { return c.TriggerStatus(ctx, st.ID) }
	final, err := follow(ctx, get, 250*time.Millisecond, func(p httpapi.TriggerStatus) {
		if output == "table" {
			fmt.Fprintf(stdio.Err, "  %d/%d done, %d failed\n", p.Done+p.Failed, p.Total, p.Failed)
		}
	})
	if err != nil {
		return err
	}
	return reportFinal(stdio, final, output, false)
}

// reportFinal prints a finished trigger and returns the exit code its outcome deserves.
func reportFinal(stdio IO, final httpapi.TriggerStatus, output string, local bool) error {
	if output == "json" {
		if err := writeJSON(stdio.Out, triggerJSON(final)); err != nil {
			return err
		}
	} else {
		for _, s := range final.Secrets {
			state := s.State
			if retrying(s) {
				state = "retrying"
			}
			line := fmt.Sprintf("%-40s %-10s", s.Secret, state)
			if s.VersionID != "" {
				line += " version " + s.VersionID
			}
			if s.Error != "" {
				line += " error: " + s.Error
			}
			fmt.Fprintln(stdio.Out, line)
		}
		if n := retried(final); n > 0 && !final.Finished() {
			fmt.Fprintf(stdio.Out, "trigger %s: %s (%d succeeded, %d failed, %d failed and retried: %s)\n", final.ID, final.State,
				final.Done, final.Failed, n, retryNote(local))
		} else {
			fmt.Fprintf(stdio.Out, "trigger %s: %s (%d succeeded, %d failed)\n", final.ID, final.State, final.Done, final.Failed)
		}
	}
	if !final.Finished() && retried(final) > 0 {
		return retryErr(final, local)
	}
	switch final.State {
	case httpapi.StateSucceeded:
		return nil
	case httpapi.StatePartial:
		return withCode(ExitFailure, fmt.Errorf("%d of %d rotations failed", final.Failed, final.Total))
	default:
		return withCode(ExitFailure, fmt.Errorf("trigger %s %s", final.ID, final.State))
	}
}

func requester(stdio IO, given string) string {
	if given != "" {
		return given
	}
	if u := stdio.Env("USER"); u != "" {
		return "cli:" + u
	}
	return "cli"
}
