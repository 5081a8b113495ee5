package rotator_test

import (
	"context"
	"errors"
	"sync"
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

// heldPuts is one replica's view of the shared store whose puts are held on
// the wire until release is closed: a put already sent that lands late.
type heldPuts struct {
	secretstore.Store
	entered chan struct{} // closed when the first put reaches the store
	release chan struct{}
	once    sync.Once
	puts    atomic.Int64
}

func newHeldPuts(s secretstore.Store) *heldPuts {
	return &heldPuts{Store: s, entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *heldPuts) PutPending(ctx context.Context, name, versionID string, value secret.Value) error {
	s.puts.Add(1)
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return s.Store.PutPending(ctx, name, versionID, value)
}

// lateSlotPut runs two replicas on one scheduled slot: A creates first (its
// create owns the key), then B's create is a replay; every put B sends is
// held until A has promoted the version. B's listing is from before the
// rotation, as a scheduler's would be. It returns B's result and error.
func lateSlotPut(t *testing.T, h *harness, shared secretstore.Store, job rotator.Job, mod func(*rotator.Config)) (rotator.Result, *heldPuts, error) {
	t.Helper()
	ctx := context.Background()
	held := newHeldPuts(shared)
	engine := func(store secretstore.Store, hook func(string, rotator.Boundary) error) *rotator.Engine {
		return h.engine(func(c *rotator.Config) {
			if mod != nil {
				mod(c)
			}
			c.Store = store
			c.Hooks.AfterStep = hook
		})
	}
	b := engine(held, nil)
	var (
		bRes  rotator.Result
		bErr  error
		bDone sync.WaitGroup
	)
	a := engine(shared, func(_ string, s rotator.Boundary) error {
		switch s {
		case rotator.AfterCreate:
			// A owns the create; now B runs up to where it blocks: its
			// put on the wire (held), or a wait on the clock.
			bDone.Add(1)
			go func() {
				defer bDone.Done()
				bRes, bErr = b.RotateJob(ctx, job)
			}()
			deadline := time.Now().Add(20 * time.Second)
			for {
				select {
				case <-held.entered:
					return nil
				default:
				}
				if h.fx.Clock.Waiters() > 0 {
					return nil
				}
				if time.Now().After(deadline) {
					t.Error("replica B neither put nor waited")
					return nil
				}
				time.Sleep(time.Millisecond)
			}
		case rotator.AfterPromote:
			close(held.release) // B's put, if sent, lands now: late
		}
		return nil
	})
	if _, err := a.RotateJob(ctx, job); err != nil {
		t.Fatalf("replica A: %v", err)
	}
	h.settling(bDone.Wait)
	return bRes, held, bErr
}

// checkOneRotation asserts what a consumer and an operator see after both
// replicas: one AWSCURRENT (on the new version), one live rotator key, one
// success announced, no failure, and B issued no put at all.
func checkOneRotation(t *testing.T, h *harness, store secretstore.Store, ms inventory.ManagedSecret, keys []laki.APIKey, bRes rotator.Result, held *heldPuts, bErr error) {
	t.Helper()
	if bErr != nil {
		t.Fatalf("replica B failed: %v", bErr)
	}
	d, err := store.Describe(context.Background(), ms.Name)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range d.Versions {
		if v.Has(secretstore.StageCurrent) {
			n++
			if v.ID != bRes.VersionID {
				t.Errorf("AWSCURRENT is on %s, the rotation wrote %s", v.ID, bRes.VersionID)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d versions labelled AWSCURRENT, want 1: %+v", n, d.Versions)
	}
	if p := held.puts.Load(); p != 0 {
		t.Fatalf("replica B, whose create was a replay, sent %d PutSecretValue", p)
	}
	if bRes.Outcome != rotator.AlreadyDone {
		t.Fatalf("replica B outcome %s, want %s", bRes.Outcome, rotator.AlreadyDone)
	}
	live := 0
	for _, k := range keys {
		if k.Status == laki.StatusActive {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d live rotator keys, want 1", live)
	}
	var ok, failed int
	for _, e := range h.rec.Events() {
		if e.Secret == ms.Name && e.Step == events.StepRotation {
			switch e.Outcome {
			case events.OutcomeSucceeded:
				ok++
			case events.OutcomeFailed:
				failed++
			}
		}
	}
	if ok != 1 || failed != 0 {
		t.Fatalf("announced %d successes and %d failures, want 1 and 0", ok, failed)
	}
}

// The late put of a scheduled slot on moto (where a put of an existing
// version strips AWSCURRENT, see MOTO.md): replica B's create is a replay of
// A's, and a put B sent would land after A promoted. No check before the put
// can close that window; B, not the owner of the create, waits and follows
// instead of putting.
func TestMotoLatePutOfAReplayedCreateNeverLands(t *testing.T) {
	b := newMotoBatch(t, 1, 1, nil)
	job := b.jobs[0]
	known, err := b.store.Describe(context.Background(), job.Secret.Name)
	if err != nil {
		t.Fatal(err)
	}
	job.Known, job.Trigger = &known, scheduled("2026-06-01T09:00:00Z")
	res, held, err := lateSlotPut(t, b.h, b.store, job, func(c *rotator.Config) {
		c.Issuers = b.src
		c.Verifier = webhooksig.Verifier{Clock: b.h.fx.Clock}
	})
	checkOneRotation(t, b.h, b.store, job.Secret, b.h.rotatorKeysOf(job.Secret.MasterMerchantID, job.Secret.Name), res, held, err)
}

// The same race on the local store, which behaves as AWS does (a repeated
// put with the same token and value is a no-op): the outcome is the same.
func TestLatePutOfAReplayedCreateOnAWSSemantics(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	ls, err := localstore.Open("", localstore.WithClock(h.fx.Clock))
	if err != nil {
		t.Fatal(err)
	}
	v := h.seedCredential("svc/late-put", laki.Sandbox, apiScopes)
	if _, err := ls.Create(ctx, "svc/late-put", "", nil, &v); err != nil {
		t.Fatal(err)
	}
	ms := inventory.ManagedSecret{Name: "svc/late-put", Kind: inventory.KindAPIKey, Environment: laki.Sandbox,
		MasterMerchantID: h.fx.MasterMerchantID, Policy: "p"}
	known, err := ls.Describe(ctx, ms.Name)
	if err != nil {
		t.Fatal(err)
	}
	job := rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("2026-06-01T09:00:00Z"), Known: &known}
	res, held, err := lateSlotPut(t, h, ls, job, nil)
	checkOneRotation(t, h, ls, ms, h.rotatorKeys(laki.Sandbox, ms.Name), res, held, err)
}

// A replayed create waits for its owner's put in the queue, not in a
// worker: with one worker, another secret's rotation runs to its end
// during the wait (the injected clock does not move meanwhile). Once the
// wait is over, the job goes on from where it was: no owner put the
// version (it was killed after its create), so it adopts the key the
// replay handed back. The rotation starts and succeeds once.
func TestReplayedCreateWaitsInTheQueueNotInAWorker(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	replayed := h.seedKey("svc/replayed", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	other := h.seedKey("svc/other", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	job := func(ms inventory.ManagedSecret) rotator.Job {
		return rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("2026-06-01T09:00:00Z")}
	}
	made := ownerKilledAfterCreate(t, h, job(replayed))
	startedBefore := len(h.eventsFor(replayed.Name, events.StepRotation, events.OutcomeStarted))
	e := h.engine(func(c *rotator.Config) { c.Workers = 1 })
	waiting := submitReplayed(t, h, e, job(replayed))
	select {
	case o := <-e.Submit(ctx, job(other)):
		if o.Err != nil || o.Result.Outcome != rotator.Rotated {
			t.Fatalf("the other secret's rotation during the wait: %s %v", o.Result.Outcome, o.Err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the only worker was held by the wait: the other secret did not rotate")
	}
	select {
	case o := <-waiting:
		t.Fatalf("the replayed rotation ended before its wait was over: %s %v", o.Result.Outcome, o.Err)
	default:
	}
	h.fx.Clock.Advance(rotator.DefaultReplaySettle)
	var o rotator.JobOutcome
	select {
	case o = <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the replayed rotation did not go on after its wait")
	}
	if o.Err != nil || o.Result.Outcome != rotator.Rotated || o.Result.KeyID != made[0].ID {
		t.Fatalf("after the wait: %s key %s, %v; want rotated, adopting %s", o.Result.Outcome, o.Result.KeyID, o.Err, made[0].ID)
	}
	if cur := h.current(replayed.Name); cur.KeyID != made[0].ID {
		t.Errorf("AWSCURRENT holds %s, want the adopted key %s", cur.KeyID, made[0].ID)
	}
	if n := len(h.rotatorKeys(laki.Sandbox, replayed.Name)); n != 1 {
		t.Errorf("%d rotator keys for %s, want 1 (the replay made none)", n, replayed.Name)
	}
	if n := len(h.eventsFor(replayed.Name, events.StepRotation, events.OutcomeStarted)) - startedBefore; n != 1 {
		t.Errorf("the requeued rotation sent %d started events, want 1", n)
	}
	if n := len(h.eventsFor(replayed.Name, events.StepRotation, events.OutcomeSucceeded)); n != 1 {
		t.Errorf("%d rotation succeeded events for %s, want 1", n, replayed.Name)
	}
}

// ownerKilledAfterCreate runs job on an engine killed right after its
// create (the owner of the create, gone before its put) and returns the
// keys it made.
func ownerKilledAfterCreate(t *testing.T, h *harness, job rotator.Job) []laki.APIKey {
	t.Helper()
	killed := h.engine(func(c *rotator.Config) {
		c.Hooks.AfterStep = func(name string, s rotator.Boundary) error {
			if s == rotator.AfterCreate {
				return errors.New("killed")
			}
			return nil
		}
	})
	if _, err := killed.RotateJob(context.Background(), job); !errors.Is(err, rotator.ErrAborted) {
		t.Fatalf("the owner's rotation: %v, want it killed after its create", err)
	}
	made := h.rotatorKeys(job.Secret.Environment, job.Secret.Name)
	if len(made) != 1 {
		t.Fatalf("%d keys made by the killed owner, want 1", len(made))
	}
	return made
}

// submitReplayed queues job, whose create is a replay, and returns once it
// waits on the clock.
func submitReplayed(t *testing.T, h *harness, e *rotator.Engine, job rotator.Job) <-chan rotator.JobOutcome {
	t.Helper()
	out := e.Submit(context.Background(), job)
	deadline := time.Now().Add(10 * time.Second)
	for h.fx.Clock.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the replayed create never started its wait")
		}
		time.Sleep(time.Millisecond)
	}
	return out
}

// Closing the engine while a requeued job waits ends the job as closed
// (its credential stays unstored, for a restart's replayed create to
// adopt) and Close returns.
func TestCloseEndsAJobWaitingInTheQueue(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/replayed", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	job := rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("2026-06-01T09:00:00Z")}
	ownerKilledAfterCreate(t, h, job)
	e := h.engine(func(c *rotator.Config) { c.Workers = 1 })
	waiting := submitReplayed(t, h, e, job)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		e.Close()
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung on a job waiting in the queue")
	}
	if o := <-waiting; !errors.Is(o.Err, rotator.ErrClosed) {
		t.Fatalf("the waiting job ended with %v, want %v", o.Err, rotator.ErrClosed)
	}
	if n := len(h.rotatorKeys(laki.Sandbox, ms.Name)); n != 1 {
		t.Errorf("%d rotator keys, want 1 (nothing more made)", n)
	}
}
