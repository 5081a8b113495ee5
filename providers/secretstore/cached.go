package secretstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// CachedSecrets reads the secret of one stored credential at some stages
// and keeps what it read for a while: the one reader behind the rotator's
// own management key and the security receiver's signing secrets, which
// both must follow the credential's rotation without reading the store on
// every request.
type CachedSecrets struct {
	store  Store
	name   string
	stages []string
	ttl    time.Duration
	clock  clock.Clock

	mu      sync.Mutex
	held    []secret.Value
	fetched time.Time
}

// NewCachedSecrets reads name at stages, in that order: the first must
// exist, the others are left out while they do not. What it read is kept
// for ttl.
func NewCachedSecrets(store Store, name string, ttl time.Duration, clk clock.Clock, stages ...string) *CachedSecrets {
	return &CachedSecrets{store: store, name: name, stages: stages, ttl: ttl, clock: clk}
}

// Name is the stored secret's name.
func (c *CachedSecrets) Name() string { return c.name }

// Secrets returns the credential's secret at each stage it holds, reading
// the store when fresh is asked for or what it holds is older than the ttl.
func (c *CachedSecrets) Secrets(ctx context.Context, fresh bool) ([]secret.Value, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	if !fresh && len(c.held) > 0 && now.Sub(c.fetched) < c.ttl {
		return c.held, nil
	}
	var held []secret.Value
	for i, stage := range c.stages {
		v, err := c.store.Get(ctx, c.name, ByStage(stage))
		if i > 0 && errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			if i > 0 {
				return nil, fmt.Errorf("%s: %w", stage, err)
			}
			return nil, err
		}
		cred, err := DecodeCredential(c.name, v.Value)
		if err != nil {
			return nil, err
		}
		held = append(held, cred.Secret)
	}
	c.held, c.fetched = held, now
	return held, nil
}

// Invalidate drops what is held; the next Secrets reads the store.
func (c *CachedSecrets) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = nil
}
