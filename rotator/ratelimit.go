package rotator

import (
	"context"
	"iter"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// limitedIssuer spaces the calls of one management key so that a large batch
// stays under LakiConnect's per-key rate limit instead of meeting 429s. The
// limiter reads the injected clock and waits on it.
type limitedIssuer struct {
	next Issuer
	lim  *rate.Limiter
	clk  clock.Clock
}

func (l *limitedIssuer) wait(ctx context.Context) error {
	now := l.clk.Now()
	r := l.lim.ReserveN(now, 1)
	if !r.OK() {
		return context.DeadlineExceeded
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	select {
	case <-l.clk.After(d):
		return nil
	case <-ctx.Done():
		r.CancelAt(l.clk.Now())
		return ctx.Err()
	}
}

func (l *limitedIssuer) WhoAmIWith(ctx context.Context, key secret.Value) (lakiconnect.WhoAmI, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.WhoAmI{}, err
	}
	return l.next.WhoAmIWith(ctx, key)
}

func (l *limitedIssuer) WhoAmI(ctx context.Context) (lakiconnect.WhoAmI, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.WhoAmI{}, err
	}
	return l.next.WhoAmI(ctx)
}

func (l *limitedIssuer) CreateAPIKey(ctx context.Context, idem string, req lakiconnect.CreateAPIKeyRequest) (lakiconnect.APIKeyWithSecret, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.APIKeyWithSecret{}, err
	}
	return l.next.CreateAPIKey(ctx, idem, req)
}

func (l *limitedIssuer) GetAPIKey(ctx context.Context, keyID string) (lakiconnect.APIKey, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.APIKey{}, err
	}
	return l.next.GetAPIKey(ctx, keyID)
}

// ListAPIKeys waits once per page of the largest size.
func (l *limitedIssuer) ListAPIKeys(ctx context.Context, status lakiconnect.KeyStatus) iter.Seq2[lakiconnect.APIKey, error] {
	return func(yield func(lakiconnect.APIKey, error) bool) {
		n := 0
		for k, err := range l.next.ListAPIKeys(ctx, status) {
			if n%lakiconnect.MaxPageLimit == 0 {
				if werr := l.wait(ctx); werr != nil {
					yield(lakiconnect.APIKey{}, werr)
					return
				}
			}
			n++
			if !yield(k, err) {
				return
			}
		}
	}
}

func (l *limitedIssuer) ExpireAPIKey(ctx context.Context, idem, keyID string, at *time.Time) (lakiconnect.APIKey, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.APIKey{}, err
	}
	return l.next.ExpireAPIKey(ctx, idem, keyID, at)
}

func (l *limitedIssuer) RevokeAPIKey(ctx context.Context, idem, keyID string) (lakiconnect.APIKey, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.APIKey{}, err
	}
	return l.next.RevokeAPIKey(ctx, idem, keyID)
}

func (l *limitedIssuer) GetWebhookEndpoint(ctx context.Context, id string) (lakiconnect.WebhookEndpoint, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.WebhookEndpoint{}, err
	}
	return l.next.GetWebhookEndpoint(ctx, id)
}

func (l *limitedIssuer) CreateWebhookSecret(ctx context.Context, idem, endpointID string) (lakiconnect.WebhookSecretWithValue, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.WebhookSecretWithValue{}, err
	}
	return l.next.CreateWebhookSecret(ctx, idem, endpointID)
}

func (l *limitedIssuer) ExpireWebhookSecret(ctx context.Context, idem, endpointID, secretID string, at *time.Time) (lakiconnect.WebhookEndpoint, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.WebhookEndpoint{}, err
	}
	return l.next.ExpireWebhookSecret(ctx, idem, endpointID, secretID, at)
}

func (l *limitedIssuer) TestWebhookSignature(ctx context.Context, idem, endpointID string) (lakiconnect.TestSignature, error) {
	if err := l.wait(ctx); err != nil {
		return lakiconnect.TestSignature{}, err
	}
	return l.next.TestWebhookSignature(ctx, idem, endpointID)
}
