package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/rotator/schedule"
)

// What status shows as the next rotation is when the scheduler fires: an
// @every schedule counts from the start, not from whenever status asks.
func TestNextFiringIsWhenRunFires(t *testing.T) {
	start := time.Date(2026, 12, 1, 3, 26, 50, 0, time.UTC)
	fc := clock.NewFake(start)
	every, err := schedule.Parse("@every 30s", nil)
	if err != nil {
		t.Fatal(err)
	}
	fired := make(chan schedule.Firing, 4)
	s := &schedule.Scheduler{Clock: fc, Plans: []schedule.Plan{{Name: "p", Schedule: every}},
		Fire: func(_ context.Context, f schedule.Firing) { fired <- f }}
	if _, ok := s.NextFiring("p"); ok {
		t.Fatal("a next firing before Run started")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	waitFor(t, func() bool { return fc.Waiters() > 0 })
	if got, _ := s.NextFiring("p"); !got.Equal(start.Add(30 * time.Second)) {
		t.Errorf("next firing %s, want %s", got, start.Add(30*time.Second))
	}
	// Asked 20 s later, the answer is the same slot, not now + 30 s.
	fc.Advance(20 * time.Second)
	if got, _ := s.NextFiring("p"); !got.Equal(start.Add(30 * time.Second)) {
		t.Errorf("20 s later the next firing is %s, want still %s", got, start.Add(30*time.Second))
	}
	fc.Advance(10 * time.Second)
	f := <-fired
	if !f.Slot.Equal(start.Add(30 * time.Second)) {
		t.Errorf("fired slot %s", f.Slot)
	}
	waitFor(t, func() bool { got, _ := s.NextFiring("p"); return got.Equal(start.Add(60 * time.Second)) })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
