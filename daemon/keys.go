package daemon

import (
	"context"
	"fmt"

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
	cached *secretstore.CachedSecrets
}

func newStoreSigningSecrets(store secretstore.Store, name string, clk clock.Clock) *storeSigningSecrets {
	return &storeSigningSecrets{secretstore.NewCachedSecrets(store, name, signingSecretsTTL, clk, secretstore.StageCurrent, secretstore.StagePending)}
}

func (s *storeSigningSecrets) SigningSecrets(ctx context.Context, fresh bool) ([]secret.Value, error) {
	held, err := s.cached.Secrets(ctx, fresh)
	if err != nil {
		return nil, fmt.Errorf("security webhook secret %q: %w", s.cached.Name(), err)
	}
	return held, nil
}

// Emit drops the cached secrets when a lifecycle step changed the secret.
func (s *storeSigningSecrets) Emit(_ context.Context, e events.Event) {
	if e.Secret != s.cached.Name() || e.Outcome != events.OutcomeSucceeded {
		return
	}
	switch e.Step {
	case events.StepCreate, events.StepPromote, events.StepRetire, events.StepRotation:
		s.cached.Invalidate()
	}
}
