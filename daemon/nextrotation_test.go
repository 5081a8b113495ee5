package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/rotator"
)

// status and plan show when a secret rotates next: a cron slot outside the
// policy's rotation window moves to the window's next start, as the
// scheduler moves it.
func TestNextRotationRespectsTheWindow(t *testing.T) {
	w := newWorld(t, worldOptions{policies: map[string]string{
		"checkout.yaml": checkoutPolicy(`window: {days: [sat, sun], start: "10:00", end: "12:00"}` + "\n"),
	}})
	svc := w.build(rotator.Hooks{})
	defer svc.Shutdown(context.Background())
	ctx := context.Background()
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	inv, err := svc.Daemon.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's clock starts on Monday 2026-06-01 09:00 UTC: Tuesday's
	// 03:00 slot waits for Saturday 10:00.
	want := time.Date(2026, 6, 6, 10, 0, 0, 0, time.UTC)
	for _, s := range inv.Secrets {
		if s.Name != secCheckout {
			continue
		}
		if s.NextRotation == nil || !s.NextRotation.Equal(want) {
			t.Errorf("status: next rotation %v, want %s", s.NextRotation, want)
		}
	}
	items, err := svc.Plan(ctx, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Secret == secCheckout && (it.NextRun == nil || !it.NextRun.Equal(want)) {
			t.Errorf("plan: next run %v, want %s", it.NextRun, want)
		}
	}
}
