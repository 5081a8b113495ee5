package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Goals the figures are held to (benchmark goals, not test assertions).
const (
	GoalFractionOfBound   = 0.9
	GoalMaxCallsPerRot    = 3
	GoalExposedMillis     = 2000
	GoalOwnerSeconds      = 60
	GoalPeakRSSMB         = 150
	GoalIdleServeRSSMB    = 40
	goalOwnerSecretsCount = 1000
)

// WriteTable prints the report as a table a person reads, each figure with
// its goal where the issue sets one.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	row := func(name, value, goal string) { fmt.Fprintf(tw, "%s\t%s\t%s\n", name, value, goal) }
	fmt.Fprintf(tw, "lakibench %s: N=%d (%d API keys, %d webhook secrets, %d master merchants), client limit=%s, write quota=%.0f/s, stand-in=%v, workers=%d, %d CPUs\n\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.N, r.APIKeys, r.Webhooks, r.Merchants, r.Quota, r.WriteQuota, r.StandIn, r.Workers, r.CPUs)
	row("FIGURE", "VALUE", "GOAL")
	row("seeding (not measured against goals)", fmt.Sprintf("%.1f s", r.SeedSeconds), "")
	row("discovery by tags", fmt.Sprintf("%d secrets, %d ListSecrets pages, %.2f s", r.Discovered, r.DiscoveryPages, r.DiscoverySeconds), "no per-secret describe")
	row("rotations", fmt.Sprintf("%d ok, %d failed (batch %d + owner %d + exposed 1)", r.Rotated, r.Failed, r.Batch, r.OwnerJobs), "")
	row("every secret rotated exactly once", fmt.Sprint(r.RotationsOnce), "")
	row("wall time", fmt.Sprintf("%.1f s", r.WallSeconds), fmt.Sprintf(">= %.0f s by the quota", float64(r.Rotated)/r.QuotaBoundPerSec))
	row("rotations per second", fmt.Sprintf("%.2f", r.RotationsPerSec), fmt.Sprintf("ceiling %.0f/s", r.QuotaBoundPerSec))
	row("fraction of the quota bound", fmt.Sprintf("%.3f", r.FractionOfBound), fmt.Sprintf(">= %.1f: %s", GoalFractionOfBound, goalMark(r.FractionOfBound >= GoalFractionOfBound)))
	row("peak writes completed in one second", fmt.Sprintf("%.0f", r.WritesPerSecPeak), fmt.Sprintf("quota %.0f (counted on completion: slow answers bunch)", r.WriteQuota))
	row("Secrets Manager calls per rotation", fmt.Sprintf("%.3f", r.SMCallsPerRot), fmt.Sprintf("<= %d: %s (AWS template: %d)", GoalMaxCallsPerRot, goalMark(r.SMCallsPerRot <= GoalMaxCallsPerRot), AWSTemplateCallsPerR))
	row("  of which writes", fmt.Sprintf("%.3f", r.SMWritesPerRot), fmt.Sprintf("2: %s", goalMark(r.SMWritesPerRot == WritesPerRotation)))
	for _, op := range sortedKeys(r.SMCalls) {
		row("  "+op, fmt.Sprintf("%d (%.3f/rotation, mean %.1f ms)", r.SMCalls[op], float64(r.SMCalls[op])/float64(max(r.Rotated, 1)), r.SMMeanMillis[op]), "")
	}
	row("throttling errors surfaced", fmt.Sprint(r.ThrottlesSurfaced), "0: "+goalMark(r.ThrottlesSurfaced == 0))
	if r.StandIn {
		injected := fmt.Sprint(r.ThrottlesInjected)
		if r.ThrottlesInjected > 0 {
			injected += " (absorbed by the SDK's retries)"
		}
		row("throttles injected by the stand-in", injected, "")
	}
	row("LakiConnect calls per rotation", fmt.Sprintf("%.3f", r.LakiCallsPerRot), "")
	for _, k := range sortedKeys(r.LakiCalls) {
		row("  "+k, fmt.Sprintf("%d (%.3f/rotation)", r.LakiCalls[k], float64(r.LakiCalls[k])/float64(max(r.Rotated, 1))), "")
	}
	row("LakiConnect 429 answers", fmt.Sprint(r.Laki429), "0")
	row("rotation latency p50 / p99", fmt.Sprintf("%.0f ms / %.0f ms", r.LatencyP50Millis, r.LatencyP99Millis), "")
	row("api_key.exposed -> old key revoked", fmt.Sprintf("%.0f ms (batch %d/%d done)", r.ExposedToRevokedMillis, r.ExposedAtDone, r.Batch),
		fmt.Sprintf("< %d ms: %s", GoalExposedMillis, goalMark(r.ExposedToRevokedMillis < GoalExposedMillis)))
	ownerGoal := fmt.Sprintf("< %d s for %d: %s", GoalOwnerSeconds, goalOwnerSecretsCount, goalMark(r.OwnerSeconds < GoalOwnerSeconds))
	if r.OwnerJobs < goalOwnerSecretsCount {
		ownerGoal = fmt.Sprintf("(goal is for %d secrets)", goalOwnerSecretsCount)
	}
	row(fmt.Sprintf("all %d secrets of one owner", r.OwnerJobs), fmt.Sprintf("%.1f s (batch %d/%d done at start)", r.OwnerSeconds, r.OwnerStartedAtDone, r.Batch), ownerGoal)
	where := "simulator in a separate process"
	if r.SimulatorInProcess {
		where = "includes the in-process simulator"
	}
	row("peak RSS of the rotating process", fmt.Sprintf("%.1f MB (heap in use at end %.1f MB)", r.PeakRSSMB, r.HeapMB),
		fmt.Sprintf("< %d MB: %s (%s)", GoalPeakRSSMB, goalMark(r.PeakRSSMB < GoalPeakRSSMB), where))
	if !r.SimulatorInProcess && r.SimulatorPeakRSSMB > 0 {
		row("  the simulator process (not the rotator)", fmt.Sprintf("peak %.1f MB", r.SimulatorPeakRSSMB), "")
	}
	if r.IdleServe != nil {
		row(fmt.Sprintf("idle serve holding %d secrets", r.IdleServe.Secrets), fmt.Sprintf("RSS %.1f MB (peak %.1f MB)", r.IdleServe.RSSMB, r.IdleServe.PeakMB),
			fmt.Sprintf("< %d MB: %s", GoalIdleServeRSSMB, goalMark(r.IdleServe.RSSMB > 0 && r.IdleServe.RSSMB < GoalIdleServeRSSMB)))
		if r.IdleServe.Note != "" {
			row("  note", r.IdleServe.Note, "")
		}
	}
	if r.FirstFailure != "" {
		row("first failure", oneLine(r.FirstFailure), "")
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// oneLine flattens text for a table cell.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// goalMark is a figure's verdict against its goal.
func goalMark(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}
