// Package schedule fires scheduled rotations. Cron specs are parsed with
// robfig/cron/v3, but the waiting is done on the injected clock rather than
// cron's own timer, so schedules and rotation windows are tested without
// sleeping. A firing names its slot (the cron time, in UTC): the engine derives
// the rotation's version id from it, so two replicas, or a restart, firing the
// same slot converge on one rotation.
package schedule

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lakirotator/lakirotator/internal/clock"
)

// Parse parses a standard five-field cron spec or a descriptor (@daily,
// @every 1h), with an optional CRON_TZ=/TZ= prefix, in loc when no prefix.
func Parse(spec string, loc *time.Location) (cron.Schedule, error) {
	if loc != nil && loc != time.UTC && !hasTZPrefix(spec) {
		spec = "CRON_TZ=" + loc.String() + " " + spec
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("schedule %q: %w", spec, err)
	}
	return s, nil
}

func hasTZPrefix(spec string) bool {
	return len(spec) > 3 && (spec[:3] == "TZ=" || (len(spec) > 8 && spec[:8] == "CRON_TZ="))
}

// Window is when rotations may run (people are around). A nil Window allows any time.
type Window interface {
	Contains(t time.Time) bool
	// NextStart returns the first time at or after t inside the window.
	NextStart(t time.Time) time.Time
}

// Plan is one schedule: usually one per policy, covering every secret under it.
type Plan struct {
	Name     string
	Schedule cron.Schedule
	Window   Window
}

// Firing is one due slot of one plan.
type Firing struct {
	Plan string
	// Slot is the cron time the firing belongs to, even when the window
	// moved the firing later.
	Slot time.Time
}

// Scheduler waits for the next slot of any plan and fires it.
type Scheduler struct {
	Clock clock.Clock
	Plans []Plan
	Fire  func(ctx context.Context, f Firing)

	mu       sync.Mutex
	upcoming map[string]time.Time // plan → when it fires next
}

// NextFiring is when Run fires the plan next: what `status` shows as the
// next rotation, which for an @every schedule depends on when Run started.
// ok is false before Run has started.
func (s *Scheduler) NextFiring(plan string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.upcoming[plan]
	return t, ok
}

func (s *Scheduler) setUpcoming(p pending) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.upcoming == nil {
		s.upcoming = map[string]time.Time{}
	}
	s.upcoming[p.plan.Name] = p.fireAt
}

type pending struct {
	plan   Plan
	slot   time.Time // cron time
	fireAt time.Time // slot, or the window's next start
}

// Run fires due slots until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	now := s.Clock.Now()
	queue := make([]pending, 0, len(s.Plans))
	for _, p := range s.Plans {
		queue = append(queue, next(p, now))
		s.setUpcoming(queue[len(queue)-1])
	}
	for len(queue) > 0 {
		sort.Slice(queue, func(i, j int) bool { return queue[i].fireAt.Before(queue[j].fireAt) })
		head := queue[0]
		if wait := head.fireAt.Sub(s.Clock.Now()); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-s.Clock.After(wait):
			}
		}
		if ctx.Err() != nil {
			return
		}
		s.Fire(ctx, Firing{Plan: head.plan.Name, Slot: head.slot.UTC()})
		queue[0] = next(head.plan, head.slot)
		s.setUpcoming(queue[0])
	}
	<-ctx.Done()
}

func next(p Plan, after time.Time) pending {
	slot := p.Schedule.Next(after)
	fireAt := slot
	if p.Window != nil && !p.Window.Contains(slot) {
		fireAt = p.Window.NextStart(slot)
	}
	return pending{plan: p, slot: slot, fireAt: fireAt}
}

// LastSlot returns the latest slot at or before now, looking back no further
// than horizon; ok is false when there is none in that span. The start-up
// pass uses it to name the rotation of a secret that missed its slot.
func LastSlot(s cron.Schedule, now time.Time, horizon time.Duration) (time.Time, bool) {
	t := now.Add(-horizon)
	var last time.Time
	for i := 0; i < 100000; i++ {
		n := s.Next(t)
		if n.IsZero() || n.After(now) {
			break
		}
		last, t = n, n
	}
	return last, !last.IsZero()
}
