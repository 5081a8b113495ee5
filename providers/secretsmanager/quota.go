package secretsmanager

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/time/rate"
)

// QuotaKey names one Secrets Manager quota. AWS applies its request rates
// per account and region, whichever config entry or role a client comes
// through, so that is what the client-side limiters are keyed by.
type QuotaKey struct {
	Account, Region string
}

func (k QuotaKey) String() string { return k.Account + "/" + k.Region }

// Quotas hands out one pair of rate limiters per account and region: every
// store that reaches the same account and region shares them (one write
// quota), and each other account and region has its own, so a batch across
// accounts runs at the sum of their quotas and a throttled account waits
// alone. Safe for concurrent use.
type Quotas struct {
	mu sync.Mutex
	m  map[QuotaKey]*quota
}

type quota struct {
	read, write *lane
}

// NewQuotas returns an empty set; share one among the stores of a process.
func NewQuotas() *Quotas { return &Quotas{m: map[QuotaKey]*quota{}} }

// limiters returns the key's limiters, made with l on first use. When two
// stores of one account and region ask for different rates, the lower one
// holds for both: the quota is AWS's, not the config entry's.
func (q *Quotas) limiters(key QuotaKey, l Limits) *quota {
	l = l.withDefaults()
	q.mu.Lock()
	defer q.mu.Unlock()
	if got, ok := q.m[key]; ok {
		lower(got.read.lim, l.ReadRate, l.ReadBurst)
		lower(got.write.lim, l.WriteRate, l.WriteBurst)
		return got
	}
	got := &quota{
		read:  newLane(l.ReadRate, l.ReadBurst),
		write: newLane(l.WriteRate, l.WriteBurst),
	}
	q.m[key] = got
	return got
}

func lower(lim *rate.Limiter, r float64, burst int) {
	if rate.Limit(r) < lim.Limit() {
		lim.SetLimit(rate.Limit(r))
	}
	if burst < lim.Burst() {
		lim.SetBurst(burst)
	}
}

// Keys lists the accounts and regions handed out so far (metrics, tests).
func (q *Quotas) Keys() []QuotaKey {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := make([]QuotaKey, 0, len(q.m))
	for k := range q.m {
		out = append(out, k)
	}
	return out
}

// WithQuotas makes New key the store's limiters by the account and region
// its client actually reaches, shared through q. New then asks STS
// GetCallerIdentity with the store's own credentials (the assumed role's,
// when there is one) which account that is.
func WithQuotas(q *Quotas) Option { return func(o *options) { o.quotas = q } }

// callerAccount asks STS which account the credentials act in.
func callerAccount(ctx context.Context, client *sts.Client) (string, error) {
	out, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("secretsmanager: find the account these credentials reach (sts:GetCallerIdentity): %w", err)
	}
	account := aws.ToString(out.Account)
	if account == "" {
		return "", errors.New("secretsmanager: sts:GetCallerIdentity named no account")
	}
	return account, nil
}

// Quota is the account and region whose quota the store's calls count
// against; zero for a store built without WithQuotas.
func (s *Store) Quota() QuotaKey { return s.quota }
