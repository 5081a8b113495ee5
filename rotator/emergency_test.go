package rotator_test

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
)

func TestCompromiseEndsOldKeyAtPromotion(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/leaked", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	var oldWorkedAtPromote, oldWorkedAfterEnd bool
	e := h.engine(func(c *rotator.Config) {
		c.Hooks.AfterStep = func(_ string, s rotator.Boundary) error {
			_, err := h.whoami(laki.Sandbox, old.Secret)
			switch s {
			case rotator.AfterPromote:
				oldWorkedAtPromote = err == nil
			case rotator.AfterEndOld:
				oldWorkedAfterEnd = err == nil
			}
			return nil
		}
	})
	cause := rotator.Trigger{Kind: events.CauseCompromise, ID: "evt_exposed_1", Source: events.SourceLakiEvent, Actor: "lakiconnect", Reason: "public_repository"}
	res, err := e.Rotate(context.Background(), ms, basePolicy(), cause)
	if err != nil {
		t.Fatal(err)
	}
	if !oldWorkedAtPromote || oldWorkedAfterEnd {
		t.Fatalf("old key worked at promote: %v (want true: no outage), after the next step: %v (want false)", oldWorkedAtPromote, oldWorkedAfterEnd)
	}
	if h.key(old.KeyID).Status != laki.StatusRevoked {
		t.Fatal("compromised key not revoked")
	}
	if _, err := h.whoami(laki.Sandbox, h.current(ms.Name).Secret); err != nil {
		t.Fatal(err)
	}
	evs := h.eventsFor(ms.Name, events.StepRotation, events.OutcomeSucceeded)
	if len(evs) != 1 || evs[0].TriggerID != "evt_exposed_1" || evs[0].Source != events.SourceLakiEvent || evs[0].Reason != "public_repository" || evs[0].KeyID != res.KeyID {
		t.Fatalf("rotation event %+v", evs)
	}
}

func TestCompromiseRevokeFirst(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/leaked", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	var oldWorkedBeforeCreate = true
	e := h.engine(func(c *rotator.Config) {
		c.Hooks.AfterStep = func(_ string, s rotator.Boundary) error {
			if s == rotator.AfterRevokeFirst {
				_, err := h.whoami(laki.Sandbox, old.Secret)
				oldWorkedBeforeCreate = err == nil
				if n := len(h.rotatorKeys(laki.Sandbox, ms.Name)); n != 0 {
					t.Errorf("%d new keys before the revoke", n)
				}
			}
			return nil
		}
	})
	pol := basePolicy()
	pol.RevokeFirstOnCompromise = true
	if _, err := e.Rotate(context.Background(), ms, pol, rotator.Trigger{Kind: events.CauseCompromise, ID: "t1"}); err != nil {
		t.Fatal(err)
	}
	if oldWorkedBeforeCreate {
		t.Fatal("old key still worked when the new one was created")
	}
	if _, err := h.whoami(laki.Sandbox, h.current(ms.Name).Secret); err != nil {
		t.Fatal(err)
	}
}

func TestPersonnelChangeRotatesOwnersSecretsWithShortGrace(t *testing.T) {
	h := newHarness(t)
	a := h.seedKey("svc/a", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	b := h.seedKey("svc/b", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	b.Owners = []string{"carol"}
	oldA, oldB := h.current(a.Name), h.current(b.Name)
	jobs := rotator.PersonnelJobs([]inventory.ManagedSecret{a, b}, "Alice",
		func(inventory.ManagedSecret) rotator.RotationPolicy { return basePolicy() },
		rotator.Trigger{ID: "offboard-alice", Source: events.SourceCLI, Actor: "hr-bot", Reason: "left the company"})
	if len(jobs) != 1 || jobs[0].Secret.Name != a.Name {
		t.Fatalf("jobs %+v", jobs)
	}
	out := h.engine(nil).RunBatch(context.Background(), jobs, nil)
	if out[0].Err != nil {
		t.Fatal(out[0].Err)
	}
	k := h.key(oldA.KeyID)
	if k.ExpiresAt == nil || k.ExpiresAt.Sub(h.fx.Clock.Now()) > time.Hour {
		t.Fatalf("personnel grace: old key expires %v, want within an hour", k.ExpiresAt)
	}
	if h.key(oldB.KeyID).Status != laki.StatusActive {
		t.Fatal("a secret of someone else was rotated")
	}
}
