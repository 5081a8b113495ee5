package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// PlanItem is what the daemon would do for one secret, and why. Plan
// changes nothing.
type PlanItem struct {
	Secret      string     `json:"secret"`
	Environment string     `json:"environment"`
	Policy      string     `json:"policy"`
	State       string     `json:"state"` // in_flight, overdue, due, ok, missing, no_policy
	Action      string     `json:"action"`
	NextRun     *time.Time `json:"next_run,omitempty"`
	AgeSeconds  int64      `json:"age_seconds,omitempty"`
	ScopeChange string     `json:"scope_change,omitempty"` // applied at the next rotation
	Violations  []string   `json:"violations"`
	Error       string     `json:"error,omitempty"` // state error: why the secret could not be read
}

// Plan states, in order of urgency.
const (
	PlanInFlight = "in_flight"
	PlanOverdue  = "overdue"
	PlanDue      = "due"
	PlanOK       = "ok"
	PlanMissing  = "missing"
	PlanNoPolicy = "no_policy"
	PlanError    = "error" // the stored value could not be read; the other secrets are still planned
)

// Plan reports, for every managed secret, whether a rotation is in flight,
// overdue or due soon, what the next rotation will change (a narrowed or
// widened policy applies then), and the policy violations found now.
func (s *Service) Plan(ctx context.Context, dueWithin time.Duration) ([]PlanItem, error) {
	d := s.Daemon
	vs, idx, err := s.Scans.check(ctx)
	if idx == nil {
		return nil, err
	}
	if err != nil {
		d.log.Warn("plan: policy scan failed; violations are not shown", "err", err)
	}
	violations := map[string][]string{}
	for _, v := range vs {
		violations[v.Secret] = append(violations[v.Secret], string(v.Reason))
	}
	now := d.clock.Now()
	var items []PlanItem
	for _, e := range d.catalog.All() {
		it := PlanItem{Secret: e.Managed.Name, Environment: string(e.Managed.Environment), Policy: e.Managed.Policy, Violations: violations[e.Managed.Name]}
		p, ok := d.policies.Get(e.Managed.Policy)
		switch {
		case e.Missing:
			it.State, it.Action = PlanMissing, "nothing: the secret does not exist in the store"
			items = append(items, it)
			continue
		case !ok:
			it.State, it.Action = PlanNoPolicy, fmt.Sprintf("nothing: policy %q is not defined", e.Managed.Policy)
			items = append(items, it)
			continue
		case idx.unreadable[e.Managed.Name] != nil:
			it.State, it.Action, it.Error = PlanError, "nothing until the stored value is fixed", idx.unreadable[e.Managed.Name].Error()
			items = append(items, it)
			continue
		}
		cur, hasCur := e.Stored.VersionWithStage(secretstore.StageCurrent)
		pend, hasPend := e.Stored.VersionWithStage(secretstore.StagePending)
		since, known := e.CurrentSince()
		if known {
			it.AgeSeconds = int64(now.Sub(since).Seconds())
		}
		if next, ok := d.nextRotation(e.Managed.Policy, now); ok {
			it.NextRun = &next // what status shows: the slot, moved into the rotation window
		}
		switch {
		case hasPend && (!hasCur || pend.ID != cur.ID):
			it.State, it.Action = PlanInFlight, "resume the rotation to version "+pend.ID
		case !hasCur || (p.MaxAge > 0 && known && now.Sub(since) > p.MaxAge):
			it.State, it.Action = PlanOverdue, "rotate at start-up or on the next pass"
		case it.NextRun != nil && it.NextRun.Sub(now) <= dueWithin:
			it.State, it.Action = PlanDue, "rotate at "+it.NextRun.UTC().Format(time.RFC3339)
		default:
			it.State, it.Action = PlanOK, "nothing until the next slot"
		}
		if scopes, ok := idx.scopes[e.Managed.Name]; ok && e.Managed.Kind != inventory.KindWebhookSecret {
			target := p
			if fp, ok := s.Policies.ForEnvironment(p.Name, e.Managed.Environment); ok {
				target = fp
			}
			if ch := target.ScopeChangeFor(scopes); !ch.IsZero() {
				it.ScopeChange = ch.String()
			}
		}
		items = append(items, it)
	}
	return items, nil
}

// ReportInventory is the state of every managed secret for the audit
// report: current key id, scopes against policy, age, next due.
func (s *Service) ReportInventory(ctx context.Context) ([]audit.SecretState, error) {
	d := s.Daemon
	if err := d.catalog.Refresh(ctx, d.clock.Now()); err != nil {
		return nil, err
	}
	now := d.clock.Now()
	var out []audit.SecretState
	for _, e := range d.catalog.All() {
		if e.Missing {
			continue
		}
		st := audit.SecretState{Name: e.Managed.Name, Kind: string(e.Managed.Kind), Environment: string(e.Managed.Environment), MasterMerchantID: e.Managed.MasterMerchantID}
		if c, err := currentCredential(ctx, d.envs[e.Managed.Environment].Store, e.Managed.Name); err == nil {
			st.KeyID, st.Scopes, st.CreatedAt = c.ID(), c.Scopes, c.CreatedAt
		}
		if p, ok := d.policies.Get(e.Managed.Policy); ok {
			st.PolicyMaxAge = p.MaxAge
			st.PolicyScopes = laki.ScopeNames(p.Scopes)
			if next, ok := d.nextRotation(e.Managed.Policy, now); ok {
				st.NextDue = next
			}
		}
		out = append(out, st)
	}
	return out, nil
}
