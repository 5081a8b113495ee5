package rotator_test

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// With last_used_warning_fraction 0.75 and a 24 h grace, a consumer still
// on the old key is reported once 18 h have passed, not before, with the
// key's last_used_at from LakiConnect.
func TestRetireWarnsAtAFractionOfTheGrace(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/fraction", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	pol := basePolicy()
	pol.LastUsedWarningFraction = 0.75
	e := h.engine(nil)
	ctx := context.Background()
	if _, err := e.Rotate(ctx, ms, pol, scheduled("s1")); err != nil {
		t.Fatal(err)
	}
	h.fx.Clock.Advance(2 * time.Hour)
	if _, err := h.whoami(laki.Sandbox, old.Secret); err != nil {
		t.Fatal(err)
	}
	h.fx.Clock.Advance(15*time.Hour + 59*time.Minute) // 17:59 into the grace
	r, err := e.Retire(ctx, ms, pol, nil)
	if err != nil || r.State != "in_grace" || r.StillInUse || r.LastUsedAt == nil {
		t.Fatalf("before 75%%: %+v %v", r, err)
	}
	h.fx.Clock.Advance(time.Minute)
	r, err = e.Retire(ctx, ms, pol, nil)
	if err != nil || !r.StillInUse {
		t.Fatalf("at 75%%: %+v %v", r, err)
	}
	warns := h.eventsFor(ms.Name, events.StepAlert, events.OutcomeWarning)
	if len(warns) != 1 || warns[0].Details["last_used_at"] == "" || warns[0].PreviousKeyID != old.KeyID {
		t.Fatalf("warning events: %+v", warns)
	}
}
