package ha_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/ha"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

var moto motoserver.Shared

func TestMain(m *testing.M) { os.Exit(moto.Run(m)) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// table makes a fresh lease table in moto for one test.
func table(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	c := dynamodb.New(dynamodb.Options{
		Region: motoserver.Region, BaseEndpoint: aws.String(moto.Endpoint(t)),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, ""),
	})
	name := "lease-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	require.NoError(t, ha.CreateTable(context.Background(), c, name))
	return c, name
}

func lease(t *testing.T, c *dynamodb.Client, tbl, holder string, clk clock.Clock) *ha.Lease {
	t.Helper()
	l, err := ha.New(ha.Options{Client: c, Table: tbl, Holder: holder, Clock: clk})
	require.NoError(t, err)
	return l
}

func acquire(t *testing.T, l *ha.Lease) bool {
	t.Helper()
	ok, err := l.TryAcquire(context.Background())
	require.NoError(t, err)
	return ok
}

func TestOneHolderAtATime(t *testing.T) {
	c, tbl := table(t)
	clk := clock.NewFake(t0)
	a, b := lease(t, c, tbl, "a", clk), lease(t, c, tbl, "b", clk)
	require.True(t, acquire(t, a))
	require.False(t, acquire(t, b), "a second replica must not take a held lease")
	_, held := b.Held()
	require.False(t, held)
	tok, held := a.Held()
	require.True(t, held)
	require.Equal(t, t0.UnixMilli(), tok, "a new lease item starts its token at the creating clock's milliseconds")
}

// The default arithmetic (package doc): hold 10 s, wait 13 s, at TTL 15 s.
var (
	defaultHold = ha.DefaultTTL - ha.DefaultTTL/3
	defaultWait = ha.DefaultTTL - 2*(ha.DefaultTTL/15)
)

func TestUnrenewedLeaseExpiresAfterTheWait(t *testing.T) {
	c, tbl := table(t)
	clk := clock.NewFake(t0)
	a, b := lease(t, c, tbl, "a", clk), lease(t, c, tbl, "b", clk)
	require.Equal(t, defaultHold, a.Hold())
	require.Equal(t, defaultWait, b.Wait())
	require.True(t, acquire(t, a))
	require.False(t, acquire(t, b)) // b starts counting from this read
	clk.Advance(defaultWait - time.Millisecond)
	require.False(t, acquire(t, b), "taken before the wait had passed")
	clk.Advance(time.Millisecond)
	require.True(t, acquire(t, b), "not taken once the wait passed without a renewal")
	ta, _ := a.Held()
	tb, _ := b.Held()
	require.Zero(t, ta, "the old holder's own clock says its holding ended (margin before the TTL)")
	require.Equal(t, t0.UnixMilli()+1, tb, "a change of holder raises the token by one")
}

func TestRenewalKeepsTheLease(t *testing.T) {
	c, tbl := table(t)
	clk := clock.NewFake(t0)
	a, b := lease(t, c, tbl, "a", clk), lease(t, c, tbl, "b", clk)
	require.True(t, acquire(t, a))
	for range 20 { // a minute of renewals every TTL/5
		require.False(t, acquire(t, b))
		clk.Advance(ha.DefaultTTL / 5)
		require.NoError(t, a.Renew(context.Background()))
		_, held := a.Held()
		require.True(t, held)
	}
	require.False(t, acquire(t, b), "a renewed lease was taken")
}

// A holder paused (a GC pause, a frozen VM, a partition) past its margin
// has stopped starting work before any other replica can take the lease;
// when it resumes, its renewal and its fenced write are refused.
func TestPausedHolderStopsBeforeAnotherHoldsAndIsFencedAfter(t *testing.T) {
	c, tbl := table(t)
	clk := clock.NewFake(t0)
	a, b := lease(t, c, tbl, "a", clk), lease(t, c, tbl, "b", clk)
	require.True(t, acquire(t, a))
	oldToken, _ := a.Held()
	require.False(t, acquire(t, b))
	// a is paused; time runs on. Second by second, a's view ends strictly
	// before b can take the lease.
	aStopped, bTook := time.Duration(-1), time.Duration(-1)
	for s := time.Second; s <= 20*time.Second; s += time.Second {
		clk.Advance(time.Second)
		if _, held := a.Held(); !held && aStopped < 0 {
			aStopped = s
		}
		if bTook < 0 && acquire(t, b) {
			bTook = s
		}
	}
	require.Equal(t, defaultHold, aStopped, "the holder stops at TTL minus the margin")
	require.Equal(t, defaultWait, bTook, "the contender takes the lease TTL - 2·poll after it saw the last renewal")
	require.GreaterOrEqual(t, bTook-aStopped, 3*time.Second, "the holder stops at least margin - 2·poll before another holds")

	// a wakes up: its renewal and its fencing check are refused.
	require.ErrorIs(t, a.Renew(context.Background()), ha.ErrFenced)
	require.ErrorIs(t, a.Fence(context.Background(), oldToken), ha.ErrFenced, "the stale holder's write was accepted")
	newToken, held := b.Held()
	require.True(t, held)
	require.Greater(t, newToken, oldToken)
	require.NoError(t, b.Fence(context.Background(), newToken))
}

// Clocks a few seconds apart change nothing: no replica compares its clock
// with another's, each counts durations on its own. The holder's view
// ends 3 s before the contender may take the lease, whichever clock is ahead.
func TestClockSkewBetweenReplicasDoesNotShortenTheLease(t *testing.T) {
	for _, skew := range []time.Duration{5 * time.Second, -5 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			c, tbl := table(t)
			clkA, clkB := clock.NewFake(t0), clock.NewFake(t0.Add(skew))
			a, b := lease(t, c, tbl, "a", clkA), lease(t, c, tbl, "b", clkB)
			require.True(t, acquire(t, a))
			require.False(t, acquire(t, b))
			aStopped := time.Duration(-1)
			for s := 250 * time.Millisecond; s < defaultWait; s += 250 * time.Millisecond {
				clkA.Advance(250 * time.Millisecond)
				clkB.Advance(250 * time.Millisecond)
				if _, held := a.Held(); !held && aStopped < 0 {
					aStopped = s
				}
				require.False(t, acquire(t, b), "taken %s after the last renewal with a skew of %s", s, skew)
			}
			clkA.Advance(250 * time.Millisecond)
			clkB.Advance(250 * time.Millisecond)
			require.True(t, acquire(t, b))
			require.Equal(t, defaultHold, aStopped, "the holder's view ended on its own clock, not the other's")
			_, held := a.Held()
			require.False(t, held)
		})
	}
}

// A holder killed right after its last renewal is taken over by a
// contender that runs its usual loop (Run, with its own clock) at most one
// TTL after that renewal, wherever the renewal falls between the
// contender's reads; and the holder's own view ended at least margin -
// 2·poll (3 s) before. The clocks are fakes moved in 50 ms steps, each
// replica's offset by a few seconds from the other's; DynamoDB is moto.
func TestKilledHolderIsTakenOverWithinTheTTLOfItsLastRenewal(t *testing.T) {
	const step = 50 * time.Millisecond
	poll := ha.DefaultTTL / 15
	for _, phase := range []time.Duration{0, step, poll / 2, poll - step} {
		t.Run("renewal "+phase.String()+" after a read", func(t *testing.T) {
			c, tbl := table(t)
			clkA, clkB := clock.NewFake(t0), clock.NewFake(t0.Add(-3*time.Second))
			a, b := lease(t, c, tbl, "a", clkA), lease(t, c, tbl, "b", clkB)
			require.True(t, acquire(t, a))
			var elapsed time.Duration // since a took the lease, the same on both clocks
			advance := func(d time.Duration) {
				for end := elapsed + d; elapsed < end; elapsed += step {
					clkA.Advance(step)
					clkB.Advance(step)
					// b's loop has read the lease and gone back to sleep.
					require.Eventually(t, func() bool { return clkB.Waiters() == 1 }, 10*time.Second, time.Millisecond)
				}
			}
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { stop(); wg.Wait() }()
			wg.Go(func() { b.Run(ctx, func(ctx context.Context, _ int64) { <-ctx.Done() }) })
			require.Eventually(t, func() bool { return clkB.Waiters() == 1 }, 10*time.Second, time.Millisecond)
			// a renews twice on its schedule, the last one phase after one
			// of b's reads (b reads every poll from the start), and dies.
			advance(ha.DefaultTTL / 5)
			require.NoError(t, a.Renew(context.Background()))
			advance(2*poll + phase)
			require.NoError(t, a.Renew(context.Background()))
			lastRenewal := elapsed
			aStopped, bTook := time.Duration(-1), time.Duration(-1)
			for bTook < 0 && elapsed < lastRenewal+2*ha.DefaultTTL {
				advance(step)
				if _, held := a.Held(); !held && aStopped < 0 {
					aStopped = elapsed
				}
				if _, held := b.Held(); held {
					bTook = elapsed
				}
			}
			require.Positive(t, bTook, "b never took the lease")
			t.Logf("holder stopped %s and the lease was taken %s after the last renewal", aStopped-lastRenewal, bTook-lastRenewal)
			require.LessOrEqual(t, bTook-lastRenewal, ha.DefaultTTL, "taken over later than one TTL after the last renewal")
			require.GreaterOrEqual(t, bTook-lastRenewal, defaultWait, "taken over before the wait")
			require.Equal(t, defaultHold, aStopped-lastRenewal)
			require.GreaterOrEqual(t, bTook-aStopped, 3*time.Second)
		})
	}
}

func TestOptionsThatWouldLetTwoHoldAreRefused(t *testing.T) {
	_, err := ha.New(ha.Options{Client: &dynamodb.Client{}, Table: "t", TTL: 15 * time.Second, Poll: 2 * time.Second, Margin: 4 * time.Second})
	require.ErrorContains(t, err, "must exceed two polls")
}

func TestStaleTokenIsFencedEvenAfterTheLeaseReturns(t *testing.T) {
	c, tbl := table(t)
	clk := clock.NewFake(t0)
	a, b := lease(t, c, tbl, "a", clk), lease(t, c, tbl, "b", clk)
	ctx := context.Background()
	require.True(t, acquire(t, a))
	first, _ := a.Held()
	require.NoError(t, a.Release(ctx))
	require.True(t, acquire(t, b), "a released lease is free at once")
	second, _ := b.Held()
	require.NoError(t, b.Release(ctx))
	require.True(t, acquire(t, a))
	third, _ := a.Held()
	require.Less(t, first, second)
	require.Less(t, second, third)
	// a holds again, but a write under its first token is still stale.
	require.ErrorIs(t, a.Fence(ctx, first), ha.ErrFenced)
	require.ErrorIs(t, b.Fence(ctx, second), ha.ErrFenced)
	require.NoError(t, a.Fence(ctx, third))
}

func TestMismatchedRenewAndMarginAreRefused(t *testing.T) {
	_, err := ha.New(ha.Options{Client: &dynamodb.Client{}, Table: "t", TTL: 3 * time.Second, Renew: 2 * time.Second, Margin: time.Second})
	require.ErrorContains(t, err, "shorter than the lease TTL")
}

// Run on the real clock with a short TTL: one lead at a time; when the
// holder stops, the other replica leads.
func TestRunLeadsOneAtATimeAndHandsOver(t *testing.T) {
	c, tbl := table(t)
	var leading, maxLeading, leads atomic.Int32
	lead := func(ctx context.Context, _ int64) {
		n := leading.Add(1)
		leads.Add(1)
		for {
			m := maxLeading.Load()
			if n <= m || maxLeading.CompareAndSwap(m, n) {
				break
			}
		}
		<-ctx.Done()
		leading.Add(-1)
	}
	mk := func(name string) *ha.Lease {
		l, err := ha.New(ha.Options{Client: c, Table: tbl, Holder: name, TTL: 1500 * time.Millisecond})
		require.NoError(t, err)
		return l
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	a, b := mk("a"), mk("b")
	wg.Go(func() { a.Run(ctxA, lead) })
	require.Eventually(t, func() bool { _, h := a.Held(); return h }, 5*time.Second, 10*time.Millisecond)
	wg.Go(func() { b.Run(ctxB, lead) })
	time.Sleep(2 * time.Second) // longer than the TTL: b must not lead meanwhile
	_, bHeld := b.Held()
	require.False(t, bHeld)
	stopA()
	require.Eventually(t, func() bool { _, h := b.Held(); return h }, 5*time.Second, 10*time.Millisecond)
	stopB()
	wg.Wait()
	require.Equal(t, int32(1), maxLeading.Load(), "two replicas led at once")
	require.Equal(t, int32(2), leads.Load())
}

// A lease item whose numbers are not whole (written by hand, or by other
// code) is refused by name, not read as zeros.
func TestLeaseItemWithANumberNotWholeIsRefused(t *testing.T) {
	c, tbl := table(t)
	_, err := c.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: map[string]types.AttributeValue{
		"name": &types.AttributeValueMemberS{Value: ha.DefaultName}, "holder": &types.AttributeValueMemberS{Value: "by-hand"},
		"token": &types.AttributeValueMemberN{Value: "7.5"}, "renewal": &types.AttributeValueMemberS{Value: "r1"},
	}})
	require.NoError(t, err)
	ok, err := lease(t, c, tbl, "a", clock.NewFake(t0)).TryAcquire(context.Background())
	require.False(t, ok)
	require.EqualError(t, err, `ha: lease "lakirotator" in table `+tbl+`: token "7.5" is not a whole number`)
}
