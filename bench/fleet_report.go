// The fleet run's report: what it measured and the table a person reads.

package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/lakirotator/lakirotator/providers/secretsmanager"
)

// Where the fleet run sends the owner's departure.
const (
	PersonnelToHolder = "holder" // the replica running the batch: emergencies jump its queue
	PersonnelToOther  = "other"  // another replica: it rotates them beside the holder's batch
)

// GoalOwnerQuotaFactor: the owner's secrets should rotate within 1.1× their
// own quota bound (2 writes each at the account's write quota).
const GoalOwnerQuotaFactor = 1.1

// FleetReport is what a fleet run measured. Counts and durations, never a secret.
type FleetReport struct {
	Date         time.Time `json:"date"`
	N            int       `json:"n"`
	Accounts     int       `json:"accounts"`
	Replicas     int       `json:"replicas"`
	KillLeaderAt float64   `json:"kill_leader_at"`
	LeaseTTL     float64   `json:"lease_ttl_seconds"`
	Workers      int       `json:"workers"`
	WriteQuota   float64   `json:"write_quota_per_second"`
	StandIn      bool      `json:"stand_in"`
	CPUs         int       `json:"cpus"`
	LoadAtStart  string    `json:"load_average_at_start"`
	LoadAtEnd    string    `json:"load_average_at_end"`
	PersonnelTo  string    `json:"personnel_to"`
	Slot         time.Time `json:"slot"`
	Merchants    int       `json:"master_merchants"`
	Batch        int       `json:"scheduled_batch"`
	OwnerJobs    int       `json:"owner_secrets"`
	SeedSeconds  float64   `json:"seed_seconds"`
	ReadySeconds float64   `json:"replicas_ready_seconds"`

	Rotated         int     `json:"rotated"`
	Lost            int     `json:"lost"`
	LostByStore     int     `json:"lost_by_listing"`
	Duplicated      int     `json:"duplicated"`
	ExtraPuts       int     `json:"secrets_with_extra_pending_versions"`
	WallSeconds     float64 `json:"wall_seconds"`
	RotationsPerSec float64 `json:"rotations_per_second"`
	BoundPerSec     float64 `json:"bound_per_second"`
	FractionOfBound float64 `json:"fraction_of_bound"`

	SMCalls               map[string]int        `json:"secretsmanager_calls"`       // on managed secrets, by operation/result, all replicas
	SMByClass             map[string]ClassCalls `json:"secretsmanager_by_class"`    // slot batch, personnel, compromise
	SMOtherCalls          map[string]int        `json:"secretsmanager_other_calls"` // listings, management keys
	SMCallsByReplica      map[int]int           `json:"secretsmanager_calls_by_replica"`
	SMByReplicaClass      map[string]int        `json:"secretsmanager_calls_by_replica_class_operation"` // "replica N/class/operation/result"
	SMCallsPerRot         float64               `json:"secretsmanager_calls_per_rotation"`
	SMRotationCallsPerRot float64               `json:"secretsmanager_calls_per_rotation_without_reads_by_id"`
	SMWritesPerRot        float64               `json:"secretsmanager_writes_per_rotation"`
	ThrottlesInjected     int                   `json:"throttles_injected"`

	ExposedToRevokedMillis float64 `json:"exposed_to_revoked_ms"`
	ExposedAtDone          int     `json:"exposed_when_batch_done"`
	ExposedSentTo          int     `json:"exposed_sent_to_replica"`
	ExposedToHolder        bool    `json:"exposed_sent_to_holder"`
	OwnerSeconds           float64 `json:"owner_rotation_seconds"`
	OwnerBoundSeconds      float64 `json:"owner_quota_bound_seconds"`
	OwnerStartedAtDone     int     `json:"owner_started_when_batch_done"`
	OwnerSentTo            int     `json:"owner_sent_to_replica"`
	OwnerToHolder          bool    `json:"owner_sent_to_holder"`
	OwnerTriggerState      string  `json:"owner_trigger_state"`
	OwnerAcceptSeconds     float64 `json:"owner_trigger_accepted_after_seconds"`

	KilledReplica          int     `json:"killed_replica,omitempty"`
	KilledAtDone           int     `json:"killed_when_batch_done,omitempty"`
	LeaseTakenAfterSeconds float64 `json:"lease_taken_after_seconds,omitempty"`
	ResumedAfterSeconds    float64 `json:"rotations_resumed_after_seconds,omitempty"`

	ReplicaFigures []ReplicaFigures   `json:"replica_figures"`
	CPUPercent     map[string]float64 `json:"cpu_percent_of_one_core"`
	Note           string             `json:"note,omitempty"`
}

// ClassCalls are the calls on one class of secrets (the slot's batch, the
// owner's, the exposed key) and how many of them rotated.
type ClassCalls struct {
	Secrets int            `json:"secrets"`
	Calls   int            `json:"calls"`
	Writes  int            `json:"writes"`
	ByOp    map[string]int `json:"by_operation"`
}

// ReplicaFigures are one replica's.
type ReplicaFigures struct {
	No       int     `json:"replica"`
	PeakMB   float64 `json:"peak_rss_mb"`
	IdleMB   float64 `json:"idle_rss_mb"`
	Killed   bool    `json:"killed"`
	Promoted int     `json:"rotations_promoted"`
	Errors   int     `json:"log_errors"`
	LastErr  string  `json:"last_log_error,omitempty"`
}

func (rep *FleetReport) fillFleetFigures(p *smProxy, replicas []*replica, all, owned []string, w *fleetWatch) {
	v := p.view()
	promotedBy := map[int]int{}
	for _, name := range all {
		s := v.secrets[name]
		switch {
		case len(s.promoted) == 0:
			rep.Lost++
		default:
			rep.Rotated++
			promotedBy[s.promoted[0].replica]++
			if len(s.promoted) > 1 {
				rep.Duplicated++
			}
		}
		if len(s.puts) > 1 {
			rep.ExtraPuts++
		}
	}
	if !w.start.IsZero() && w.end.After(w.start) {
		rep.WallSeconds = w.end.Sub(w.start).Seconds()
		rep.RotationsPerSec = float64(rep.Rotated) / rep.WallSeconds
		rep.FractionOfBound = rep.RotationsPerSec / rep.BoundPerSec
	}
	if !w.ownerAsked.IsZero() {
		var last time.Time
		for _, name := range owned {
			for _, pr := range v.secrets[name].promoted {
				if pr.at.After(last) {
					last = pr.at
				}
			}
		}
		if last.After(w.ownerAsked) {
			rep.OwnerSeconds = last.Sub(w.ownerAsked).Seconds()
		}
		rep.OwnerBoundSeconds = float64(len(owned)*WritesPerRotation) / rep.WriteQuota
	}
	calls, injected := p.snapshot()
	rep.ThrottlesInjected = injected
	rep.SMCalls, rep.SMOtherCalls, rep.SMCallsByReplica = map[string]int{}, map[string]int{}, map[int]int{}
	rep.SMByClass = map[string]ClassCalls{}
	rep.SMByReplicaClass = map[string]int{}
	for name, class := range p.classOf {
		c := rep.SMByClass[class]
		if len(v.secrets[name].promoted) > 0 {
			c.Secrets++
		}
		rep.SMByClass[class] = c
	}
	total, writes, byID := 0, 0, 0
	for k, n := range calls {
		if k.class == "" {
			rep.SMOtherCalls[k.op] += n
			continue
		}
		rep.SMCalls[k.op] += n
		rep.SMCallsByReplica[k.replica] += n
		rep.SMByReplicaClass[fmt.Sprintf("replica %d/%s/%s", k.replica, k.class, k.op)] += n
		total += n
		if strings.HasPrefix(k.op, opReadByID+"/") {
			byID += n
		}
		c := rep.SMByClass[k.class]
		if c.ByOp == nil {
			c.ByOp = map[string]int{}
		}
		c.ByOp[k.op] += n
		c.Calls += n
		if op, _, _ := strings.Cut(k.op, "/"); secretsmanager.IsWrite(op) {
			writes += n
			c.Writes += n
		}
		rep.SMByClass[k.class] = c
	}
	if rep.Rotated > 0 {
		rep.SMCallsPerRot = float64(total) / float64(rep.Rotated)
		rep.SMRotationCallsPerRot = float64(total-byID) / float64(rep.Rotated)
		rep.SMWritesPerRot = float64(writes) / float64(rep.Rotated)
	}
	for _, r := range replicas {
		n, last := r.logErrors(1)
		rep.ReplicaFigures = append(rep.ReplicaFigures, ReplicaFigures{No: r.no, PeakMB: r.peakMB, IdleMB: r.idleMB, Killed: !r.killed.IsZero(),
			Promoted: promotedBy[r.no], Errors: n, LastErr: oneLine(last)})
	}
}

// WriteTable prints the fleet report as a table.
func (r *FleetReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	row := func(name, value, goal string) { fmt.Fprintf(tw, "%s\t%s\t%s\n", name, value, goal) }
	fmt.Fprintf(tw, "lakibench fleet %s: N=%d over %d account(s), %d replica(s) of serve, kill-leader-at=%g, write quota=%.0f/s per account, stand-in=%v, workers=%d per environment, %d CPUs, load %s -> %s\n\n",
		r.Date.Format("2006-01-02 15:04 UTC"), r.N, r.Accounts, r.Replicas, r.KillLeaderAt, r.WriteQuota, r.StandIn, r.Workers, r.CPUs, r.LoadAtStart, r.LoadAtEnd)
	row("FIGURE", "VALUE", "GOAL")
	row("seeding, replicas ready (not measured against goals)", fmt.Sprintf("%.1f s, %.1f s (%d master merchants)", r.SeedSeconds, r.ReadySeconds, r.Merchants), "")
	row("rotations (slot batch + owner + exposed)", fmt.Sprintf("%d of %d (%d + %d + 1)", r.Rotated, r.N, r.Batch, r.OwnerJobs), "")
	row("rotations lost (proxy / final listing)", fmt.Sprintf("%d / %d", r.Lost, r.LostByStore), "0: "+goalMark(r.Lost == 0 && r.LostByStore == 0))
	row("rotations duplicated (a 2nd version made AWSCURRENT)", fmt.Sprint(r.Duplicated), "0: "+goalMark(r.Duplicated == 0))
	row("  secrets with more than one pending version put", fmt.Sprint(r.ExtraPuts), "")
	row("wall time, first put to last promote", fmt.Sprintf("%.1f s", r.WallSeconds), fmt.Sprintf(">= %.0f s by the quotas", float64(r.Rotated)/r.BoundPerSec))
	row("rotations per second", fmt.Sprintf("%.2f", r.RotationsPerSec), fmt.Sprintf("bound %d x 25 = %.0f/s", r.Accounts, r.BoundPerSec))
	row("fraction of the bound", fmt.Sprintf("%.3f", r.FractionOfBound), fmt.Sprintf(">= %.1f: %s", GoalFractionOfBound, goalMark(r.FractionOfBound >= GoalFractionOfBound)))
	row("Secrets Manager calls per rotation, all replicas", fmt.Sprintf("%.3f", r.SMCallsPerRot), fmt.Sprintf("3: %s", goalMark(r.SMCallsPerRot <= GoalMaxCallsPerRot)))
	row("  without reads of a version by id (retire pass)", fmt.Sprintf("%.3f", r.SMRotationCallsPerRot), "")
	row("  of which writes", fmt.Sprintf("%.3f", r.SMWritesPerRot), fmt.Sprintf("2: %s", goalMark(r.SMWritesPerRot <= WritesPerRotation)))
	for _, op := range sortedKeys(r.SMCalls) {
		row("  "+op, fmt.Sprint(r.SMCalls[op]), "")
	}
	for _, class := range []string{classBatch, classOwner, classExposed} {
		c, ok := r.SMByClass[class]
		if !ok || c.Secrets == 0 {
			continue
		}
		var ops []string
		for _, op := range sortedKeys(c.ByOp) {
			ops = append(ops, fmt.Sprintf("%s %d", op, c.ByOp[op]))
		}
		row(fmt.Sprintf("  %s: calls / writes per rotation", class), fmt.Sprintf("%.3f / %.3f over %d rotations (%s)",
			float64(c.Calls)/float64(c.Secrets), float64(c.Writes)/float64(c.Secrets), c.Secrets, strings.Join(ops, ", ")), "")
	}
	var byReplica []string
	for no := 1; no <= r.Replicas; no++ {
		byReplica = append(byReplica, fmt.Sprintf("replica %d: %d", no, r.SMCallsByReplica[no]))
	}
	row("  by replica", strings.Join(byReplica, ", "), "")
	var other []string
	for _, op := range sortedKeys(r.SMOtherCalls) {
		other = append(other, fmt.Sprintf("%s %d", op, r.SMOtherCalls[op]))
	}
	row("other calls (listings, management keys)", strings.Join(other, ", "), "not per rotation")
	if r.StandIn {
		row("ThrottlingException answered by the stand-in", fmt.Sprint(r.ThrottlesInjected), "")
	}
	exposedTo := fmt.Sprintf("replica %d, not the holder", r.ExposedSentTo)
	if r.ExposedToHolder {
		exposedTo = fmt.Sprintf("replica %d, the holder", r.ExposedSentTo)
	}
	row("api_key.exposed -> old key revoked", fmt.Sprintf("%.0f ms (batch %d/%d done; sent to %s)", r.ExposedToRevokedMillis, r.ExposedAtDone, r.Batch, exposedTo),
		fmt.Sprintf("< %d ms: %s", GoalExposedMillis, goalMark(r.ExposedToRevokedMillis > 0 && r.ExposedToRevokedMillis < GoalExposedMillis)))
	if r.OwnerJobs > 0 {
		ownerTo := fmt.Sprintf("replica %d, not the holder", r.OwnerSentTo)
		if r.OwnerToHolder {
			ownerTo = fmt.Sprintf("replica %d, the holder", r.OwnerSentTo)
		}
		bound := GoalOwnerQuotaFactor * r.OwnerBoundSeconds
		row(fmt.Sprintf("all %d secrets of one owner (personnel)", r.OwnerJobs), fmt.Sprintf("%.1f s (batch %d/%d done; sent to %s; trigger %s)", r.OwnerSeconds, r.OwnerStartedAtDone, r.Batch, ownerTo, orUnknown(r.OwnerTriggerState)),
			fmt.Sprintf("<= %.1f s (1.1 x %.0f s: 2 writes each at the quota): %s", bound, r.OwnerBoundSeconds, goalMark(r.OwnerSeconds > 0 && r.OwnerSeconds <= bound)))
		row("  trigger accepted (intents kept) after", fmt.Sprintf("%.1f s", r.OwnerAcceptSeconds), "")
		if c := r.SMByClass[classOwner]; c.Secrets > 0 && r.WriteQuota > 0 {
			perRot := float64(c.Writes) / float64(c.Secrets)
			row("  quota bound at the writes it spent", fmt.Sprintf("%.1f s (%.2f writes per rotation)", float64(r.OwnerJobs)*perRot/r.WriteQuota, perRot), "")
		}
	}
	if r.KilledReplica > 0 {
		row("lease holder SIGKILLed", fmt.Sprintf("replica %d at batch %d/%d", r.KilledReplica, r.KilledAtDone, r.Batch), "")
		row("  lease taken by another replica after", fmt.Sprintf("%.1f s", r.LeaseTakenAfterSeconds),
			fmt.Sprintf("<= TTL %.0f s: %s", r.LeaseTTL, goalMark(r.LeaseTakenAfterSeconds > 0 && r.LeaseTakenAfterSeconds <= r.LeaseTTL)))
		row("  failover gap: batch rotations resumed after", fmt.Sprintf("%.1f s", r.ResumedAfterSeconds), "")
	}
	for _, f := range r.ReplicaFigures {
		state := ""
		if f.Killed {
			state = ", killed (peak until then)"
		}
		row(fmt.Sprintf("replica %d RSS peak / idle", f.No), fmt.Sprintf("%.1f MB / %.1f MB (%d rotations promoted%s)", f.PeakMB, f.IdleMB, f.Promoted, state), "")
		if f.Errors > 0 {
			row("  logged errors", fmt.Sprintf("%d, last: %s", f.Errors, f.LastErr), "")
		}
	}
	names := make([]string, 0, len(r.CPUPercent))
	for k := range r.CPUPercent {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		row("CPU during the rotations: "+k, fmt.Sprintf("%.0f %% of one core", r.CPUPercent[k]), "")
	}
	if r.Note != "" {
		row("note", r.Note, "")
	}
	return tw.Flush()
}

func orUnknown(s string) string {
	if s == "" {
		return "state unknown: its replica was killed"
	}
	return s
}
