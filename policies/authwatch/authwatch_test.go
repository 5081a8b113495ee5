package authwatch

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
)

// fakeFailures keeps individual refused requests and answers LakiConnect's
// grouped counts over [since, until) (zero until: up to the clock's now).
type fakeFailures struct {
	mu    sync.Mutex
	clk   clock.Clock
	reqs  []refused
	err   error
	calls int
}

type refused struct {
	at     time.Time
	keyID  string
	prefix string
	status int
}

func (f *fakeFailures) refuse(keyID, prefix string, status, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.reqs = append(f.reqs, refused{f.clk.Now(), keyID, prefix, status})
	}
}

func (f *fakeFailures) ListAuthFailures(_ context.Context, since, until time.Time) ([]laki.AuthFailureCount, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if until.IsZero() {
		until = f.clk.Now().Add(time.Nanosecond)
	}
	type g struct {
		key, prefix string
		status      int
	}
	idx := map[g]int{}
	var out []laki.AuthFailureCount
	for _, r := range f.reqs {
		if r.at.Before(since) || !r.at.Before(until) {
			continue
		}
		k := g{r.keyID, r.prefix, r.status}
		i, ok := idx[k]
		if !ok {
			c := laki.AuthFailureCount{KeyPrefix: r.prefix, StatusCode: r.status, FirstSeenAt: r.at}
			if r.keyID != "" {
				id := r.keyID
				c.KeyID = &id
			}
			out = append(out, c)
			i = len(out) - 1
			idx[k] = i
		}
		out[i].Count++
		out[i].LastSeenAt = r.at
	}
	return out, nil
}

type rig struct {
	clk     *clock.Fake
	src     *fakeFailures
	rec     *events.Recorder
	w       *Watcher
	rotated []RotateRequest
}

func newRig(t *testing.T) *rig {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	checkout := policies.Policy{Name: "checkout", Kind: inventory.KindAPIKey, Alerts: policies.Alerts{
		Unauthorized401: 10, Forbidden403: 5, Window: 15 * time.Minute, RotateOnUnauthorizedSpike: true}}
	reporting := policies.Policy{Name: "reporting", Kind: inventory.KindAPIKey, Alerts: policies.Alerts{
		Unauthorized401: 3, Forbidden403: 0, Window: time.Hour}}
	set, err := policies.NewSet(checkout, reporting)
	require.NoError(t, err)
	keys := map[string]KeyInfo{
		"key_old":       {State: Retired, Secret: "prod/checkout", Kind: inventory.KindAPIKey, Policy: checkout},
		"key_new":       {State: Current, Secret: "prod/checkout", Kind: inventory.KindAPIKey, Policy: checkout},
		"key_reporting": {State: Current, Secret: "prod/reporting", Kind: inventory.KindAPIKey, Policy: reporting},
	}
	r := &rig{clk: clk, src: &fakeFailures{clk: clk}, rec: &events.Recorder{}}
	r.w = &Watcher{
		Merchants:    []Merchant{{Merchant: laki.Merchant{Environment: laki.Production, MasterMerchantID: "mm_AAAAAAAAAAAAAAAA"}, Failures: r.src}},
		Keys:         KeysFunc(func(_ laki.Environment, _, id string) (KeyInfo, bool) { k, ok := keys[id]; return k, ok }),
		Policies:     set,
		Unmanaged:    policies.Alerts{Unauthorized401: 50, Window: 15 * time.Minute},
		Unattributed: policies.Alerts{Unauthorized401: 20, Forbidden403: 20, Window: 15 * time.Minute},
		Clock:        clk,
		Sink:         r.rec,
		Rotate: func(_ context.Context, req RotateRequest) error {
			r.rotated = append(r.rotated, req)
			return nil
		},
	}
	return r
}

func (r *rig) alerts(reason string) []events.Event {
	var out []events.Event
	for _, e := range r.rec.Events() {
		if e.Details["reason"] == reason {
			out = append(out, e)
		}
	}
	return out
}

func TestBurstOn401RetiredKeyAlertsOncePerWindow(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// A consumer left on the retired key hammers LakiConnect: 100 refused
	// requests a minute for 40 minutes, the watcher polling every minute.
	for minute := 0; minute < 40; minute++ {
		r.src.refuse("key_old", "lk_live_abcd", 401, 100)
		r.clk.Advance(time.Minute)
		require.NoError(t, r.w.Poll(ctx))
	}
	got := r.alerts(ReasonUnauthorizedRetired)
	// Windows of 15 minutes: alerts at minute 1, 16 and 31, not 4000.
	require.Len(t, got, 3)
	start := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	assert.Equal(t, start.Add(1*time.Minute), got[0].Time)
	assert.Equal(t, start.Add(16*time.Minute), got[1].Time)
	assert.Equal(t, start.Add(31*time.Minute), got[2].Time)
	e := got[0]
	assert.Equal(t, events.StepAlert, e.Step)
	assert.Equal(t, events.SeverityWarning, e.Severity)
	assert.Equal(t, "prod/checkout", e.Secret)
	assert.Equal(t, "key_old", e.KeyID)
	assert.Equal(t, "production", e.Environment)
	assert.Equal(t, map[string]string{"status_code": "401", "count": "100", "threshold": "10", "window": "15m0s",
		"previous_count": "0", "policy": "checkout", "key_state": "retired", "reason": "unauthorized_on_retired_key"}, e.Details)
	assert.Equal(t, "1500", got[1].Details["count"], "the window holds 15 minutes of the burst")
	assert.Len(t, r.rec.Events(), 3, "nothing else raised")
	assert.Empty(t, r.rotated, "a retired key's 401s never rotate the current key")
}

func TestBelowThresholdAndAfterBurstEnds(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.src.refuse("key_old", "lk_live_abcd", 401, 9) // threshold 10
	r.clk.Advance(time.Minute)
	require.NoError(t, r.w.Poll(ctx))
	assert.Empty(t, r.rec.Events())

	r.src.refuse("key_old", "lk_live_abcd", 401, 1)
	r.clk.Advance(time.Minute)
	require.NoError(t, r.w.Poll(ctx))
	require.Len(t, r.rec.Events(), 1)
	assert.Equal(t, "9", r.rec.Events()[0].Details["previous_count"], "baseline from the previous poll")

	// The burst stops: later polls past the window raise nothing more.
	for range 30 {
		r.clk.Advance(time.Minute)
		require.NoError(t, r.w.Poll(ctx))
	}
	assert.Len(t, r.rec.Events(), 1)
}

func TestForbiddenOnCurrentKey(t *testing.T) {
	r := newRig(t)
	r.src.refuse("key_new", "lk_live_wxyz", 403, 5)
	r.src.refuse("key_reporting", "lk_live_rrrr", 403, 500) // reporting: 403 alerts off
	r.clk.Advance(time.Minute)
	require.NoError(t, r.w.Poll(context.Background()))
	got := r.rec.Events()
	require.Len(t, got, 1)
	assert.Equal(t, ReasonForbiddenCurrent, got[0].Details["reason"])
	assert.Equal(t, "key_new", got[0].KeyID)
	assert.Equal(t, "prod/checkout", got[0].Secret)
	assert.Equal(t, "5 requests were refused with 403 (forbidden) in the last 15m0s (alert at 5; 0 at the previous check) with key key_new, the current key of prod/checkout. Its scopes are narrower than a consumer needs (policy checkout).", got[0].Reason)
	assert.Empty(t, got[0].Error, "an alert is not an error")
}

func TestUnauthorizedSpikeOnCurrentKeyRequestsCompromiseRotation(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	r.src.refuse("key_new", "lk_live_wxyz", 401, 12)
	r.src.refuse("key_reporting", "lk_live_rrrr", 401, 3) // alerts, but its policy does not rotate
	r.clk.Advance(time.Minute)
	require.NoError(t, r.w.Poll(ctx))
	cur := r.alerts(ReasonUnauthorizedCurrent)
	require.Len(t, cur, 2)
	require.Len(t, r.rotated, 1)
	assert.Equal(t, RotateRequest{Secret: "prod/checkout", KeyID: "key_new", Environment: laki.Production,
		MasterMerchantID: "mm_AAAAAAAAAAAAAAAA", Cause: events.CauseCompromise, Reason: ReasonUnauthorizedCurrent,
		Count: 12, Window: 15 * time.Minute}, r.rotated[0])
	for _, e := range cur {
		assert.Equal(t, events.SeverityCritical, e.Severity)
		if e.KeyID == "key_new" {
			assert.Equal(t, "requested", e.Details["rotation"])
			assert.Equal(t, events.CauseCompromise, e.Cause)
		} else {
			assert.NotContains(t, e.Details, "rotation")
		}
	}

	// A failing rotation request is reported in the event, not swallowed.
	r2 := newRig(t)
	r2.w.Rotate = func(context.Context, RotateRequest) error { return errors.New("queue full") }
	r2.src.refuse("key_new", "lk_live_wxyz", 401, 12)
	r2.clk.Advance(time.Minute)
	require.NoError(t, r2.w.Poll(ctx))
	require.Len(t, r2.rec.Events(), 1)
	assert.Equal(t, "request failed", r2.rec.Events()[0].Details["rotation"])
	assert.Contains(t, r2.rec.Events()[0].Error, "queue full")
}

// Refusals with keys LakiConnect does not know are summed per environment,
// merchant and status whatever their prefixes (a guesser changes them),
// and alert on their own threshold, in words.
func TestUnattributedFailuresAreCountedPerMerchant(t *testing.T) {
	r := newRig(t)
	for i := range 30 { // 30 guesses, 3 prefixes, none reaching 20 alone
		r.src.refuse("", []string{"lk_live_Zq9x", "lk_live_Ab12", "lk_live_Cd34"}[i%3], 401, 1)
	}
	r.src.refuse("key_stray", "lk_live_s7r4", 401, 49) // known to LakiConnect, not managed: under 50
	r.clk.Advance(time.Minute)
	require.NoError(t, r.w.Poll(context.Background()))
	got := r.rec.Events()
	require.Len(t, got, 1)
	assert.Equal(t, ReasonUnauthorizedUnattributed, got[0].Details["reason"])
	assert.Empty(t, got[0].KeyID)
	assert.Empty(t, got[0].Secret)
	assert.Equal(t, "3", got[0].Details["key_prefixes"])
	assert.Equal(t, "30", got[0].Details["count"])
	assert.Equal(t, "30 requests were refused with 401 (unauthorized) in the last 15m0s (alert at 20; 0 at the previous check) with keys LakiConnect does not know, for merchant mm_AAAAAAAAAAAAAAAA in production, from 3 key prefix(es) (most: lk_live_Ab12, 10 times). Someone may be guessing keys, or a client has a mistyped key.", got[0].Reason)
}

func TestRetiredKeyAlertNamesSecretAndNumbers(t *testing.T) {
	r := newRig(t)
	r.src.refuse("key_old", "lk_live_oldk", 401, 12)
	r.clk.Advance(time.Minute)
	require.NoError(t, r.w.Poll(context.Background()))
	got := r.alerts(ReasonUnauthorizedRetired)
	require.Len(t, got, 1)
	assert.Equal(t, "prod/checkout", got[0].Secret)
	assert.Equal(t, "12 requests were refused with 401 (unauthorized) in the last 15m0s (alert at 10; 0 at the previous check) with key key_old, the retired (previous) key of prod/checkout. A consumer still uses the old credential, or the old key leaked and is being tried.", got[0].Reason)
	assert.NotContains(t, got[0].Reason, "new")
}

func TestPollErrorNamesTarget(t *testing.T) {
	r := newRig(t)
	r.src.err = errors.New("lakiconnect: 503")
	err := r.w.Poll(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "auth failures of production/mm_AAAAAAAAAAAAAAAA")
	assert.Contains(t, err.Error(), "lakiconnect: 503")
}

func TestRunPollsOnTheClock(t *testing.T) {
	r := newRig(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.w.Run(ctx, time.Minute) }()
	waitFor := func(calls int) {
		t.Helper()
		require.Eventually(t, func() bool {
			r.src.mu.Lock()
			defer r.src.mu.Unlock()
			return r.src.calls >= calls && r.clk.Waiters() == 1
		}, 5*time.Second, time.Millisecond)
	}
	// Two windows are in use (15m, 1h): two queries per poll.
	waitFor(2)
	r.src.refuse("key_old", "lk_live_abcd", 401, 10)
	r.clk.Advance(time.Minute)
	waitFor(4)
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.Len(t, r.alerts(ReasonUnauthorizedRetired), 1)
}
