package rotator

import (
	"context"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// ManagementKeySource reads the rotator's own management key from its
// secret's AWSCURRENT and caches it for a short while. Because the key is
// always read from the store, the rotator picks up a new management key as
// soon as its rotation promotes it (the engine also invalidates the cache
// right then), and never locks itself out: the old key keeps working
// through its grace while caches elsewhere expire.
type ManagementKeySource struct {
	store secretstore.Store
	name  string
	ttl   time.Duration
	clk   clock.Clock

	mu      sync.Mutex
	key     secret.Value
	fetched time.Time
}

// NewManagementKeySource reads secretName's AWSCURRENT, caching it for ttl
// (0: one minute).
func NewManagementKeySource(store secretstore.Store, secretName string, ttl time.Duration, clk clock.Clock) *ManagementKeySource {
	if ttl <= 0 {
		ttl = time.Minute
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &ManagementKeySource{store: store, name: secretName, ttl: ttl, clk: clk}
}

// Key returns the current management key.
func (s *ManagementKeySource) Key(ctx context.Context) (secret.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clk.Now()
	if !s.key.IsZero() && now.Sub(s.fetched) < s.ttl {
		return s.key, nil
	}
	v, err := s.store.Get(ctx, s.name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		return secret.Value{}, err
	}
	c, err := secretstore.DecodeCredential(s.name, v.Value)
	if err != nil {
		return secret.Value{}, err
	}
	s.key, s.fetched = c.Secret, now
	return s.key, nil
}

// Invalidate drops the cached key; the next Key reads the store.
func (s *ManagementKeySource) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = secret.Value{}
}
