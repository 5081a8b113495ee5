package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/daemon"
)

func newPlanCmd(stdio IO, g *globalFlags) *cobra.Command {
	var within time.Duration
	cmd := &cobra.Command{
		Use:     "plan",
		Short:   "Dry run: what is due, in flight, overdue or in violation, and what would happen (changes nothing)",
		Example: "  lakirotator plan --demo\n  lakirotator plan --config lakirotator.yaml --due-within 72h -o json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, stop, err := openLocal(cmd.Context(), stdio, g)
			if err != nil {
				return err
			}
			defer stop()
			items, err := svc.Plan(cmd.Context(), within)
			if err != nil {
				return withCode(ExitFailure, err)
			}
			var unreadable []string
			for _, it := range items {
				if it.State == daemon.PlanError {
					unreadable = append(unreadable, it.Secret)
				}
			}
			// Every secret is shown; one that cannot be read fails the command at the end.
			var failed error
			if len(unreadable) > 0 {
				failed = withCode(ExitFailure, fmt.Errorf("%d secret(s) could not be read: %s", len(unreadable), strings.Join(unreadable, ", ")))
			}
			if g.output == "json" {
				if err := writeJSON(stdio.Out, planJSON(items)); err != nil {
					return err
				}
				return failed
			}
			w := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SECRET\tENV\tPOLICY\tSTATE\tAGE\tWOULD\tSCOPES AT NEXT ROTATION\tVIOLATIONS")
			for _, it := range items {
				action := it.Action
				if it.Error != "" {
					action = it.Error
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.Secret, it.Environment, it.Policy, it.State,
					age(it.AgeSeconds, it.AgeSeconds > 0), action, dash(it.ScopeChange), dash(strings.Join(it.Violations, ",")))
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return failed
		},
	}
	cmd.Flags().DurationVar(&within, "due-within", 24*time.Hour, "count a rotation as due when its slot is this close")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
