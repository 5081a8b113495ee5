package slackcmd

import (
	"sync"
	"time"
)

// replayGuard remembers the signatures of verified requests for as long as
// their timestamp is acceptable: a captured request sent again within that
// window is refused. Only verified requests are remembered, so the map grows
// with Slack's genuine traffic, not with an attacker's.
type replayGuard struct {
	mu   sync.Mutex
	seen map[string]time.Time // signature → when first seen
}

// first records sig and reports whether it was new.
func (g *replayGuard) first(sig string, now time.Time, window time.Duration) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]time.Time{}
	}
	for s, at := range g.seen {
		// Twice the window: a request may be stamped up to one window in
		// the future and still be accepted one window later.
		if now.Sub(at) > 2*window {
			delete(g.seen, s)
		}
	}
	if _, ok := g.seen[sig]; ok {
		return false
	}
	g.seen[sig] = now
	return true
}
