package rotator_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// Two replicas on one scheduled slot, the late one held back at each step
// in turn while the other does the whole rotation, on moto (where re-putting
// a version that is AWSCURRENT strips AWSCURRENT, see MOTO.md): the late
// replica never leaves the secret without AWSCURRENT, never fails, and the
// rotation is announced once. Its listing is the one from before the
// rotation, as a scheduler's would be.
func TestMotoLateReplicaNeverStripsCurrentAndReportsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("moto")
	}
	steps := []rotator.Boundary{rotator.AfterCreate, rotator.AfterPut, rotator.AfterTest, rotator.AfterPromote}
	for si, step := range steps {
		t.Run(string(step), func(t *testing.T) {
			b := newMotoBatch(t, 2, 2, nil)
			ctx := context.Background()
			eng := func(hook func(string, rotator.Boundary) error) *rotator.Engine {
				return b.h.engine(func(c *rotator.Config) {
					c.Store, c.Issuers = b.store, b.src
					c.Verifier = webhooksig.Verifier{Clock: b.h.fx.Clock}
					c.Hooks.AfterStep = hook
				})
			}
			checkCurrent := func(when string) {
				for _, j := range b.jobs {
					d, err := b.store.Describe(ctx, j.Secret.Name)
					if err != nil {
						t.Fatal(err)
					}
					n := 0
					for _, v := range d.Versions {
						if v.Has(secretstore.StageCurrent) {
							n++
						}
					}
					if n != 1 {
						t.Fatalf("%s: %s has %d versions labelled AWSCURRENT: %+v", when, j.Secret.Name, n, d.Versions)
					}
				}
			}
			// Round 1 is the first rotation of hand-made keys; round 2 the
			// steady state (AWSPENDING rides on the current version).
			for round, slot := range []string{"2026-06-01T09:00:00Z", "2026-06-08T09:00:00Z"} {
				for i := range b.jobs {
					s, err := b.store.Describe(ctx, b.jobs[i].Secret.Name)
					if err != nil {
						t.Fatal(err)
					}
					b.jobs[i].Known, b.jobs[i].Trigger = &s, scheduled(slot)
				}
				early := eng(nil)
				for _, j := range b.jobs {
					late := eng(func(name string, s rotator.Boundary) error {
						if s == step {
							if _, err := early.RotateJob(ctx, j); err != nil {
								t.Errorf("early replica: %v", err)
							}
							checkCurrent("after the early replica")
						} else if slices.Index(steps, s) > si {
							checkCurrent("late replica at " + string(s))
						}
						return nil
					})
					before := b.counter.Snapshot()
					var res rotator.Result
					var err error
					// Held after its create, the late replica owns the create:
					// the early one's is a replay and waits its settle time.
					b.h.settling(func() { res, err = late.RotateJob(ctx, j) })
					if err != nil {
						t.Fatalf("round %d: late replica failed: %v", round+1, err)
					}
					if step == rotator.AfterCreate {
						if n := b.counter.Snapshot()["PutSecretValue"] - before["PutSecretValue"]; n != 0 {
							t.Fatalf("round %d: the late replica issued %d PutSecretValue for a rotation already done", round+1, n)
						}
						if res.Outcome != rotator.AlreadyDone {
							t.Fatalf("round %d: late replica outcome %s, want %s", round+1, res.Outcome, rotator.AlreadyDone)
						}
					}
					checkCurrent("after both replicas")
					live := 0
					for _, k := range b.h.rotatorKeysOf(j.Secret.MasterMerchantID, j.Secret.Name) {
						if k.Status == laki.StatusActive {
							live++
						}
					}
					if live != 1 {
						t.Fatalf("round %d: %d live rotator keys for %s, want 1", round+1, live, j.Secret.Name)
					}
					var ok, failed int
					for _, e := range b.h.rec.Events() {
						if e.Secret == j.Secret.Name && e.Step == events.StepRotation {
							switch e.Outcome {
							case events.OutcomeSucceeded:
								ok++
							case events.OutcomeFailed:
								failed++
							}
						}
					}
					if ok != round+1 || failed != 0 {
						t.Fatalf("round %d: %s announced %d successes and %d failures, want %d and 0", round+1, j.Secret.Name, ok, failed, round+1)
					}
				}
			}
		})
	}
}

// Two different asks for one secret at the same moment (two people, or two
// replicas with their own trigger ids): the one that finds the other's
// rotation in flight before its put finishes that one and ends the key it
// made, unread. Runs on the in-memory store, which behaves as AWS does.
func TestRotationLosingARaceEndsItsOwnKey(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/race", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	ctx := context.Background()
	if _, err := h.engine(nil).Rotate(ctx, ms, basePolicy(), scheduled("s1")); err != nil {
		t.Fatal(err)
	}
	manual := func(id string) rotator.Trigger {
		return rotator.Trigger{Kind: events.CauseManual, ID: id, Source: events.SourceHTTP, Actor: "alice", Reason: "r"}
	}
	known, err := h.store.Describe(ctx, ms.Name)
	if err != nil {
		t.Fatal(err)
	}
	first := h.engine(crashAt(rotator.AfterPut)) // killed right after its put: in flight
	second := h.engine(func(c *rotator.Config) {
		c.Hooks.AfterStep = func(_ string, s rotator.Boundary) error {
			if s == rotator.AfterCreate {
				_, _ = first.RotateJob(ctx, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: manual("trg_one"), Known: &known})
			}
			return nil
		}
	})
	res, err := second.RotateJob(ctx, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: manual("trg_two"), Known: &known})
	if err != nil {
		t.Fatal(err)
	}
	one := rotator.VersionID(known.ARN, "trg_one")
	if res.Outcome != rotator.Resumed || res.VersionID != one {
		t.Fatalf("result %+v: want the rotation in flight (%s) resumed", res, one)
	}
	cur := h.current(ms.Name)
	live := 0
	for _, k := range h.rotatorKeys(laki.Sandbox, ms.Name) {
		switch {
		case k.Metadata[rotator.MetaVersion] == rotator.VersionID(known.ARN, "trg_two") && k.Status != laki.StatusRevoked:
			t.Fatalf("the losing rotation's key %s is %s", k.ID, k.Status)
		case k.Status == laki.StatusActive:
			live++
		}
	}
	if live != 1 || cur.KeyID != res.KeyID {
		t.Fatalf("%d live rotator keys, current %s, result %s", live, cur.KeyID, res.KeyID)
	}
}

// The same race on the local store, which behaves as AWS does where moto
// does not (a repeated put with the same token and value changes nothing,
// whatever the version's labels): the late replica writes nothing once it
// sees the rotation done, leaves one AWSCURRENT, and announces nothing twice.
func TestLateReplicaOnAWSSemanticsReportsOnce(t *testing.T) {
	steps := []rotator.Boundary{rotator.AfterCreate, rotator.AfterPut, rotator.AfterTest, rotator.AfterPromote}
	for _, step := range steps {
		t.Run(string(step), func(t *testing.T) {
			h := newHarness(t)
			ctx := context.Background()
			ls, err := localstore.Open("", localstore.WithClock(h.fx.Clock))
			if err != nil {
				t.Fatal(err)
			}
			store := &countingStore{Store: ls}
			v := h.seedCredential("svc/aws-late", laki.Sandbox, apiScopes)
			if _, err := ls.Create(ctx, "svc/aws-late", "", nil, &v); err != nil {
				t.Fatal(err)
			}
			ms := inventory.ManagedSecret{Name: "svc/aws-late", Kind: inventory.KindAPIKey, Environment: laki.Sandbox,
				MasterMerchantID: h.fx.MasterMerchantID, Policy: "p"}
			for round, slot := range []string{"2026-06-01T09:00:00Z", "2026-06-08T09:00:00Z"} {
				known, err := ls.Describe(ctx, ms.Name)
				if err != nil {
					t.Fatal(err)
				}
				job := rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled(slot), Known: &known}
				early := h.engine(func(c *rotator.Config) { c.Store = store })
				late := h.engine(func(c *rotator.Config) {
					c.Store = store
					c.Hooks.AfterStep = func(_ string, s rotator.Boundary) error {
						if s == step {
							if _, err := early.RotateJob(ctx, job); err != nil {
								t.Errorf("early replica: %v", err)
							}
							store.puts.Store(0)
						}
						return nil
					}
				})
				var lerr error
				h.settling(func() { _, lerr = late.RotateJob(ctx, job) })
				if err := lerr; err != nil {
					t.Fatalf("round %d: late replica failed: %v", round+1, err)
				}
				if step == rotator.AfterCreate && store.puts.Load() != 0 {
					t.Fatalf("round %d: the late replica put a version already promoted", round+1)
				}
				d, err := ls.Describe(ctx, ms.Name)
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, v := range d.Versions {
					if v.Has(secretstore.StageCurrent) {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("round %d: versions %+v", round+1, d.Versions)
				}
				if ok := len(h.eventsFor(ms.Name, events.StepRotation, events.OutcomeSucceeded)); ok != round+1 ||
					len(h.eventsFor(ms.Name, events.StepRotation, events.OutcomeFailed)) != 0 {
					t.Fatalf("round %d: %d successes announced, want %d, and no failure", round+1, ok, round+1)
				}
				cur, err := ls.Get(ctx, ms.Name, secretstore.ByStage(secretstore.StageCurrent))
				if err != nil {
					t.Fatal(err)
				}
				c, _ := secretstore.DecodeCredential(ms.Name, cur.Value)
				h.keep(c.Secret)
			}
		})
	}
}

// countingStore counts puts (pure bookkeeping around a real store).
type countingStore struct {
	*localstore.Store
	puts atomic.Int64
}

func (s *countingStore) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	s.puts.Add(1)
	return s.Store.PutPending(ctx, name, versionID, value)
}

// A replica that joins an ask another replica writes follows it: it writes
// nothing while the other rotates, then reports the rotation done, once.
func TestFollowerWritesNothingWhileTheWriterRotates(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ms := h.seedKey("svc/follow", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	cause := rotator.Trigger{Kind: events.CauseManual, ID: "trg_shared", Source: events.SourceHTTP, Actor: "alice"}
	follower := h.engine(nil)
	done := make(chan error, 1)
	var res rotator.Result
	go func() {
		var err error
		res, err = follower.RotateJob(ctx, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: cause,
			Join: func(secretstore.Secret) (rotator.Joined, bool) {
				return rotator.Joined{Trigger: cause, Follow: true}, true
			}})
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // the follower is waiting
	h.store.resetCounts()
	if _, err := h.engine(nil).RotateJob(ctx, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: cause}); err != nil {
		t.Fatal(err)
	}
	writes := h.store.counts()["PutPending"] + h.store.counts()["MoveStage"]
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != rotator.AlreadyDone {
				t.Fatalf("follower outcome %s, want %s", res.Outcome, rotator.AlreadyDone)
			}
			if got := h.store.counts()["PutPending"] + h.store.counts()["MoveStage"]; got != writes || writes != 2 {
				t.Fatalf("%d stage writes with the follower, %d by the writer alone; want 2 and no more", got, writes)
			}
			if n := len(h.eventsFor(ms.Name, events.StepRotation, events.OutcomeSucceeded)); n != 1 {
				t.Fatalf("%d successes announced, want 1", n)
			}
			h.current(ms.Name)
			return
		case <-time.After(5 * time.Millisecond):
			h.fx.Clock.Advance(500 * time.Millisecond)
		}
	}
}
