package consumer

import (
	"context"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
)

// MemoryDeduper is a Deduper for one process: it remembers idempotency keys
// for Window (LakiConnect redelivers for well under a day). Safe for
// concurrent use.
type MemoryDeduper struct {
	Window time.Duration
	Clock  clock.Clock

	mu   sync.Mutex
	seen map[string]time.Time
}

// NewMemoryDeduper remembers keys for window on clk (nil: the system clock).
func NewMemoryDeduper(window time.Duration, clk clock.Clock) *MemoryDeduper {
	if clk == nil {
		clk = clock.Real{}
	}
	return &MemoryDeduper{Window: window, Clock: clk, seen: map[string]time.Time{}}
}

// Seen reports whether key was remembered within the window.
func (d *MemoryDeduper) Seen(_ context.Context, key string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.seen[key]
	return ok && d.Clock.Now().Sub(at) < d.Window, nil
}

// Remember records key, and forgets keys older than the window.
func (d *MemoryDeduper) Remember(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.Clock.Now()
	for k, at := range d.seen {
		if now.Sub(at) >= d.Window {
			delete(d.seen, k)
		}
	}
	d.seen[key] = now
	return nil
}
