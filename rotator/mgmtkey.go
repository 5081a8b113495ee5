package rotator

import (
	"context"
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
	cached *secretstore.CachedSecrets
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
	return &ManagementKeySource{cached: secretstore.NewCachedSecrets(store, secretName, ttl, clk, secretstore.StageCurrent)}
}

// Key returns the current management key.
func (s *ManagementKeySource) Key(ctx context.Context) (secret.Value, error) {
	held, err := s.cached.Secrets(ctx, false)
	if err != nil {
		return secret.Value{}, err
	}
	return held[0], nil
}

// Invalidate drops the cached key; the next Key reads the store.
func (s *ManagementKeySource) Invalidate() { s.cached.Invalidate() }
