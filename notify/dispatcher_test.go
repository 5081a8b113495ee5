package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// recorder is a Notifier that keeps what it got and answers from a script.
type recorder struct {
	mu      sync.Mutex
	got     []Notification
	calls   chan Notification
	answers []error // popped per call; nil: success
	retry   bool
}

func newRecorder(answers ...error) *recorder {
	return &recorder{calls: make(chan Notification, 100), answers: answers, retry: true}
}

func (r *recorder) Notify(_ context.Context, n Notification) (bool, error) {
	r.mu.Lock()
	var err error
	if len(r.answers) > 0 {
		err, r.answers = r.answers[0], r.answers[1:]
	}
	if err == nil {
		r.got = append(r.got, n)
	}
	r.mu.Unlock()
	r.calls <- n
	return r.retry, err
}

func (r *recorder) delivered() []Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Notification(nil), r.got...)
}

func (r *recorder) next(t *testing.T) Notification {
	t.Helper()
	select {
	case n := <-r.calls:
		return n
	case <-time.After(5 * time.Second):
		t.Fatal("no notification arrived")
		return Notification{}
	}
}

type countMetrics struct {
	mu                              sync.Mutex
	sent, failed, dropped, suppress int
}

func (m *countMetrics) Sent(string)    { m.mu.Lock(); m.sent++; m.mu.Unlock() }
func (m *countMetrics) Failed(string)  { m.mu.Lock(); m.failed++; m.mu.Unlock() }
func (m *countMetrics) Dropped(string) { m.mu.Lock(); m.dropped++; m.mu.Unlock() }
func (m *countMetrics) Suppressed()    { m.mu.Lock(); m.suppress++; m.mu.Unlock() }
func (m *countMetrics) get() (sent, failed, dropped, suppressed int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.sent, m.failed, m.dropped, m.suppress
}

// waitWaiters waits until n goroutines sleep on the fake clock.
func waitWaiters(t *testing.T, c *clock.Fake, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return c.Waiters() >= n }, 5*time.Second, time.Millisecond)
}

func routes() []Route {
	return []Route{
		{Environments: []string{"production"}, Severities: []events.Severity{events.SeverityCritical}, Receiver: "oncall", Mentions: []string{"S0ONCALL"}, MentionOwners: true},
		{Environments: []string{"production"}, Outcomes: []events.Outcome{events.OutcomeFailed}, Receiver: "oncall", Mentions: []string{"S0ONCALL", "U0LEAD"}},
		{Steps: []events.Step{events.StepRotation}, Outcomes: []events.Outcome{events.OutcomeSucceeded}, Causes: []events.Cause{events.CauseScheduled}, Receiver: "team", Digest: true},
		{Environments: []string{"sandbox"}, Receiver: "team", Stop: true},
		{Receiver: "console"},
	}
}

func ev(secretName string, step events.Step, outcome events.Outcome, sev events.Severity, env string) events.Event {
	return events.Event{Time: t0, Secret: secretName, Step: step, Outcome: outcome, Severity: sev, Environment: env,
		Cause: events.CauseScheduled, KeyID: "key_0123456789abcdef", MasterMerchantID: "mm_42", VersionID: "v-" + secretName}
}

func TestDispatcherDeliversToEveryMatchingRoute(t *testing.T) {
	oncall, team, console := newRecorder(), newRecorder(), newRecorder()
	c := clock.NewFake(t0)
	owners := map[string][]string{"prod/pay": {"U0ALICE01", "S0PAYMENTS"}}
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"oncall": oncall, "team": team, "console": console}, Routes: routes(), Clock: c,
		Owners: func(s string) []string { return owners[s] }})
	require.NoError(t, err)
	ctx := context.Background()

	// Matches routes 0 and 1 (one message to oncall, paging everyone both
	// name, the secret's owners included) and route 4.
	d.Emit(ctx, ev("prod/pay", events.StepRotation, events.OutcomeFailed, events.SeverityCritical, "production"))
	got := oncall.next(t)
	assert.Equal(t, "prod/pay", got.Secret)
	assert.Equal(t, "<!subteam^S0ONCALL> <@U0ALICE01> <!subteam^S0PAYMENTS> <@U0LEAD>", got.Mention)
	assert.Equal(t, "…cdef", got.KeyID, "key ids are shortened to their last 4")
	assert.NotEmpty(t, got.NextSteps, "a failure says what to do next")
	assert.Equal(t, "prod/pay", console.next(t).Secret)

	// Route 3 stops the walk: sandbox never reaches the console.
	d.Emit(ctx, ev("sbx/pay", events.StepTest, events.OutcomeFailed, events.SeverityWarning, "sandbox"))
	got = team.next(t)
	assert.Equal(t, "sbx/pay", got.Secret)
	assert.Empty(t, got.Mention, "sandbox failures page no one")

	// Routine successes wait for the team's digest, and reach the console at once.
	d.Emit(ctx, ev("prod/a", events.StepRotation, events.OutcomeSucceeded, events.SeverityInfo, "production"))
	d.Emit(ctx, ev("prod/b", events.StepRotation, events.OutcomeSucceeded, events.SeverityInfo, "production"))
	require.NoError(t, d.Close(ctx))
	digest := team.next(t)
	require.Len(t, digest.Digest, 2, "Close flushes the digest")
	assert.Equal(t, "prod/a", digest.Digest[0].Secret)
	assert.Equal(t, "prod/b", digest.Digest[1].Secret)
	assert.Len(t, oncall.delivered(), 1, "one message per receiver, however many of its routes match")
	var consoleGot []string
	for _, n := range console.delivered() {
		consoleGot = append(consoleGot, n.Secret)
	}
	assert.Equal(t, []string{"prod/pay", "prod/a", "prod/b"}, consoleGot)
}

func TestMentionMarkup(t *testing.T) {
	assert.Equal(t, "<!subteam^S0SECONCALL> <@U0ALICE01> <@W0BOB0002>", MentionMarkup([]string{"S0SECONCALL", "U0ALICE01", "W0BOB0002"}))
	assert.Equal(t, "", MentionMarkup(nil))
}

func TestNewDispatcherNamesUnknownReceiver(t *testing.T) {
	_, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": newRecorder()}, Routes: []Route{{Receiver: "team"}, {Receiver: "pager"}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `route 1: receiver "pager"`)
}

func TestDispatcherDigestFlushesOnInterval(t *testing.T) {
	team := newRecorder()
	c := clock.NewFake(t0)
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": team}, Routes: []Route{{Receiver: "team", Digest: true}}, Clock: c, DigestInterval: time.Hour})
	require.NoError(t, err)
	defer d.Close(context.Background())
	waitWaiters(t, c, 1)
	for i := range 3 {
		d.Emit(context.Background(), ev(fmt.Sprintf("s%d", i), events.StepRotation, events.OutcomeSucceeded, events.SeverityInfo, "production"))
	}
	// The worker has taken all three when the queue is empty; only then move time.
	require.Eventually(t, func() bool { return len(d.workers["team"].queue) == 0 }, 5*time.Second, time.Millisecond)
	c.Advance(59 * time.Minute)
	select {
	case n := <-team.calls:
		t.Fatalf("digest sent before its interval: %+v", n)
	default:
	}
	c.Advance(time.Minute)
	digest := team.next(t)
	assert.Len(t, digest.Digest, 3)
	assert.Contains(t, digest.Title, "3 routine updates")
}

// newDedupDispatcher routes everything to one receiver, team, and
// suppresses repeats within 10 minutes on the fake clock c; m counts.
func newDedupDispatcher(t *testing.T) (team *recorder, c *clock.Fake, m *countMetrics, d *Dispatcher) {
	t.Helper()
	team, c, m = newRecorder(), clock.NewFake(t0), &countMetrics{}
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": team}, Routes: []Route{{Receiver: "team"}}, Clock: c, DedupWindow: 10 * time.Minute, Metrics: m})
	require.NoError(t, err)
	return team, c, m, d
}

func TestDispatcherSuppressesRepeatsWithinWindow(t *testing.T) {
	team, c, m, d := newDedupDispatcher(t)
	ctx := context.Background()
	e := ev("prod/pay", events.StepAlert, events.OutcomeWarning, events.SeverityWarning, "production")
	e.Reason = "old key still in use"
	d.Emit(ctx, e)
	d.Emit(ctx, e) // repeat
	other := e
	other.Reason = "401 spike"
	d.Emit(ctx, other) // differs by reason: not a repeat
	c.Advance(10 * time.Minute)
	d.Emit(ctx, e) // window over
	require.NoError(t, d.Close(ctx))
	got := team.delivered()
	require.Len(t, got, 3)
	assert.Equal(t, []string{"old key still in use", "401 spike", "old key still in use"}, []string{got[0].Reason, got[1].Reason, got[2].Reason})
	_, _, _, suppressed := m.get()
	assert.Equal(t, 1, suppressed)
}

// Two rotations of one secret within the window are two messages; the same
// rotation's same outcome twice (a retry's second failure) is one.
func TestDispatcherDeduplicatesByRotationNotBySecret(t *testing.T) {
	team, c, m, d := newDedupDispatcher(t)
	ctx := context.Background()
	first := ev("prod/pay", events.StepRotation, events.OutcomeSucceeded, events.SeverityInfo, "production")
	first.VersionID, first.KeyID = "version-one-0123456789abcdef0123", "key_first"
	second := first
	second.VersionID, second.KeyID, second.PreviousKeyID = "version-two-0123456789abcdef0123", "key_second", "key_first"
	d.Emit(ctx, first)
	c.Advance(time.Minute)
	d.Emit(ctx, second) // a new rotation of the same secret
	failed := ev("prod/pay", events.StepRotation, events.OutcomeFailed, events.SeverityWarning, "production")
	failed.VersionID = "version-three-0123456789abcdef012"
	d.Emit(ctx, failed)
	failed.Attempt, failed.Error = 2, "timeout"
	d.Emit(ctx, failed) // the same rotation failing again: a repeat
	failed.Severity = events.SeverityCritical
	d.Emit(ctx, failed) // ...until it turns critical: news
	// A scheduled rotation's start names no version yet: never taken for another's.
	started := ev("prod/pay", events.StepRotation, events.OutcomeStarted, events.SeverityInfo, "production")
	started.VersionID, started.KeyID = "", ""
	d.Emit(ctx, started)
	d.Emit(ctx, started)
	require.NoError(t, d.Close(ctx))
	var got []string
	for _, n := range team.delivered() {
		got = append(got, string(n.Outcome)+" "+n.KeyID)
	}
	assert.Equal(t, []string{"succeeded …irst", "succeeded …cond", "failed …cdef", "failed …cdef", "started ", "started "}, got)
	_, _, _, suppressed := m.get()
	assert.Equal(t, 1, suppressed)
}

func TestDispatcherRetriesWithBackoffWhenAsked(t *testing.T) {
	flaky := newRecorder(errors.New("503"), errors.New("503"), nil)
	c := clock.NewFake(t0)
	m := &countMetrics{}
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": flaky}, Routes: []Route{{Receiver: "team"}}, Clock: c, Metrics: m,
		Retry: Retry{Attempts: 5, Initial: time.Second, Max: 90 * time.Second}})
	require.NoError(t, err)
	defer d.Close(context.Background())
	waitWaiters(t, c, 1) // the digest tick
	d.Emit(context.Background(), ev("prod/pay", events.StepTest, events.OutcomeFailed, events.SeverityWarning, "production"))

	flaky.next(t)        // attempt 1 fails
	waitWaiters(t, c, 2) // backoff in [0.5s, 1s)
	c.Advance(499 * time.Millisecond)
	assert.Equal(t, 2, c.Waiters(), "backoff is at least half the wait")
	c.Advance(501 * time.Millisecond)
	flaky.next(t)        // attempt 2 fails
	waitWaiters(t, c, 2) // backoff doubled: [1s, 2s)
	c.Advance(999 * time.Millisecond)
	assert.Equal(t, 2, c.Waiters(), "backoff doubles")
	c.Advance(time.Second)
	flaky.next(t) // attempt 3 succeeds
	require.Eventually(t, func() bool { s, _, _, _ := m.get(); return s == 1 }, 5*time.Second, time.Millisecond)
	assert.Len(t, flaky.delivered(), 1)
}

func TestDispatcherGivesUpOnPermanentFailure(t *testing.T) {
	broken := newRecorder(errors.New("invalid_auth"), errors.New("invalid_auth"))
	broken.retry = false
	var logs bytes.Buffer
	m := &countMetrics{}
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": broken}, Routes: []Route{{Receiver: "team"}}, Clock: clock.NewFake(t0), Metrics: m,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	require.NoError(t, err)
	d.Emit(context.Background(), ev("prod/pay", events.StepTest, events.OutcomeFailed, events.SeverityWarning, "production"))
	require.NoError(t, d.Close(context.Background()))
	assert.Len(t, broken.calls, 1, "no retry when the notifier says it is pointless")
	_, failed, _, _ := m.get()
	assert.Equal(t, 1, failed)
	assert.Contains(t, logs.String(), "invalid_auth")
}

func TestDispatcherNeverBlocksOnHangingNotifier(t *testing.T) {
	entered := make(chan struct{}, 1)
	hang := NotifierFunc(func(ctx context.Context, _ Notification) (bool, error) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return true, ctx.Err()
	})
	m := &countMetrics{}
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": hang}, Routes: []Route{{Receiver: "team"}}, QueueSize: 4, Clock: clock.NewFake(t0), Metrics: m,
		Retry: Retry{Timeout: time.Hour}})
	require.NoError(t, err)
	d.Emit(context.Background(), ev("first", events.StepTest, events.OutcomeFailed, events.SeverityWarning, "production"))
	<-entered
	done := make(chan struct{})
	go func() {
		for i := range 500 {
			d.Emit(context.Background(), ev(fmt.Sprintf("s%d", i), events.StepTest, events.OutcomeFailed, events.SeverityWarning, "production"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit blocked behind a hanging notifier")
	}
	_, _, dropped, _ := m.get()
	assert.Equal(t, 500-4, dropped, "everything beyond the queue is dropped and counted")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = d.Close(ctx)
	require.Error(t, err, "Close reports deliveries it had to cancel")
	d.Emit(context.Background(), ev("late", events.StepTest, events.OutcomeFailed, events.SeverityWarning, "production"))
	_, _, dropped, _ = m.get()
	assert.Equal(t, 500-4+1, dropped, "events after Close are dropped")
}

func TestDispatcherLogsNoSecret(t *testing.T) {
	leaked := secret.New("sk_live_DISPATCHsecret0000ffff")
	var logs bytes.Buffer
	broken := newRecorder(fmt.Errorf("post failed for key %v", leaked))
	broken.retry = false
	d, err := NewDispatcher(Config{Receivers: map[string]Notifier{"team": broken}, Routes: []Route{{Receiver: "team"}}, Clock: clock.NewFake(t0),
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	e := ev("prod/pay", events.StepTest, events.OutcomeFailed, events.SeverityWarning, "production")
	e.Error = fmt.Sprintf("whoami with %s refused", leaked)
	d.Emit(context.Background(), e)
	require.NoError(t, d.Close(context.Background()))
	n := <-broken.calls
	assert.NotContains(t, n.Error, leaked.Reveal())
	assert.Contains(t, n.Error, secret.Redacted)
	assert.NotContains(t, logs.String(), leaked.Reveal())
	assert.True(t, strings.Contains(logs.String(), "not delivered"), logs.String())
}
