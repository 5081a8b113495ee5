package rotator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
)

func TestSweepRevokesOnlyOldRotatorOrphans(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/sweep", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	ctx := context.Background()
	// A finished rotation: AWSCURRENT and AWSPREVIOUS reference two keys.
	if _, err := h.engine(nil).Rotate(ctx, ms, basePolicy(), scheduled("s1")); err != nil {
		t.Fatal(err)
	}
	prev := h.current(ms.Name)
	// Two rotations that died after their create and were never asked again.
	for _, id := range []string{"lost-1", "lost-2"} {
		if _, err := h.engine(crashAt(rotator.AfterCreate)).Rotate(ctx, ms, basePolicy(), rotator.Trigger{Kind: events.CauseManual, ID: id}); !errors.Is(err, rotator.ErrAborted) {
			t.Fatal(err)
		}
	}
	foreign, err := h.fx.Sim.CreateKey(laki.Sandbox, h.fx.MasterMerchantID, "made by a person", apiScopes)
	if err != nil {
		t.Fatal(err)
	}
	h.keep(foreign.Secret)

	res, err := h.engine(nil).Sweep(ctx, []inventory.ManagedSecret{ms})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Revoked) != 0 || len(res.Young) != 2 {
		t.Fatalf("young orphans touched: %+v", res)
	}
	if !containsKey(res.Foreign, foreign.ID) {
		t.Fatalf("foreign key not reported: %+v", res.Foreign)
	}

	h.fx.Clock.Advance(26 * time.Hour)
	// Crash mid-sweep after the first revoke; the next sweep finishes.
	_, err = h.engine(crashAt(rotator.AfterSweepRevoke)).Sweep(ctx, []inventory.ManagedSecret{ms})
	if !errors.Is(err, rotator.ErrAborted) {
		t.Fatalf("err = %v", err)
	}
	res2, err := h.engine(nil).Sweep(ctx, []inventory.ManagedSecret{ms})
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Revoked) != 1 {
		t.Fatalf("second sweep revoked %d, want the one left", len(res2.Revoked))
	}
	var live []string
	for _, k := range h.rotatorKeys(laki.Sandbox, ms.Name) {
		if k.Status != laki.StatusRevoked {
			live = append(live, k.ID)
		}
	}
	if len(live) != 1 || live[0] != prev.KeyID {
		t.Fatalf("live rotator keys %v, want only the current %s", live, prev.KeyID)
	}
	if st := h.key(foreign.ID).Status; st != laki.StatusActive {
		t.Fatalf("foreign key touched: %s", st)
	}
	if st := h.key(h.fx.SandboxKeyID).Status; st != laki.StatusActive {
		t.Fatalf("management key touched: %s", st)
	}
	if len(h.eventsFor(ms.Name, events.StepSweep, events.OutcomeSucceeded)) != 2 {
		t.Fatal("want one sweep event per revoked orphan")
	}
}

func containsKey(ks []rotator.SweptKey, id string) bool {
	for _, k := range ks {
		if k.KeyID == id {
			return true
		}
	}
	return false
}

func TestRetireWarnsWhileUsedAndConfirmsEnd(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/retire", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	pol := basePolicy()
	pol.LastUsedWarning = 2 * time.Hour
	e := h.engine(nil)
	ctx := context.Background()
	if _, err := e.Rotate(ctx, ms, pol, scheduled("s1")); err != nil {
		t.Fatal(err)
	}
	r, err := e.Retire(ctx, ms, pol, nil)
	if err != nil || r.State != rotator.RetireInGrace || r.StillInUse {
		t.Fatalf("early in grace: %+v %v", r, err)
	}
	// A consumer still on the old key an hour before its end.
	h.fx.Clock.Advance(23 * time.Hour)
	if _, err := h.whoami(laki.Sandbox, old.Secret); err != nil {
		t.Fatal(err)
	}
	r, err = e.Retire(ctx, ms, pol, nil)
	if err != nil || !r.StillInUse {
		t.Fatalf("near the end: %+v %v", r, err)
	}
	if len(h.eventsFor(ms.Name, events.StepAlert, events.OutcomeWarning)) != 1 {
		t.Fatal("no warning event")
	}
	h.fx.Clock.Advance(2 * time.Hour)
	r, err = e.Retire(ctx, ms, pol, nil)
	if err != nil || r.State != rotator.RetireEnded {
		t.Fatalf("after the end: %+v %v", r, err)
	}
}

// An old key whose end was never scheduled (it was set back to active by
// hand, say) gets one from Retire.
func TestRetireSchedulesMissingEnd(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/noend", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	e := h.engine(crashAt(rotator.AfterPromote))
	if _, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("s1")); !errors.Is(err, rotator.ErrAborted) {
		t.Fatal(err)
	}
	r, err := h.engine(nil).Retire(context.Background(), ms, basePolicy(), nil)
	if err != nil || r.State != rotator.RetireScheduled {
		t.Fatalf("%+v %v", r, err)
	}
	if st := h.key(old.KeyID).Status; st != laki.StatusExpiring {
		t.Fatalf("old key %s", st)
	}
}
