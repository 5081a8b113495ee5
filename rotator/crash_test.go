package rotator_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

var errCrash = errors.New("simulated crash")

func crashAt(step rotator.Boundary) func(*rotator.Config) {
	return func(c *rotator.Config) {
		c.Hooks.AfterStep = func(_ string, s rotator.Boundary) error {
			if s == step {
				return errCrash
			}
			return nil
		}
	}
}

// After a crash at each step boundary a fresh engine on the same store and
// simulator finishes the rotation: one new key, working, AWSCURRENT on it,
// the old key ending as the cause demands, no orphan, labels consistent.
func TestCrashAtEveryStepThenRestartRollsForward(t *testing.T) {
	steps := []rotator.Boundary{rotator.AfterCreate, rotator.AfterPut, rotator.AfterTest, rotator.AfterPromote, rotator.AfterEndOld}
	for _, cause := range []events.Cause{events.CauseScheduled, events.CauseCompromise} {
		for _, step := range steps {
			t.Run(fmt.Sprintf("%s/%s", cause, step), func(t *testing.T) {
				h := newHarness(t)
				ms := h.seedKey("svc/crash", inventory.KindAPIKey, laki.Sandbox, apiScopes)
				old := h.current(ms.Name)
				c := rotator.Trigger{Kind: cause, ID: "trigger-1", Source: events.SourceCLI, Actor: "bob"}
				ctx := context.Background()

				_, err := h.engine(crashAt(step)).Rotate(ctx, ms, basePolicy(), c)
				if !errors.Is(err, rotator.ErrAborted) {
					t.Fatalf("first engine: err = %v, want the crash", err)
				}
				if tags := h.store.tags(ms.Name); tags[rotator.TagFailedAttempts] != "" {
					t.Fatalf("a crash recorded a failure: %v", tags)
				}
				// A crash after the create: the restart's create is a replay,
				// which waits its settle time before it adopts the key.
				var res rotator.Result
				h.settling(func() { res, err = h.engine(nil).Rotate(ctx, ms, basePolicy(), c) })
				if err != nil {
					t.Fatalf("restart: %v", err)
				}
				h.requireRolledForward(ms.Name, res, h.current(ms.Name), old, cause)
				vid := rotator.VersionID("arn:aws:secretsmanager:eu-west-1:123456789012:secret:svc/crash-AbCdEf", "trigger-1")
				st := h.store.stages(ms.Name)
				if !slices.Equal(st[vid], []string{"AWSCURRENT", "AWSPENDING"}) || len(st) != 2 {
					t.Fatalf("stages %v", st)
				}
				// No orphan once the margin has passed.
				h.fx.Clock.Advance(26 * time.Hour)
				sw, err := h.engine(nil).Sweep(ctx, []inventory.ManagedSecret{ms})
				if err != nil || len(sw.Revoked) != 0 {
					t.Fatalf("sweep after restart: %+v %v", sw, err)
				}
			})
		}
	}
}

// Two engines (replicas) on the same secrets and slot converge on one key per
// secret, and neither reports an error.
func TestTwoEnginesSameSlotConverge(t *testing.T) {
	h := newHarness(t)
	var secrets []inventory.ManagedSecret
	for i := range 5 {
		secrets = append(secrets, h.seedKey(fmt.Sprintf("svc/r%d", i), inventory.KindAPIKey, laki.Sandbox, apiScopes))
	}
	a, b := h.engine(nil), h.engine(nil)
	for _, err := range h.rotateAsReplicas([]*rotator.Engine{a, b}, secrets, "2026-06-01T09:00:00Z") {
		t.Errorf("replica error: %v", err)
	}
	for _, ms := range secrets {
		h.requireOneRotatorKey(ms.Name, h.current(ms.Name))
		if _, v := h.store.peek(ms.Name, secretstore.StagePending); v == "" {
			t.Fatalf("%s: no AWSPENDING label", ms.Name)
		}
	}
}

// At startup Resume finishes the rotations a killed daemon left in flight
// and starts none.
func TestResumeFinishesInFlightAndStartsNone(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var jobs []rotator.Job
	for i, step := range []rotator.Boundary{rotator.AfterPut, rotator.AfterTest} {
		ms := h.seedKey(fmt.Sprintf("svc/inflight%d", i), inventory.KindAPIKey, laki.Sandbox, apiScopes)
		if _, err := h.engine(crashAt(step)).Rotate(ctx, ms, basePolicy(), scheduled("s")); !errors.Is(err, rotator.ErrAborted) {
			t.Fatal(err)
		}
		jobs = append(jobs, rotator.Job{Secret: ms, Policy: basePolicy()})
	}
	idle := h.seedKey("svc/idle", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	jobs = append(jobs, rotator.Job{Secret: idle, Policy: basePolicy()})
	out := h.engine(nil).Resume(ctx, jobs, nil)
	for i, o := range out[:2] {
		if o.Err != nil || o.Result.Outcome != rotator.Resumed {
			t.Fatalf("job %d: %+v", i, o)
		}
		cur := h.current(o.Job.Secret.Name)
		if keys := h.rotatorKeys(laki.Sandbox, o.Job.Secret.Name); len(keys) != 1 || keys[0].ID != cur.KeyID {
			t.Fatalf("%s: keys %d", o.Job.Secret.Name, len(keys))
		}
	}
	if out[2].Err != nil || out[2].Result.Outcome != rotator.NothingToResume || len(h.rotatorKeys(laki.Sandbox, idle.Name)) != 0 {
		t.Fatalf("idle secret: %+v", out[2])
	}
}
