package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
)

func newRotateCmd(stdio IO, g *globalFlags) *cobra.Command {
	var cause, reason, who string
	var local, yes bool
	cmd := &cobra.Command{
		Use:   "rotate SECRET",
		Short: "Rotate one managed secret now",
		Example: "  lakirotator rotate --demo demo/sandbox/reporting --reason \"testing\"\n" +
			"  lakirotator rotate payments/production/checkout-api-key --cause compromise --reason \"key in a public repo\" --yes\n" +
			"  lakirotator rotate --local --config lakirotator.yaml payments/sandbox/checkout-api-key -o json",
		Args: needArgs("SECRET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			req := httpapi.TriggerRequest{Secret: args[0], Cause: events.Cause(cause), Reason: reason, Requester: requester(stdio, who)}
			if err := checkTrigger(req); err != nil {
				return err
			}
			if !yes && req.Cause != events.CauseManual {
				if err := confirmEmergency(cmd, stdio, g, req, local); err != nil {
					return err
				}
			}
			return runTrigger(cmd, stdio, g, req, local)
		},
	}
	cmd.Flags().StringVar(&cause, "cause", "manual", "why: manual, compromise or personnel")
	cmd.Flags().StringVar(&reason, "reason", "", "what happened (required for compromise and personnel)")
	cmd.Flags().StringVar(&who, "requester", "", "whom you act for, recorded as on_behalf_of; the actor is your token, certificate or, with --local, cli:$USER (default: cli:$USER)")
	cmd.Flags().BoolVar(&local, "local", false, "run the engine in this process with --config instead of asking a daemon")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation (a compromise rotation, or an emergency on production, asks otherwise)")
	return cmd
}

func newTriggerCmd(stdio IO, g *globalFlags) *cobra.Command {
	var owner, reason, who, cause string
	var yes, local, all bool
	cmd := &cobra.Command{
		Use:   "trigger (--owner PERSON | --all)",
		Short: "Rotate every secret a person or team had access to (personnel change), or every secret",
		Example: "  lakirotator trigger --demo --owner alice --reason \"alice left the team\" --yes\n" +
			"  lakirotator trigger --api https://rotator.internal:8443 --all --cause compromise --reason \"laptop stolen\"",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			if (owner == "") == !all {
				return usageErr("give exactly one of --owner PERSON or --all")
			}
			req := httpapi.TriggerRequest{Owner: owner, All: all, Cause: events.Cause(cause), Reason: reason, Requester: requester(stdio, who)}
			if err := checkTrigger(req); err != nil {
				return err
			}
			if !yes {
				if err := confirmOwner(cmd, stdio, g, owner, local); err != nil {
					return err
				}
			}
			return runTrigger(cmd, stdio, g, req, local)
		},
	}
	cmd.Flags().StringVar(&owner, "owner", "", "person or team whose secrets rotate")
	cmd.Flags().BoolVar(&all, "all", false, "rotate every managed secret")
	cmd.Flags().StringVar(&cause, "cause", "personnel", "why: personnel, compromise or manual")
	cmd.Flags().StringVar(&reason, "reason", "", "what happened (required)")
	cmd.Flags().StringVar(&who, "requester", "", "whom you act for, recorded as on_behalf_of; the actor is your token, certificate or, with --local, cli:$USER (default: cli:$USER)")
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&local, "local", false, "run the engine in this process with --config instead of asking a daemon")
	return cmd
}

// confirmOwner lists what will rotate (an owner's secrets, or all when owner
// is empty) and asks on standard input.
func confirmOwner(cmd *cobra.Command, stdio IO, g *globalFlags, owner string, local bool) error {
	inv, err := inventoryFor(cmd, stdio, g, local)
	if err != nil {
		return err
	}
	var names []string
	for _, s := range inv.Secrets {
		if owner == "" {
			names = append(names, fmt.Sprintf("  %s (%s, %s)", s.Name, s.Environment, s.Kind))
			continue
		}
		for _, o := range s.Owners {
			if strings.EqualFold(o, owner) {
				names = append(names, fmt.Sprintf("  %s (%s, %s)", s.Name, s.Environment, s.Kind))
				break
			}
		}
	}
	if len(names) == 0 && owner == "" {
		return withCode(ExitFailure, fmt.Errorf("there are no managed secrets"))
	}
	if len(names) == 0 {
		return withCode(ExitFailure, fmt.Errorf("owner %q has no managed secrets", owner))
	}
	return confirm(stdio, fmt.Sprintf("These %d secrets will rotate now:\n%s", len(names), strings.Join(names, "\n")))
}

// confirmEmergency asks before a compromise rotation (the old key ends at
// once) or an emergency on a production secret.
func confirmEmergency(cmd *cobra.Command, stdio IO, g *globalFlags, req httpapi.TriggerRequest, local bool) error {
	inv, err := inventoryFor(cmd, stdio, g, local)
	if err != nil {
		return err
	}
	for _, s := range inv.Secrets {
		if s.Name != req.Secret {
			continue
		}
		if req.Cause != events.CauseCompromise && s.Environment != "production" {
			return nil
		}
		what := fmt.Sprintf("A %s rotation of %s (%s, %s) will start now", req.Cause, s.Name, s.Environment, s.Kind)
		if req.Cause == events.CauseCompromise {
			what += ": the current key is ended as soon as the new one is current, with no grace for its consumers"
		}
		return confirm(stdio, what+".")
	}
	return usageErr("no managed secret is named %q; `lakirotator status` lists them", req.Secret)
}

// checkTrigger refuses what the daemon would refuse, before anyone is asked
// to confirm.
func checkTrigger(req httpapi.TriggerRequest) error {
	switch req.Cause {
	case events.CauseCompromise, events.CausePersonnel, events.CauseManual:
	default:
		return usageErr("--cause %q: use manual, compromise or personnel", req.Cause)
	}
	if req.Cause != events.CauseManual && strings.TrimSpace(req.Reason) == "" {
		return usageErr("--reason is required for a %s rotation: say what happened", req.Cause)
	}
	return nil
}

func runTrigger(cmd *cobra.Command, stdio IO, g *globalFlags, req httpapi.TriggerRequest, local bool) error {
	if local {
		return runLocalTrigger(cmd, stdio, g, req)
	}
	c, err := g.apiClient(stdio)
	if err != nil {
		return err
	}
	st, err := c.Trigger(cmd.Context(), req)
	if err != nil {
		if ae, ok := err.(*httpapi.APIError); ok && ae.StatusCode == 400 {
			return usageErr("%s", ae.Message)
		}
		return withCode(ExitFailure, err)
	}
	fmt.Fprintf(stdio.Err, "trigger %s accepted: %d secret(s)\n", st.ID, st.Total)
	return waitAndReport(cmd.Context(), stdio, c, st, g.output)
}

func newStatusCmd(stdio IO, g *globalFlags, name string) *cobra.Command {
	var local bool
	cmd := &cobra.Command{
		Use:   name,
		Short: "List managed secrets: ids, ages, stages, next rotation (never values)",
		Example: "  lakirotator " + name + " --demo\n  lakirotator " + name + " --api https://rotator.internal:8443 -o json\n" +
			"  lakirotator " + name + " --local --config lakirotator.yaml",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.checkOutput(); err != nil {
				return err
			}
			inv, err := inventoryFor(cmd, stdio, g, local)
			if err != nil {
				return err
			}
			return printInventory(stdio, g.output, inv)
		},
	}
	cmd.Flags().BoolVar(&local, "local", false, "read the stores in this process with --config instead of asking a daemon")
	return cmd
}

func inventoryFor(cmd *cobra.Command, stdio IO, g *globalFlags, local bool) (httpapi.Inventory, error) {
	if local {
		return localInventory(cmd, stdio, g)
	}
	c, err := g.apiClient(stdio)
	if err != nil {
		return httpapi.Inventory{}, err
	}
	inv, err := c.Inventory(cmd.Context())
	return inv, withCode(ExitFailure, err)
}

func printInventory(stdio IO, output string, inv httpapi.Inventory) error {
	if output == "json" {
		return writeJSON(stdio.Out, inventoryJSON(inv))
	}
	w := tabwriter.NewWriter(stdio.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SECRET\tKIND\tENV\tPOLICY\tCURRENT\tAGE\tIN FLIGHT\tNEXT ROTATION\tFAILURES")
	for _, s := range inv.Secrets {
		next := "-"
		if s.NextRotation != nil {
			next = s.NextRotation.UTC().Format(time.RFC3339)
		}
		inflight := "-"
		if s.PendingVersionID != "" {
			inflight = short(s.PendingVersionID)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", s.Name, s.Kind, s.Environment, s.Policy,
			short(s.CurrentVersionID), age(s.AgeSeconds, s.CurrentVersionID != ""), inflight, next, s.Failures)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return printOldCredentials(stdio, inv)
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	if id == "" {
		return "-"
	}
	return id
}

func age(seconds int64, known bool) string {
	if !known {
		return "-"
	}
	d := time.Duration(seconds) * time.Second
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return d.Round(time.Second).String()
	}
}
