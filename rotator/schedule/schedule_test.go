package schedule_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/rotator/schedule"
)

// officeHours is open 09:00–17:00 UTC on weekdays.
type officeHours struct{}

func (officeHours) Contains(t time.Time) bool {
	t = t.UTC()
	wd := t.Weekday()
	return wd != time.Saturday && wd != time.Sunday && t.Hour() >= 9 && t.Hour() < 17
}

func (w officeHours) NextStart(t time.Time) time.Time {
	for !w.Contains(t) {
		t = t.Truncate(time.Hour).Add(time.Hour)
	}
	return t
}

type firings struct {
	mu  sync.Mutex
	got []schedule.Firing
}

func (f *firings) fire(_ context.Context, x schedule.Firing) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, x)
}

func (f *firings) list() []schedule.Firing {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]schedule.Firing(nil), f.got...)
}

// advanceUntil moves the fake clock step by step, waiting each time until the
// scheduler has gone back to sleep, so firings happen in order.
func advanceUntil(t *testing.T, c *clock.Fake, until time.Time, step time.Duration) {
	t.Helper()
	for c.Now().Before(until) {
		require.Eventually(t, func() bool { return c.Waiters() > 0 }, 2*time.Second, time.Millisecond)
		c.Advance(step)
	}
	require.Eventually(t, func() bool { return c.Waiters() > 0 }, 2*time.Second, time.Millisecond)
}

func TestFiresEachSlotAndDefersToTheWindow(t *testing.T) {
	// Friday 2026-11-27 08:00 UTC.
	c := clock.NewFake(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	daily, err := schedule.Parse("0 3 * * *", time.UTC) // 03:00, outside office hours
	require.NoError(t, err)
	hourly, err := schedule.Parse("@every 6h", nil)
	require.NoError(t, err)
	f := &firings{}
	s := &schedule.Scheduler{Clock: c, Fire: f.fire, Plans: []schedule.Plan{
		{Name: "checkout", Schedule: daily, Window: officeHours{}},
		{Name: "webhooks", Schedule: hourly},
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	advanceUntil(t, c, time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), 15*time.Minute)

	var checkout []schedule.Firing
	webhooks := 0
	for _, x := range f.list() {
		if x.Plan == "checkout" {
			checkout = append(checkout, x)
		} else {
			webhooks++
		}
	}
	// Slots Sat 03:00, Sun 03:00 and Mon 03:00 all wait for Monday 09:00 and
	// keep their own slot times, so each is one distinct rotation.
	require.Len(t, checkout, 3)
	for i, day := range []int{28, 29, 30} {
		assert.Equal(t, time.Date(2026, 11, day, 3, 0, 0, 0, time.UTC), checkout[i].Slot)
	}
	// @every 6h from Fri 08:00 to Mon 12:00: 76h → 12 firings.
	assert.Equal(t, 12, webhooks)
}

func TestParseHonoursTimeZone(t *testing.T) {
	loc, err := time.LoadLocation("Asia/Manila")
	require.NoError(t, err)
	s, err := schedule.Parse("0 9 * * *", loc)
	require.NoError(t, err)
	next := s.Next(time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC))
	assert.Equal(t, time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC), next.UTC(), "09:00 in Manila is 01:00 UTC")

	_, err = schedule.Parse("0 25 * * *", nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"0 25 * * *"`)
}

func TestLastSlot(t *testing.T) {
	s, err := schedule.Parse("0 3 * * *", time.UTC)
	require.NoError(t, err)
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	last, ok := schedule.LastSlot(s, now, 48*time.Hour)
	require.True(t, ok)
	assert.Equal(t, time.Date(2026, 11, 29, 3, 0, 0, 0, time.UTC), last)
	_, ok = schedule.LastSlot(s, now, time.Hour)
	assert.False(t, ok)
}
