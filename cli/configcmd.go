package cli

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
)

// ValidateResult is what `config validate -o json` prints.
type ValidateResult struct {
	Config       string               `json:"config"`
	OK           bool                 `json:"ok"`
	Environments []string             `json:"environments"`
	Secrets      int                  `json:"declared_secrets"`
	Policies     []string             `json:"policies"`
	Problems     []string             `json:"problems"`
	Notes        []string             `json:"notes"` // references this machine cannot resolve; not errors of the config
	Online       []daemon.OnlineCheck `json:"online"`
}

func newConfigCmd(stdio IO, g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Check a config file", Example: "  lakirotator config validate --config lakirotator.yaml --online"}
	var online bool
	var configEnv string
	validate := &cobra.Command{
		Use:   "validate",
		Short: "Parse and validate a config, load its policies and resolve its references (offline unless --online)",
		Long: "Without --online nothing outside this machine is contacted: the config is parsed and validated, its\n" +
			"policies loaded, every policy and environment it names resolved, and {env:}/{file:} references looked up.\n" +
			"With --online it also checks, reading only, that every secret it names exists in Secrets Manager and that\n" +
			"every management key is accepted by LakiConnect.\n\n" +
			"Exit codes: 0 valid; 2 the config is wrong (every problem with file:line:col); 1 a named secret is missing\n" +
			"or a management key is refused; 4 AWS or LakiConnect could not be reached or refused the credentials.",
		Example: "  lakirotator config validate --config lakirotator.yaml\n" +
			"  lakirotator config validate --config lakirotator.yaml --online\n" +
			"  lakirotator config validate --config-env LAKIROTATOR_CONFIG -o json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			res := ValidateResult{Environments: []string{}, Policies: []string{}, Problems: []string{}, Notes: []string{}, Online: []daemon.OnlineCheck{}}
			cfg, err := loadConfig(stdio, g, configEnv)
			if cfg != nil {
				res.Config = cfg.File()
			} else {
				res.Config = firstNonEmptyString(g.config, configEnv)
			}
			if err == nil {
				pols, cerr := daemon.CheckConfig(cfg)
				if cerr != nil {
					err = withCode(ExitUsage, cerr)
				} else {
					res.Policies = pols.Names()
				}
			}
			if err != nil {
				res.Problems = strings.Split(err.Error(), "\n")
				if g.output == "json" {
					_ = writeJSON(stdio.Out, res)
				}
				return err
			}
			res.OK = true
			for _, e := range cfg.EnvironmentNames() {
				res.Environments = append(res.Environments, string(e))
			}
			res.Secrets = len(cfg.Secrets)
			res.Notes = localReferenceNotes(stdio, cfg)
			var failed, unreachable int
			if online {
				res.Online = daemon.CheckOnline(cmd.Context(), cfg, daemon.BuildOptions{LookupEnv: lookupEnv(stdio)})
				for _, c := range res.Online {
					switch {
					case c.Unreachable:
						unreachable++
					case !c.OK:
						failed++
					}
				}
				res.OK = failed == 0 && unreachable == 0
			}
			if g.output == "json" {
				if err := writeJSON(stdio.Out, res); err != nil {
					return err
				}
			} else {
				printValidate(stdio, res, online)
			}
			switch {
			case unreachable > 0:
				return withCode(ExitUnreachable, fmt.Errorf("%d check(s) could not reach AWS or LakiConnect; the config itself is valid", unreachable))
			case failed > 0:
				return withCode(ExitFailure, fmt.Errorf("%d online check(s) failed; the config itself is valid", failed))
			}
			return nil
		},
	}
	validate.Flags().BoolVar(&online, "online", false, "also check, reading only, that the named secrets exist and the management keys work")
	validate.Flags().StringVar(&configEnv, "config-env", "", "read the config YAML from this environment variable")
	cmd.AddCommand(validate)
	return cmd
}

func printValidate(stdio IO, res ValidateResult, online bool) {
	fmt.Fprintf(stdio.Out, "%s: valid (%s: %s; %s; %s)\n", res.Config, count(len(res.Environments), "environment", "environments"),
		strings.Join(res.Environments, ", "), count(res.Secrets, "declared secret", "declared secrets"), count(len(res.Policies), "policy", "policies"))
	for _, n := range res.Notes {
		fmt.Fprintf(stdio.Out, "note: %s\n", n)
	}
	if !online {
		fmt.Fprintln(stdio.Out, "offline: nothing was contacted; --online also checks the secrets exist and the management keys work")
		return
	}
	for _, c := range res.Online {
		verdict := "ok"
		switch {
		case c.Unreachable:
			verdict = "UNREACHABLE"
		case !c.OK:
			verdict = "FAILED"
		}
		line := fmt.Sprintf("%-11s %-20s %-10s %s", verdict, c.Check, c.Environment, c.Secret)
		if c.Message != "" {
			line += ": " + c.Message
		}
		fmt.Fprintln(stdio.Out, line)
	}
}

// localReferenceNotes looks up the {env:} and {file:} references here. One
// that is missing is a note, not a problem: the config is often checked on
// a machine other than the one it runs on.
func localReferenceNotes(stdio IO, cfg *config.Config) []string {
	notes := []string{}
	for _, r := range cfg.SecretRefs() {
		switch {
		case r.Ref.Env != "" && stdio.Env(r.Ref.Env) == "":
			notes = append(notes, fmt.Sprintf("%s: environment variable %s is not set here", r.Field, r.Ref.Env))
		case r.Ref.File != "":
			if _, err := os.Stat(r.Ref.File); err != nil {
				notes = append(notes, fmt.Sprintf("%s: %s cannot be read here", r.Field, r.Ref.File))
			}
		}
	}
	return notes
}

func firstNonEmptyString(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
