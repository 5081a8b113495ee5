package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/scan"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func newSweepCmd(stdio IO, g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "sweep",
		Short:   "Find keys the rotator created that no stored version references, and revoke them (runs here, with --config or --demo)",
		Example: "  lakirotator sweep --demo\n  lakirotator sweep --config lakirotator.yaml -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, stop, err := openLocal(cmd.Context(), stdio, g)
			if err != nil {
				return err
			}
			defer stop()
			results, err := svc.Daemon.Sweep(cmd.Context())
			if g.output == "json" {
				if jerr := writeJSON(stdio.Out, sweepJSON(results, err)); jerr != nil {
					return jerr
				}
			} else {
				w := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(w, "ENV\tKEY\tSECRET\tACTION")
				for env, r := range results {
					for _, k := range r.Revoked {
						fmt.Fprintf(w, "%s\t%s\t%s\trevoked (orphan)\n", env, k.KeyID, k.Secret)
					}
					for _, k := range r.Young {
						fmt.Fprintf(w, "%s\t%s\t%s\tleft alone (younger than the safety margin)\n", env, k.KeyID, k.Secret)
					}
					for _, k := range r.Foreign {
						fmt.Fprintf(w, "%s\t%s\t%s\treported only (not made by the rotator)\n", env, k.KeyID, k.Secret)
					}
				}
				_ = w.Flush()
			}
			return withCode(ExitFailure, err)
		},
	}
}

func newPolicyCmd(stdio IO, g *globalFlags) *cobra.Command {
	policy := &cobra.Command{Use: "policy", Short: "Policy checks", Example: "  lakirotator policy check --demo"}
	var minSeverity string
	check := &cobra.Command{
		Use:   "check",
		Short: "Check every key and webhook endpoint at LakiConnect and every managed secret against policy",
		Long: "Reads every key and webhook endpoint at LakiConnect (per master merchant and environment) and every\n" +
			"managed secret, prints the violations, and exits 3 when any has the --fail-on severity or higher.",
		Example: "  lakirotator policy check --demo\n  lakirotator policy check --config lakirotator.yaml --fail-on critical -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			min := events.Severity(minSeverity)
			if policies.SeverityRank(min) == 0 { // unknown severities rank 0
				return usageErr("--fail-on %q: use info, warning or critical", minSeverity)
			}
			svc, err := localService(cmd.Context(), stdio, g)
			if err != nil {
				return err
			}
			defer func() { _ = svc.Shutdown(context.Background()) }()
			vs, checkErr := svc.Scans.Check(cmd.Context())
			if checkErr != nil && !errors.Is(checkErr, secretstore.ErrMalformedValue) {
				return withCode(ExitFailure, checkErr)
			}
			// Secrets that cannot be read are reported after the others' violations.
			if g.output == "json" {
				err = scan.WriteJSON(stdio.Out, vs, time.Now().UTC())
			} else {
				err = scan.WriteTable(stdio.Out, vs)
			}
			if err != nil {
				return err
			}
			if checkErr != nil {
				return withCode(ExitFailure, checkErr)
			}
			if scan.ExitCode(vs, min) != 0 {
				return withCode(ExitViolations, fmt.Errorf("%d violation(s) at %s or above", len(policies.AtLeast(vs, min)), min))
			}
			return nil
		},
	}
	check.Flags().StringVar(&minSeverity, "fail-on", "warning", "exit non-zero when a violation has this severity or higher: info, warning, critical")
	policy.AddCommand(check)
	return policy
}

func newAuditCmd(stdio IO, g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify and report on the audit trail",
		Example: "  lakirotator audit verify ~/.cache/lakirotator-demo/audit.jsonl\n  lakirotator audit report audit.jsonl --format markdown"}
	verify := newAuditVerifyCmd(stdio, g)
	var format, from, to string
	report := &cobra.Command{
		Use:   "report FILE",
		Short: "Report for a security team: secrets, key ages, rotations, emergencies, open violations",
		Example: "  lakirotator audit report audit.jsonl --format markdown --from 2026-11-01T00:00:00Z\n" +
			"  lakirotator audit report --demo ~/.cache/lakirotator-demo/audit.jsonl --format json",
		Args: needArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now().UTC()
			start, end := now.AddDate(0, 0, -30), now
			var err error
			if from != "" {
				if start, err = time.Parse(time.RFC3339, from); err != nil {
					return usageErr("--from %q: use RFC 3339, e.g. 2026-11-01T00:00:00Z", from)
				}
			}
			if to != "" {
				if end, err = time.Parse(time.RFC3339, to); err != nil {
					return usageErr("--to %q: use RFC 3339, e.g. 2026-11-30T00:00:00Z", to)
				}
			}
			if g.output == "json" && !cmd.Flags().Changed("format") {
				format = "json"
			}
			switch format {
			case "text", "markdown", "json", "csv", "html":
			default:
				return usageErr("--format %q: use text, markdown, json, csv or html", format)
			}
			f, err := os.Open(args[0])
			if err != nil {
				return usageErr("%v", err)
			}
			defer f.Close()
			recs, err := audit.ReadRecords(f)
			if err != nil {
				return withCode(ExitFailure, fmt.Errorf("reading %s: %w", args[0], err))
			}
			sort.SliceStable(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
			in := audit.ReportInput{From: start, To: end, Now: now, Records: recs}
			if g.config != "" || g.demo {
				// With the config, the report shows the secrets as they are now.
				svc, err := localService(cmd.Context(), stdio, g)
				if err != nil {
					return err
				}
				defer func() { _ = svc.Shutdown(context.Background()) }()
				if in.Inventory, err = svc.ReportInventory(cmd.Context()); err != nil {
					return withCode(ExitFailure, err)
				}
			}
			return audit.BuildReport(in).Write(stdio.Out, format)
		},
	}
	report.Flags().StringVar(&format, "format", "text", "text, markdown, json, csv or html")
	report.Flags().StringVar(&from, "from", "", "start of the period (RFC 3339; default 30 days ago)")
	report.Flags().StringVar(&to, "to", "", "end of the period (RFC 3339; default now)")
	cmd.AddCommand(verify, report)
	return cmd
}
