package daemon_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// A compromise asked for by a person, killed right after LakiConnect made
// the new key and before anything was stored: the restart finishes it as a
// compromise (the exposed key ends with zero grace), adopts the key made
// before the kill (no orphan), and the audit names the person and reason.
func TestCompromiseKilledBeforeItsPutStaysACompromise(t *testing.T) {
	w := newWorld(t, worldOptions{})
	old := w.current(secCheckout)
	stID := compromiseKilledAfter(w, rotator.AfterCreate, "key pasted in a ticket")
	made := keysFor(w, secCheckout)
	if len(made) != 2 {
		t.Fatalf("%d keys for %s after the kill; want the old one and the one made before it", len(made), secCheckout)
	}
	if w.current(secCheckout).KeyID != old.KeyID {
		t.Fatal("the kill before the put changed AWSCURRENT")
	}

	r := w.run(w.build(rotator.Hooks{}), nil)
	w.eventually("the restart finishes the compromise", func() bool { return w.current(secCheckout).KeyID != old.KeyID })
	cur := w.current(secCheckout)
	w.remember(cur.Secret)
	if n := len(keysFor(w, secCheckout)); n != 2 {
		t.Errorf("%d keys for %s; want 2: the key made before the kill is adopted, no other made", n, secCheckout)
	}
	if k, _ := w.fix.Sim.Key(cur.KeyID); k.Metadata[rotator.MetaVersion] != rotator.VersionID(w.arn(secCheckout), stID) {
		t.Errorf("current key %s belongs to version %s, want the trigger's", cur.KeyID, k.Metadata[rotator.MetaVersion])
	}
	w.eventually("the exposed key ends at once", func() bool {
		k, _ := w.fix.Sim.Key(old.KeyID)
		return k.Status == laki.StatusRevoked
	})
	var done []events.Event
	w.eventually("the rotation is reported", func() bool {
		done = eventsWhere(r.rec, func(e events.Event) bool {
			return e.Secret == secCheckout && e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded
		})
		return len(done) > 0
	})
	if d := done[0]; len(done) != 1 || d.Cause != events.CauseCompromise || d.Actor != "alice" || d.Reason != "key pasted in a ticket" || d.TriggerID != stID {
		t.Errorf("rotation after restart reported as %+v; want the compromise asked by alice", done)
	}
}

// compromiseKilledAfter has alice ask a compromise rotation of secCheckout
// of a service killed after step (nothing more written, no failure
// recorded), and returns the trigger's id once that service has stopped.
func compromiseKilledAfter(w *world, step rotator.Boundary, reason string) string {
	w.t.Helper()
	ctx := context.Background()
	svc := w.build(crashAfter(secCheckout, step))
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		w.t.Fatal(err)
	}
	st, err := svc.Daemon.Trigger(ctx, trigger.Request{Secret: secCheckout, Cause: events.CauseCompromise,
		Actor: "alice", Reason: reason, Source: events.SourceHTTP})
	if err != nil {
		w.t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := svc.Daemon.WaitTrigger(wctx, st.ID, nil); err != nil {
		w.t.Fatal(err)
	}
	_ = svc.Shutdown(ctx)
	return st.ID
}

// An api_key.exposed acted on, then delivered again after a restart: the
// second daemon recognises it from the store and does nothing (no alert,
// no rotation), answering it as a duplicate.
func TestExposedRedeliveredAfterRestartIsANoOp(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	old := w.current(secCheckout)
	data, _ := json.Marshal(lakiconnect.APIKeyExposedData{KeyID: old.KeyID, FoundIn: "public_repository"})
	ev := lakiconnect.Event{ID: "evt_000000000000000000000001", Type: laki.EventAPIKeyExposed, Environment: laki.Sandbox,
		MasterMerchantID: w.merchant, IdempotencyKey: "idem-1", Data: data}

	first := w.run(w.build(rotator.Hooks{}), nil)
	if dup, err := first.svc.Daemon.RecordSecurityEvent(ctx, ev); err != nil || dup {
		t.Fatalf("first delivery: duplicate %v, %v", dup, err)
	}
	if err := first.svc.Daemon.HandleSecurityEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	w.eventually("the exposed key is replaced", func() bool { return w.current(secCheckout).KeyID != old.KeyID })
	w.remember(w.current(secCheckout).Secret)
	first.stop()

	second := w.run(w.build(rotator.Hooks{}), nil)
	dup, err := second.svc.Daemon.RecordSecurityEvent(ctx, ev)
	if err != nil || !dup {
		t.Fatalf("redelivery after restart: duplicate %v, %v; want a duplicate", dup, err)
	}
	if err := second.svc.Daemon.HandleSecurityEvent(ctx, ev); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if got := eventsWhere(second.rec, func(e events.Event) bool {
		return e.Step == events.StepAlert || (e.Step == events.StepRotation && e.Outcome != events.OutcomeStarted) || e.Step == events.StepTrigger
	}); len(got) != 0 {
		t.Errorf("the redelivery after restart raised %+v", got)
	}
	if n := len(keysFor(w, secCheckout)); n != 2 {
		t.Errorf("%d keys for %s; want 2", n, secCheckout)
	}
}

// A compromise during a LakiConnect outage: the rotation is tried again and
// again (it does not give up after the engine's attempts), an escalating
// critical alert fires while it is not done, and once LakiConnect is back
// the exposed key ends.
func TestCompromiseDuringOutageIsActedOnUntilDone(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	old := w.current(secCheckout)
	r := w.run(w.build(rotator.Hooks{}), nil)
	if err := w.fix.Sim.InjectFault(lakisim.Fault{PathPrefix: "/api_keys", Status: 503}); err != nil {
		t.Fatal(err)
	}
	st, err := r.svc.Daemon.Trigger(ctx, trigger.Request{Secret: secCheckout, Cause: events.CauseCompromise,
		Actor: "alice", Reason: "leaked", Source: events.SourceHTTP})
	if err != nil {
		t.Fatal(err)
	}
	w.eventually("an escalating alert fires while it is not done", func() bool {
		return len(eventsWhere(r.rec, func(e events.Event) bool {
			return e.Step == events.StepAlert && e.Severity == events.SeverityCritical && e.Details["reason"] == "emergency_not_done" && e.TriggerID == st.ID
		})) > 0
	})
	if s, _ := r.svc.Daemon.TriggerStatus(st.ID); s.Finished() {
		t.Fatalf("the compromise trigger finished (%s) during the outage", s.State)
	}
	w.fix.Sim.ClearFaults()
	w.eventually("the exposed key ends once LakiConnect is back", func() bool {
		k, _ := w.fix.Sim.Key(old.KeyID)
		return k.Status == laki.StatusRevoked
	})
	w.remember(w.current(secCheckout).Secret)
	w.eventually("the trigger succeeds", func() bool {
		s, _ := r.svc.Daemon.TriggerStatus(st.ID)
		return s.State == trigger.StateSucceeded
	})
}

// The end of an old credential is confirmed once, not again by every
// retire pass, whether it ended after its grace or at once (a compromise).
func TestRetirePassReportsEachEndOnce(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	r := w.run(w.build(rotator.Hooks{}), nil)
	st, err := r.svc.Daemon.Trigger(ctx, trigger.Request{Secret: secCheckout, Cause: events.CauseManual, Actor: "alice", Source: events.SourceHTTP})
	if err != nil {
		t.Fatal(err)
	}
	w.waitTrigger(r, st.ID)
	cst, err := r.svc.Daemon.Trigger(ctx, trigger.Request{Secret: secReporting, Cause: events.CauseCompromise, Actor: "alice", Reason: "leak", Source: events.SourceHTTP})
	if err != nil {
		t.Fatal(err)
	}
	w.waitTrigger(r, cst.ID)
	w.remember(w.current(secCheckout).Secret)
	w.remember(w.current(secReporting).Secret)
	w.clk.Advance(2 * time.Hour) // past checkout's manual grace
	if err := r.svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r.svc.Daemon.RetirePass(ctx)
	}
	count := func(name string) int {
		return len(eventsWhere(r.rec, func(e events.Event) bool {
			return e.Secret == name && e.Step == events.StepRetire && e.Outcome == events.OutcomeSucceeded
		}))
	}
	if n := count(secCheckout); n != 1 {
		t.Errorf("%d retire successes for %s after three passes, want 1", n, secCheckout)
	}
	if n := count(secReporting); n != 1 {
		t.Errorf("%d retire successes for %s (ended at once by its compromise), want 1", n, secReporting)
	}
}

// Two asks to rotate one secret made at the same moment (two people, or
// one person asking two replicas) converge on one rotation: the ask that
// starts after both were kept joins the one the store names, and the other
// finds it done. No second key is made.
func TestTwoAsksAtOnceMakeOneRotation(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := rotator.Hooks{AfterStep: func(name string, s rotator.Boundary) error {
		if name == secCheckout && s == rotator.AfterTest {
			once.Do(func() { close(held); <-release })
		}
		return nil
	}}
	svc := w.build(hold)
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	ask := func(who string) string {
		st, err := svc.Daemon.Trigger(ctx, trigger.Request{Secret: secCheckout, Cause: events.CauseManual, Actor: who, Reason: "r", Source: events.SourceHTTP})
		if err != nil {
			t.Fatal(err)
		}
		return st.ID
	}
	first := ask("carol") // held at its test while the two asks arrive
	select {
	case <-held:
	case <-time.After(15 * time.Second):
		t.Fatal("the first rotation never reached its test")
	}
	// Well after carol's ask: carol's rotation, whose key was made before
	// they asked, does not answer them.
	w.clk.Advance(time.Minute)
	a, b := ask("alice"), ask("bob")
	close(release)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for _, id := range []string{first, a, b} {
		st, err := svc.Daemon.WaitTrigger(wctx, id, nil)
		if err != nil || st.State != trigger.StateSucceeded {
			t.Fatalf("trigger %s: %s %v %+v", id, st.State, err, st.Secrets)
		}
	}
	_ = svc.Shutdown(ctx)
	w.remember(w.current(secCheckout).Secret)
	// The seeded key, carol's rotation, and one rotation for alice and bob.
	if n := len(keysFor(w, secCheckout)); n != 3 {
		t.Errorf("%d keys for %s; want 3: the two simultaneous asks made one rotation", n, secCheckout)
	}
}

// Killed between the promote and the end of the old credential: the store
// alone cannot tell that rotation from a finished one, so the trigger's
// intent stays open until the end was asked for. The restart ends the
// exposed key with zero grace and reports the compromise once.
func TestCompromiseKilledAfterPromoteEndsTheExposedKey(t *testing.T) {
	w := newWorld(t, worldOptions{})
	old := w.current(secCheckout)
	stID := compromiseKilledAfter(w, rotator.AfterPromote, "leaked")
	if k, _ := w.fix.Sim.Key(old.KeyID); k.Status != laki.StatusActive || w.current(secCheckout).KeyID == old.KeyID {
		t.Fatalf("before the restart: old key %s, current %s; want promoted, old key still active", k.Status, w.current(secCheckout).KeyID)
	}
	w.remember(w.current(secCheckout).Secret)

	r := w.run(w.build(rotator.Hooks{}), nil)
	w.eventually("the exposed key ends at once", func() bool {
		k, _ := w.fix.Sim.Key(old.KeyID)
		return k.Status == laki.StatusRevoked
	})
	var done []events.Event
	w.eventually("the compromise is reported", func() bool {
		done = eventsWhere(r.rec, func(e events.Event) bool {
			return e.Secret == secCheckout && e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded
		})
		return len(done) > 0
	})
	if len(done) != 1 || done[0].Cause != events.CauseCompromise || done[0].TriggerID != stID || done[0].Actor != "alice" {
		t.Errorf("reported as %+v; want the compromise once", done)
	}
	// Restarting again changes nothing: the intent is done.
	r.stop()
	again := w.run(w.build(rotator.Hooks{}), nil)
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if n := len(eventsWhere(again.rec, func(e events.Event) bool { return e.Step == events.StepRotation })); n != 0 {
		t.Errorf("a second restart ran %d rotation events", n)
	}
}

// A scheduled rotation killed between its promote and the end of the old
// key: the restart schedules the old key's end (the scheduled grace) at once.
func TestScheduledKilledAfterPromoteEndsTheOldKeyAtRestart(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	old := w.current(secReporting)
	w.clk.Advance(25 * time.Hour) // a daily slot passes with the daemon down
	svc := w.build(crashAfter(secReporting, rotator.AfterPromote))
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	svc.Daemon.StartupPass(ctx) // runs the missed slot; killed after its promote
	w.eventually("the slot's rotation is promoted", func() bool { return w.current(secReporting).KeyID != old.KeyID })
	time.Sleep(50 * time.Millisecond)
	_ = svc.Shutdown(ctx)
	w.remember(w.current(secReporting).Secret)
	if k, _ := w.fix.Sim.Key(old.KeyID); k.Status != laki.StatusActive || k.ExpiresAt != nil {
		t.Fatalf("before the restart the old key is %s (ends %v); want active with no end", k.Status, k.ExpiresAt)
	}
	w.run(w.build(rotator.Hooks{}), nil)
	w.eventually("the old key gets its end", func() bool {
		k, _ := w.fix.Sim.Key(old.KeyID)
		return k.ExpiresAt != nil || k.Status == laki.StatusRevoked
	})
}

// replicaAsk asks r (a replica) the manual rotation of secCheckout that
// every replica is asked, and returns the trigger's id.
func replicaAsk(t *testing.T, r *running, cause events.Cause) string {
	t.Helper()
	st, err := r.svc.Daemon.Trigger(context.Background(), trigger.Request{Secret: secCheckout, Cause: cause,
		Actor: "token:ops", Reason: "the same ask to every replica", Source: events.SourceHTTP})
	if err != nil {
		t.Fatal(err)
	}
	return st.ID
}

// waitSucceeded waits, without moving the clock, until the replica's trigger
// has succeeded.
func waitSucceeded(t *testing.T, r *running, id string) {
	t.Helper()
	wctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := r.svc.Daemon.WaitTrigger(wctx, id, nil)
	if err != nil || st.State != trigger.StateSucceeded {
		t.Fatalf("trigger %s: %s %v %+v", id, st.State, err, st.Secrets)
	}
}

// rotationEnds are the rotation's end events of secCheckout a replica sent.
func rotationEnds(r *running) (succeeded, skipped []events.Event) {
	for _, e := range eventsWhere(r.rec, func(e events.Event) bool { return e.Secret == secCheckout && e.Step == events.StepRotation }) {
		switch e.Outcome {
		case events.OutcomeSucceeded:
			succeeded = append(succeeded, e)
		case events.OutcomeSkipped:
			skipped = append(skipped, e)
		}
	}
	return succeeded, skipped
}

// The same ask made of two replicas, the second processed only after the
// first replica's rotation had finished (its intent marked done, the
// second's intent written over the first's): one rotation, reported once;
// the second replica says it joined. A compromise asked the same way
// always rotates again: the exposed key may be the one just made.
func TestSameAskOfAReplicaThatFinishedFirstIsAnsweredByItsRotation(t *testing.T) {
	w := newWorld(t, worldOptions{})
	a, b := w.run(w.build(rotator.Hooks{}), nil), w.run(w.build(rotator.Hooks{}), nil)
	before := len(keysFor(w, secCheckout))

	first := replicaAsk(t, a, events.CauseManual)
	waitSucceeded(t, a, first)
	second := replicaAsk(t, b, events.CauseManual)
	waitSucceeded(t, b, second)
	w.remember(w.current(secCheckout).Secret)
	if n := len(keysFor(w, secCheckout)) - before; n != 1 {
		t.Errorf("%d keys made for %s by the same ask of two replicas, want 1", n, secCheckout)
	}
	okA, _ := rotationEnds(a)
	okB, skippedB := rotationEnds(b)
	if len(okA) != 1 || len(okB) != 0 {
		t.Errorf("rotation succeeded reported %d times by the first replica and %d by the second, want 1 and 0", len(okA), len(okB))
	}
	if len(skippedB) != 1 || skippedB[0].Details["joined"] != first || skippedB[0].TriggerID != second {
		t.Errorf("the second replica reported %+v; want its trigger answered by (joined) the first's rotation", skippedB)
	}
	// A later compromise asked of both the same way rotates twice.
	exposed := w.current(secCheckout).KeyID
	waitSucceeded(t, a, replicaAsk(t, a, events.CauseCompromise))
	w.remember(w.current(secCheckout).Secret)
	made := w.current(secCheckout).KeyID
	waitSucceeded(t, b, replicaAsk(t, b, events.CauseCompromise))
	w.remember(w.current(secCheckout).Secret)
	if n := len(keysFor(w, secCheckout)) - before; n != 3 {
		t.Errorf("%d keys made in all, want 3: a compromise is never answered by another's rotation", n)
	}
	for _, id := range []string{exposed, made} {
		if k, _ := w.fix.Sim.Key(id); k.Status != laki.StatusRevoked {
			t.Errorf("key %s is %s after the compromises, want revoked", id, k.Status)
		}
	}
}

// The same ask made of two replicas where the second one's intent is
// written over the first's while the first is already rotating (its key
// made, not yet stored): right before its put, the first finds the second
// ask in the store, ends its own unused key and follows the second's
// rotation. One new live key, one rotation reported, none failed.
func TestSameAskKeptOverARotationInFlightConvergesOnOne(t *testing.T) {
	w := newWorld(t, worldOptions{})
	hold := func(step rotator.Boundary) (rotator.Hooks, chan struct{}, chan struct{}) {
		held, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		return rotator.Hooks{AfterStep: func(name string, s rotator.Boundary) error {
			if name == secCheckout && s == step {
				once.Do(func() { close(held); <-release })
			}
			return nil
		}}, held, release
	}
	waitHeld := func(what string, held chan struct{}) {
		select {
		case <-held:
		case <-time.After(15 * time.Second):
			t.Fatalf("%s never got there", what)
		}
	}
	hooksA, heldA, releaseA := hold(rotator.AfterCreate)
	hooksB, heldB, releaseB := hold(rotator.AfterPut)
	a, b := w.run(w.build(hooksA), nil), w.run(w.build(hooksB), nil)
	before := keysFor(w, secCheckout)

	first := replicaAsk(t, a, events.CauseManual)
	waitHeld("the first replica's create", heldA)
	second := replicaAsk(t, b, events.CauseManual)
	waitHeld("the second replica's put", heldB)
	close(releaseA) // its put is next: it must find the second ask instead
	time.Sleep(50 * time.Millisecond)
	close(releaseB)
	w.waitTrigger(a, first)
	w.waitTrigger(b, second)
	w.remember(w.current(secCheckout).Secret)

	var live, ended int
	for _, k := range keysFor(w, secCheckout) {
		if slices.ContainsFunc(before, func(o laki.APIKey) bool { return o.ID == k.ID }) {
			continue
		}
		switch k.Status {
		case laki.StatusActive:
			live++
		case laki.StatusRevoked:
			ended++
		}
	}
	if live != 1 || ended != 1 {
		t.Errorf("new keys: %d live and %d ended, want 1 live (the rotation's) and 1 ended (the first replica's, unused)", live, ended)
	}
	okA, skippedA := rotationEnds(a)
	okB, _ := rotationEnds(b)
	if len(okA)+len(okB) != 1 {
		t.Errorf("rotation succeeded reported %d times (first replica %d, second %d), want once", len(okA)+len(okB), len(okA), len(okB))
	}
	if len(skippedA) != 1 || skippedA[0].Details["joined"] != second {
		t.Errorf("the first replica reported %+v; want it to have joined the second ask", skippedA)
	}
	for _, r := range []*running{a, b} {
		if failed := eventsWhere(r.rec, func(e events.Event) bool { return e.Outcome == events.OutcomeFailed }); len(failed) > 0 {
			t.Errorf("a replica reported failures: %+v", failed)
		}
	}
}

// The same ask made of a second replica a few seconds after the first
// replica's rotation had finished is a new ask, though within the moment
// that tells one ask delivered to several replicas: it rotates again.
func TestAskMadeAfterAnotherReplicasRotationFinishedRotatesAgain(t *testing.T) {
	w := newWorld(t, worldOptions{})
	a, b := w.run(w.build(rotator.Hooks{}), nil), w.run(w.build(rotator.Hooks{}), nil)
	before := len(keysFor(w, secCheckout))
	waitSucceeded(t, a, replicaAsk(t, a, events.CauseManual))
	w.remember(w.current(secCheckout).Secret)
	w.clk.Advance(5 * time.Second)
	waitSucceeded(t, b, replicaAsk(t, b, events.CauseManual))
	w.remember(w.current(secCheckout).Secret)
	if n := len(keysFor(w, secCheckout)) - before; n != 2 {
		t.Errorf("%d keys made, want 2: the later ask is a rotation of its own", n)
	}
	if okB, _ := rotationEnds(b); len(okB) != 1 {
		t.Errorf("the second replica reported %d rotations succeeded, want 1", len(okB))
	}
}
