package secretsmanager

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// roleStore is a store on moto that assumes roleARN; moto maps the assumed
// role's credentials to the role's account (MOTO.md), so one moto serves
// several accounts.
func roleStore(t *testing.T, q *Quotas, roleARN string, l Limits, opts ...Option) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{
		Region: motoserver.Region, Endpoint: moto.Endpoint(t), Credentials: motoCredentials(), RoleARN: roleARN,
		MaxAttempts: 2, Limits: l,
	}, append([]Option{WithQuotas(q)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// seedIn creates a secret in the role's account (CreateSecret is not the
// store's: the rotator never calls it) and returns its ARN.
func seedIn(t *testing.T, roleARN, name string) string {
	t.Helper()
	ep := moto.Endpoint(t)
	stsClient := sts.New(sts.Options{Region: motoserver.Region, BaseEndpoint: aws.String(ep), Credentials: motoCredentials()})
	client := sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(ep),
		Credentials: aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(stsClient, roleARN))})
	out, err := client.CreateSecret(context.Background(), &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("initial")})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ARN)
}

func putPending(ctx context.Context, s *Store, name string, i int) error {
	return s.PutPending(ctx, name, strings.Repeat("0", 31)+string(rune('a'+i)), secret.New("v"))
}

const (
	roleA1 = "arn:aws:iam::222222222222:role/rotator-sandbox"
	roleA2 = "arn:aws:iam::222222222222:role/rotator-staging"
	roleB  = "arn:aws:iam::333333333333:role/rotator-production"
)

// Two config entries whose roles are in one account share its one write
// quota; a third in another account has its own: while the first account's
// quota is spent, the other account writes at once.
func TestStoresInOneAccountShareAWriteQuotaOthersDoNot(t *testing.T) {
	ctx := context.Background()
	q := NewQuotas()
	// Two writes' worth now, then one a thousand seconds later: a spent
	// quota stays spent for the length of the test.
	l := Limits{WriteRate: 0.001, WriteBurst: 2}
	a1, a2, b := roleStore(t, q, roleA1, l), roleStore(t, q, roleA2, l), roleStore(t, q, roleB, l)

	wantA := QuotaKey{Account: "222222222222", Region: motoserver.Region}
	wantB := QuotaKey{Account: "333333333333", Region: motoserver.Region}
	if a1.Quota() != wantA || a2.Quota() != wantA || b.Quota() != wantB {
		t.Fatalf("quotas = %v, %v, %v; want %v, %v, %v", a1.Quota(), a2.Quota(), b.Quota(), wantA, wantA, wantB)
	}
	if got := len(q.Keys()); got != 2 {
		t.Errorf("Quotas holds %d keys (%v), want 2: one per account and region", got, q.Keys())
	}

	nameA, nameB := unique("quota-a"), unique("quota-b")
	seedIn(t, roleA1, nameA)
	if arn := seedIn(t, roleB, nameB); !strings.Contains(arn, ":333333333333:") {
		t.Fatalf("secret made with %s has ARN %s: moto did not map the role to its account", roleB, arn)
	}

	// The first entry spends the account's two writes.
	for i := range 2 {
		if err := putPending(ctx, a1, nameA, i); err != nil {
			t.Fatalf("write %d through %s: %v", i, roleA1, err)
		}
	}
	// The second entry of the same account finds the quota spent: its
	// write would wait ~1,000 s, so it gives up at its deadline unsent.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := putPending(short, a2, nameA, 2)
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("third write in account 222222222222 (through %s) = %v, want it held by the shared rate limit", roleA2, err)
	}
	got, err := a2.Describe(ctx, nameA)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Versions); n != 3 { // the initial version and the two puts
		t.Errorf("%s has %d versions, want 3: the held write must not have been sent", nameA, n)
	}
	// The other account has its own quota.
	for i := range 2 {
		if err := putPending(short, b, nameB, i); err != nil {
			t.Fatalf("write %d in account 333333333333 while 222222222222's quota is spent: %v", i, err)
		}
	}
}

// When two entries of one account ask for different rates, the lower holds
// for both: the quota is the account's.
func TestSharedQuotaTakesTheLowerRate(t *testing.T) {
	q := NewQuotas()
	k := QuotaKey{Account: "222222222222", Region: "eu-west-1"}
	first := q.limiters(k, Limits{WriteRate: 50})
	second := q.limiters(k, Limits{WriteRate: 20, WriteBurst: 5})
	if first != second {
		t.Fatal("two stores of one account and region got different limiters")
	}
	if first.write.lim.Limit() != 20 || first.write.lim.Burst() != 5 {
		t.Errorf("shared write limit = %v/s burst %d, want 20/s burst 5", first.write.lim.Limit(), first.write.lim.Burst())
	}
	other := q.limiters(QuotaKey{Account: "222222222222", Region: "eu-central-1"}, Limits{})
	if other == first {
		t.Error("another region shares the first region's limiters")
	}
}

// An account whose writes hang (a slow region, a throttled account whose
// retries back off) does not hold up another account: all of its writes
// land while the first account's write is still in flight.
func TestSlowAccountDoesNotStallAnother(t *testing.T) {
	ctx := context.Background()
	q := NewQuotas()
	held, release := make(chan struct{}, 1), make(chan struct{})
	hold := func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("holdWrites",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				if middleware.GetOperationName(ctx) == "PutSecretValue" {
					held <- struct{}{}
					<-release
				}
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	}
	// One write in each account, then none for ~1,000 s: were the limiter
	// shared, the held write would have spent the other account's write.
	l := Limits{WriteRate: 0.001, WriteBurst: 1}
	a := roleStore(t, q, roleA1, l, WithAPIOptions(hold))
	b := roleStore(t, q, roleB, l)
	nameA, nameB := unique("slow-a"), unique("free-b")
	seedIn(t, roleA1, nameA)
	seedIn(t, roleB, nameB)

	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	slow := make(chan error, 1)
	go func() { slow <- putPending(short, a, nameA, 0) }()
	select {
	case <-held: // the first account's write is in flight, its quota spent
	case err := <-slow:
		t.Fatalf("the first account's write ended before it was sent: %v", err)
	}
	if err := putPending(short, b, nameB, 0); err != nil {
		close(release)
		t.Fatalf("write in account 333333333333 while 222222222222 hangs: %v", err)
	}
	select {
	case err := <-slow:
		t.Fatalf("the held write ended (%v) before it was released: the test proves nothing", err)
	default:
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("the held write, released: %v", err)
	}
}
