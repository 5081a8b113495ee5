package daemon

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func currentCredential(ctx context.Context, store secretstore.Store, name string) (secretstore.Credential, error) {
	v, err := store.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		return secretstore.Credential{}, err
	}
	return secretstore.DecodeCredential(name, v.Value)
}

// storeSigningSecrets gives the security webhook receiver the secrets of its
// endpoint: AWSCURRENT and, while that secret is itself being rotated,
// AWSPENDING, so a rotation of the receiver's own secret breaks nothing.
// They are cached for ttl and dropped as soon as the rotator changes that
// secret (it is an events.Sink), so forged deliveries cost no store reads.
type storeSigningSecrets struct {
	store  secretstore.Store
	secret string
	clock  clock.Clock
	ttl    time.Duration

	mu      sync.Mutex
	held    []secret.Value
	fetched time.Time
}

func (s *storeSigningSecrets) SigningSecrets(ctx context.Context, fresh bool) ([]secret.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fresh && len(s.held) > 0 && s.clock.Now().Sub(s.fetched) < s.ttl {
		return s.held, nil
	}
	var held []secret.Value
	for _, stage := range []string{secretstore.StageCurrent, secretstore.StagePending} {
		v, err := s.store.Get(ctx, s.secret, secretstore.ByStage(stage))
		if errors.Is(err, secretstore.ErrNotFound) && stage == secretstore.StagePending {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("security webhook secret %q (%s): %w", s.secret, stage, err)
		}
		c, err := secretstore.DecodeCredential(s.secret, v.Value)
		if err != nil {
			return nil, err
		}
		held = append(held, c.Secret)
	}
	s.held, s.fetched = held, s.clock.Now()
	return held, nil
}

// Emit drops the cached secrets when a lifecycle step changed the secret.
func (s *storeSigningSecrets) Emit(_ context.Context, e events.Event) {
	if e.Secret != s.secret || e.Outcome != events.OutcomeSucceeded {
		return
	}
	switch e.Step {
	case events.StepCreate, events.StepPromote, events.StepRetire, events.StepRotation:
		s.mu.Lock()
		s.held = nil
		s.mu.Unlock()
	}
}
