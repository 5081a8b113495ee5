package clock_test

import (
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
)

func TestFakeFiresWaitersInOrderAsItMoves(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	c := clock.NewFake(start)
	soon, later := c.After(time.Minute), c.After(time.Hour)
	if n := c.Waiters(); n != 2 {
		t.Fatalf("%d waiters, want 2", n)
	}
	c.Advance(59 * time.Second)
	select {
	case <-soon:
		t.Fatal("fired a minute's wait after 59 s")
	default:
	}
	c.Advance(time.Second)
	if got := <-soon; !got.Equal(start.Add(time.Minute)) {
		t.Errorf("fired at %v", got)
	}
	c.Set(start.Add(2 * time.Hour))
	<-later
	if c.Waiters() != 0 {
		t.Error("fired waiters are still counted")
	}
	select {
	case <-c.After(0):
	default:
		t.Error("a zero wait does not fire at once")
	}
}
