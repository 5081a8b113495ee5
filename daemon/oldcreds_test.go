package daemon_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

// During the grace the inventory shows each rotation's old key with its
// last_used_at from LakiConnect, and a consumer still on it past the
// policy's fraction of the grace raises one warning (audit and routes).
func TestInventoryShowsWhoIsStillOnTheOldKey(t *testing.T) {
	w := newWorld(t, worldOptions{policies: map[string]string{
		"checkout.yaml": checkoutPolicy("alerts: {last_used_warning_fraction: 0.5}\n"),
	}})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	ctx := context.Background()
	old := w.current(secCheckout)
	st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "ops@example", Reason: "routine"})
	if err != nil {
		t.Fatal(err)
	}
	if final := w.waitTrigger(r, st.ID); final.State != httpapi.StateSucceeded {
		t.Fatalf("rotation ended %s", final.State)
	}
	w.remember(w.current(secCheckout).Secret)

	// A consumer that never refreshed calls with the old key.
	w.clk.Advance(5 * time.Minute)
	oldClient, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: w.fix.SandboxURL, APIKey: old.Secret})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oldClient.WhoAmI(ctx); err != nil {
		t.Fatal(err)
	}
	r.svc.Daemon.RetirePass(ctx)
	inv, err := r.client.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	oc := oldCredentialOf(t, inv, secCheckout)
	if oc.ID != old.KeyID || oc.LastUsedAt == nil || oc.EndsAt == nil || oc.StillInUse {
		t.Fatalf("early in the grace: %+v", oc)
	}
	if !oc.LastUsedAt.Equal(w.clk.Now().Truncate(time.Minute)) {
		t.Errorf("last_used_at %s, want the minute of the call %s", oc.LastUsedAt, w.clk.Now().Truncate(time.Minute))
	}

	if vs, err := r.svc.Scans.Check(ctx); err != nil {
		t.Fatal(err)
	} else {
		for _, v := range vs {
			if v.Reason == policies.OldKeyStillInUse {
				t.Errorf("early in the grace, policy check already reports %+v", v)
			}
		}
	}
	w.clk.Advance(30 * time.Minute) // past half of the 1 h grace
	r.svc.Daemon.RetirePass(ctx)
	inv, err = r.client.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if oc := oldCredentialOf(t, inv, secCheckout); !oc.StillInUse {
		t.Fatalf("past half the grace: %+v", oc)
	}
	// plan and policy check name the consumer still on the old key.
	vs, err := r.svc.Scans.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range vs {
		found = found || (v.Reason == policies.OldKeyStillInUse && v.Secret == secCheckout && v.KeyID == old.KeyID)
	}
	if !found {
		t.Errorf("policy check: no old_key_still_in_use for %s key %s in %+v", secCheckout, old.KeyID, vs)
	}
	items, err := r.svc.Plan(ctx, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Secret == secCheckout && !slices.Contains(it.Violations, string(policies.OldKeyStillInUse)) {
			t.Errorf("plan of %s: violations %v, want old_key_still_in_use", secCheckout, it.Violations)
		}
	}
	warns := eventsWhere(r.rec, func(e events.Event) bool {
		return e.Step == events.StepAlert && e.Outcome == events.OutcomeWarning && e.Secret == secCheckout && e.Details["action"] == "old_key_still_used"
	})
	if len(warns) != 1 {
		t.Fatalf("%d old_key_still_used warnings, want 1", len(warns))
	}

	w.clk.Advance(time.Hour) // the grace is over: the old key is no longer shown
	r.svc.Daemon.RetirePass(ctx)
	inv, err = r.client.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range inv.Secrets {
		if s.Name == secCheckout && s.OldCredential != nil {
			t.Fatalf("after the grace: %+v", s.OldCredential)
		}
	}
}

func oldCredentialOf(t *testing.T, inv httpapi.Inventory, name string) httpapi.OldCredential {
	t.Helper()
	for _, s := range inv.Secrets {
		if s.Name == name {
			if s.OldCredential == nil {
				t.Fatalf("%s: no old_credential in the inventory (previous version %q)", name, s.PreviousVersionID)
			}
			return *s.OldCredential
		}
	}
	t.Fatalf("%s not in the inventory", name)
	return httpapi.OldCredential{}
}
