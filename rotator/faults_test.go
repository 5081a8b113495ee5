package rotator_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// advanceWhileWaiting moves the fake clock whenever the engine waits on it
// (backoff), until the test ends.
func advanceWhileWaiting(t *testing.T, c *clock.Fake, step time.Duration) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				if c.Waiters() > 0 {
					c.Advance(step)
				}
			}
		}
	}()
}

func TestSimulatorFaultsAreRiddenOut(t *testing.T) {
	faults := map[string][]lakisim.Fault{
		"5xx on create":          {{Method: "POST", PathPrefix: "/api_keys", Status: 503, Times: 3}},
		"429 everywhere":         {{Status: 429, RetryAfter: time.Second, Times: 4}},
		"create answer lost":     {{Method: "POST", PathPrefix: "/api_keys", Drop: true, AfterProcessing: true, Times: 2}},
		"whoami dropped":         {{Method: "GET", PathPrefix: "/whoami", Drop: true, Times: 2}},
		"expire 500 after apply": {{Method: "POST", PathPrefix: "/api_keys/", Status: 500, AfterProcessing: true, Times: 6}},
		"latency":                {{Latency: 20 * time.Millisecond, Times: 5}},
	}
	for name, fs := range faults {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			ms := h.seedKey("svc/faulty", inventory.KindAPIKey, laki.Sandbox, apiScopes)
			old := h.current(ms.Name)
			for _, f := range fs {
				if err := h.fx.Sim.InjectFault(f); err != nil {
					t.Fatal(err)
				}
			}
			advanceWhileWaiting(t, h.fx.Clock, time.Second)
			e := h.engine(func(c *rotator.Config) { c.Attempts = 6 })
			if _, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("s")); err != nil {
				t.Fatalf("rotation did not ride out %s: %v", name, err)
			}
			keys := h.rotatorKeys(laki.Sandbox, ms.Name)
			cur := h.current(ms.Name)
			if len(keys) != 1 || keys[0].ID != cur.KeyID {
				t.Fatalf("%d keys made", len(keys))
			}
			if _, err := h.whoami(laki.Sandbox, cur.Secret); err != nil {
				t.Fatal(err)
			}
			if st := h.key(old.KeyID).Status; st != laki.StatusExpiring {
				t.Fatalf("old key %s", st)
			}
		})
	}
}

// A store that keeps failing: each attempt is recorded in tags (where a
// restart finds them), AWSCURRENT keeps its working key, a critical event is
// raised from MaxFailures on, and a later success clears the record.
func TestStoreFailuresAreRecordedAndEscalated(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/throttled", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	h.store.fail = func(op, _ string) error {
		if op == "PutPending" {
			return errors.New("ThrottlingException: Rate exceeded")
		}
		return nil
	}
	advanceWhileWaiting(t, h.fx.Clock, time.Second)
	for run := 1; run <= 2; run++ { // two daemon runs: the count survives in tags
		e := h.engine(func(c *rotator.Config) { c.Attempts = 2; c.MaxFailures = 3 })
		_, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("s"))
		var se *rotator.StepError
		if !errors.As(err, &se) || se.Secret != ms.Name || se.Step != "put pending" || !errors.Is(err, secretstore.ErrThrottled) {
			t.Fatalf("run %d: err = %v", run, err)
		}
	}
	tags := h.store.tags(ms.Name)
	if tags[rotator.TagFailedAttempts] != "4" || !strings.Contains(tags[rotator.TagLastFailure], "put pending") || tags[rotator.TagNextAttempt] == "" {
		t.Fatalf("failure tags %v", tags)
	}
	if len(tags[rotator.TagLastFailure]) > 256 || strings.ContainsAny(tags[rotator.TagLastFailure], `"()`) {
		t.Fatalf("last failure not sanitised: %q", tags[rotator.TagLastFailure])
	}
	var critical int
	for _, ev := range h.eventsFor(ms.Name, events.StepRotation, events.OutcomeFailed) {
		if ev.Severity == events.SeverityCritical {
			critical++
		}
	}
	if critical < 2 {
		t.Fatalf("%d critical events, want one for failures 3 and 4", critical)
	}
	if cur := h.current(ms.Name); cur.KeyID != old.KeyID {
		t.Fatal("AWSCURRENT moved although the rotation failed")
	}
	h.store.fail = nil
	if _, err := h.engine(nil).Rotate(context.Background(), ms, basePolicy(), scheduled("s")); err != nil {
		t.Fatal(err)
	}
	if tags := h.store.tags(ms.Name); tags[rotator.TagFailedAttempts] != "0" || tags[rotator.TagLastFailure] != "" {
		t.Fatalf("failure tags not cleared: %v", tags)
	}
	if n := len(h.rotatorKeys(laki.Sandbox, ms.Name)); n != 1 {
		t.Fatalf("%d keys", n)
	}
}

// A new key that fails its test is never promoted; the failure is
// reported; the next run resumes the pending version.
func TestFailedTestLeavesCurrentUntouched(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/untested", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	if err := h.fx.Sim.InjectFault(lakisim.Fault{Method: "GET", PathPrefix: "/whoami", Status: 403}); err != nil {
		t.Fatal(err)
	}
	_, err := h.engine(nil).Rotate(context.Background(), ms, basePolicy(), scheduled("s"))
	if err == nil || !strings.Contains(err.Error(), "test") {
		t.Fatalf("err = %v", err)
	}
	if cur := h.current(ms.Name); cur.KeyID != old.KeyID {
		t.Fatal("AWSCURRENT moved to an untested key")
	}
	if len(h.eventsFor(ms.Name, events.StepTest, events.OutcomeFailed)) == 0 {
		t.Fatal("failed test not reported")
	}
	h.fx.Sim.ClearFaults()
	res, err := h.engine(nil).Rotate(context.Background(), ms, basePolicy(), rotator.Trigger{Kind: events.CauseManual, ID: "retry-by-bob", Actor: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != rotator.Resumed {
		t.Fatalf("outcome %s, want the in-flight rotation resumed", res.Outcome)
	}
	if n := len(h.rotatorKeys(laki.Sandbox, ms.Name)); n != 1 {
		t.Fatalf("%d keys, want 1", n)
	}
}

// A pending key revoked behind the rotator's back cannot be resumed
// forever: the rotation is abandoned (AWSPENDING back on AWSCURRENT), the
// same cause is refused, and a new cause rotates afresh.
func TestPendingKeyRevokedIsAbandoned(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/abandon", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	old := h.current(ms.Name)
	ctx := context.Background()
	if _, err := h.engine(crashAt(rotator.AfterPut)).Rotate(ctx, ms, basePolicy(), scheduled("s1")); !errors.Is(err, rotator.ErrAborted) {
		t.Fatal(err)
	}
	pending, pid := h.store.peek(ms.Name, secretstore.StagePending)
	h.keep(pending.Secret)
	if err := h.fx.Sim.RevokeKey(pending.KeyID, "revoked_by_dashboard"); err != nil {
		t.Fatal(err)
	}
	// The resumed rotation finds its key revoked: the version is abandoned
	// (its key ended, AWSPENDING back on the current version) and the cause
	// goes on with its next version, in the same call.
	e := h.engine(nil)
	res, err := e.Rotate(ctx, ms, basePolicy(), scheduled("s1"))
	if err != nil {
		t.Fatal(err)
	}
	if res.VersionID == pid || res.KeyID == pending.KeyID || res.PreviousKeyID != old.KeyID {
		t.Fatalf("result %+v: want a new version and key after abandoning %s", res, pid)
	}
	if st := h.store.stages(ms.Name); len(st[pid]) != 0 || h.current(ms.Name).KeyID != res.KeyID {
		t.Fatalf("after abandon: stages %v (abandoned %s), current key %s", st, pid, h.current(ms.Name).KeyID)
	}
	if len(h.eventsFor(ms.Name, events.StepTest, events.OutcomeRefused)) != 1 {
		t.Fatal("the abandon was not reported")
	}
	if again, err := e.Rotate(ctx, ms, basePolicy(), scheduled("s1")); err != nil || again.Outcome != rotator.AlreadyDone {
		t.Fatalf("same cause again: %+v %v", again, err)
	}
	if got := len(h.eventsFor(ms.Name, events.StepRotation, events.OutcomeSucceeded)); got != 1 {
		t.Fatalf("%d succeeded messages for one rotation", got)
	}
	if _, err := e.Rotate(ctx, ms, basePolicy(), scheduled("s2")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.whoami(laki.Sandbox, h.current(ms.Name).Secret); err != nil {
		t.Fatal(err)
	}
}
