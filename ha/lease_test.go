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

func TestUnrenewedLeaseExpiresAfterTheTTL(t *testing.T) {
	c, tbl := table(t)
	clk := clock.NewFake(t0)
	a, b := lease(t, c, tbl, "a", clk), lease(t, c, tbl, "b", clk)
	require.True(t, acquire(t, a))
	require.False(t, acquire(t, b)) // b starts counting from this read
	clk.Advance(ha.DefaultTTL - time.Second)
	require.False(t, acquire(t, b), "taken before the TTL had passed")
	clk.Advance(time.Second)
	require.True(t, acquire(t, b), "not taken once the TTL passed without a renewal")
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
	for range 12 { // a minute of renewals every TTL/3
		require.False(t, acquire(t, b))
		clk.Advance(ha.DefaultTTL / 3)
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
	require.Equal(t, ha.DefaultTTL-ha.DefaultTTL/5, aStopped, "the holder stops at TTL minus the margin")
	require.Equal(t, ha.DefaultTTL, bTook, "the contender takes the lease one TTL after it saw the last renewal")
	require.Less(t, aStopped, bTook)

	// a wakes up: its renewal and its fencing check are refused.
	require.ErrorIs(t, a.Renew(context.Background()), ha.ErrFenced)
	require.ErrorIs(t, a.Fence(context.Background(), oldToken), ha.ErrFenced, "the stale holder's write was accepted")
	newToken, held := b.Held()
	require.True(t, held)
	require.Greater(t, newToken, oldToken)
	require.NoError(t, b.Fence(context.Background(), newToken))
}

// Clocks a few seconds apart change nothing: no replica compares its clock
// with another's, each counts durations on its own.
func TestClockSkewBetweenReplicasDoesNotShortenTheLease(t *testing.T) {
	for _, skew := range []time.Duration{5 * time.Second, -5 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			c, tbl := table(t)
			clkA, clkB := clock.NewFake(t0), clock.NewFake(t0.Add(skew))
			a, b := lease(t, c, tbl, "a", clkA), lease(t, c, tbl, "b", clkB)
			require.True(t, acquire(t, a))
			require.False(t, acquire(t, b))
			for s := time.Second; s < ha.DefaultTTL; s += time.Second {
				clkA.Advance(time.Second)
				clkB.Advance(time.Second)
				require.False(t, acquire(t, b), "taken %s after the last renewal with a skew of %s", s, skew)
			}
			clkA.Advance(time.Second)
			clkB.Advance(time.Second)
			require.True(t, acquire(t, b))
			_, held := a.Held()
			require.False(t, held)
		})
	}
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
