package rotator_test

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

// The rotator rotates its own management key last in a batch and goes on
// with the new one: it never locks itself out, even when the old key is
// ended at once.
func TestManagementKeyRotatesLastAndIsPickedUp(t *testing.T) {
	for _, cause := range []events.Cause{events.CauseScheduled, events.CauseCompromise} {
		t.Run(string(cause), func(t *testing.T) {
			h := newHarness(t)
			mgmt := h.seedKey("rotator/mgmt", inventory.KindManagementKey, laki.Sandbox, laki.AllScopes)
			oldMgmt := h.current(mgmt.Name)
			keys := rotator.NewManagementKeySource(h.store, mgmt.Name, time.Hour, h.fx.Clock)
			h.src = h.source(map[laki.Merchant]lakiconnect.KeySource{
				{Environment: laki.Sandbox, MasterMerchantID: h.fx.MasterMerchantID}: keys,
			})
			var apps []inventory.ManagedSecret
			for _, n := range []string{"svc/a", "svc/b", "svc/c"} {
				apps = append(apps, h.seedKey(n, inventory.KindAPIKey, laki.Sandbox, apiScopes))
			}
			e := h.engine(func(c *rotator.Config) { c.Workers, c.Attempts = 3, 1 }) // one attempt: a stale key must fail, not retry
			mgmtPol := basePolicy()
			mgmtPol.Scopes = laki.AllScopes
			c := rotator.Trigger{Kind: cause, ID: "batch-1", Source: events.SourceSchedule}
			jobs := []rotator.Job{{Secret: mgmt, Policy: mgmtPol, Trigger: c}}
			for _, a := range apps {
				jobs = append(jobs, rotator.Job{Secret: a, Policy: basePolicy(), Trigger: rotator.Trigger{Kind: events.CauseScheduled, ID: "batch-1"}})
			}
			var order []string
			out := e.RunBatch(context.Background(), jobs, func(p rotator.Progress) { order = append(order, p.Last.Job.Secret.Name) })
			for _, o := range out {
				if o.Err != nil {
					t.Fatalf("%s: %v", o.Job.Secret.Name, o.Err)
				}
			}
			if cause == events.CauseScheduled && order[len(order)-1] != mgmt.Name {
				t.Fatalf("order %v: management key not last", order)
			}
			newMgmt := h.current(mgmt.Name)
			if newMgmt.KeyID == oldMgmt.KeyID {
				t.Fatal("management key not rotated")
			}
			want := laki.StatusExpiring
			if cause == events.CauseCompromise {
				want = laki.StatusRevoked
			}
			if st := h.key(oldMgmt.KeyID).Status; st != want {
				t.Fatalf("old management key %s, want %s", st, want)
			}
			// Kill the old management key outright: the engine must be on the new one.
			if err := h.fx.Sim.RevokeKey(oldMgmt.KeyID, "revoked_by_dashboard"); err != nil && cause != events.CauseCompromise {
				t.Fatal(err)
			}
			if _, err := e.Rotate(context.Background(), apps[0], basePolicy(), scheduled("later")); err != nil {
				t.Fatalf("rotation after the management key changed: %v", err)
			}
		})
	}
}
