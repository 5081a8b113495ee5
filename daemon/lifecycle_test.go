package daemon_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/laki"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// crashRotation runs one manual rotation of name in a service whose engine
// stops after step, as a process killed there would, and shuts it down.
func crashRotation(t *testing.T, w *world, name string, step rotator.Boundary) {
	t.Helper()
	ctx := context.Background()
	svc := w.build(crashAfter(name, step))
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Daemon.Trigger(ctx, trigger.Request{Secret: name, Cause: events.CauseManual, Actor: "test", Source: events.SourceCLI})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	final, err := svc.Daemon.WaitTrigger(wctx, st.ID, nil)
	if err != nil {
		t.Fatalf("waiting for the crashing rotation: %v", err)
	}
	if final.State != trigger.StateFailed || !errorsMention(final, "simulated crash") {
		t.Fatalf("crashing rotation ended %s: %+v; want failed by the simulated crash", final.State, final.Secrets)
	}
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

func errorsMention(st trigger.Status, sub string) bool {
	for _, s := range st.Secrets {
		if s.Error != "" && strings.Contains(s.Error, sub) {
			return true
		}
	}
	return false
}

func TestStartupResumesARotationLeftInFlight(t *testing.T) {
	w := newWorld(t, worldOptions{})
	old := w.current(secCheckout)
	crashRotation(t, w, secCheckout, rotator.AfterPut)

	pending := w.stage(secCheckout, secretstore.StagePending)
	w.remember(pending.Secret)
	if pending.KeyID == old.KeyID {
		t.Fatalf("the crash left no new AWSPENDING version (pending holds the current key %s)", old.KeyID)
	}
	if got := w.current(secCheckout).KeyID; got != old.KeyID {
		t.Fatalf("the crash after put already promoted %s", got)
	}

	// A fresh daemon on the same store and LakiConnect finishes it.
	r := w.run(w.build(rotator.Hooks{}), nil)
	w.eventually("the start-up pass promotes the pending key", func() bool {
		return w.current(secCheckout).KeyID == pending.KeyID
	})
	if n := len(keysFor(w, secCheckout)); n != 2 {
		t.Errorf("%d keys exist for %s; want 2 (the old one and the one the crash left): no duplicate", n, secCheckout)
	}
	if prev := w.stage(secCheckout, secretstore.StagePrevious); prev.KeyID != old.KeyID {
		t.Errorf("AWSPREVIOUS holds %s, want the old key %s", prev.KeyID, old.KeyID)
	}
	var done []events.Event
	w.eventually("the resumed rotation reports success", func() bool {
		done = eventsWhere(r.rec, func(e events.Event) bool {
			return e.Secret == secCheckout && e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded
		})
		return len(done) > 0
	})
	// The restart finishes the rotation as it was asked for: the same cause,
	// trigger and requester (kept on the secret before it was accepted).
	if len(done) != 1 || done[0].Cause != events.CauseManual || done[0].Actor != "test" || done[0].Source != events.SourceCLI ||
		done[0].TriggerID == "" || done[0].VersionID != rotator.VersionID(w.arn(secCheckout), done[0].TriggerID) {
		t.Errorf("rotations of %s after restart = %+v; want one, under the original manual trigger by test", secCheckout, done)
	}
	// Nothing else was in flight or overdue.
	if got := w.current(secReporting); len(keysFor(w, secReporting)) != 1 {
		t.Errorf("%s rotated at start-up (now %s) though it was neither in flight nor overdue", secReporting, got.KeyID)
	}
}

func TestStartupRotatesOverdueSecretsOnly(t *testing.T) {
	// reporting may be 90 days old; the others 30.
	w := newWorld(t, worldOptions{policies: map[string]string{"reporting.yaml": `name: reporting
kind: api_key
scopes: [reports:read]
environments: [sandbox]
max_age: 90d
schedule: "0 4 1 * *"
grace: {scheduled: 1h, personnel: 0s, compromise: 0s}
`}})
	before := map[string]secretstore.Credential{}
	for _, n := range []string{secCheckout, secReporting, secWebhook} {
		before[n] = w.current(n)
	}
	// 31 days pass with no daemon running.
	w.clk.Advance(31 * 24 * time.Hour)
	r := w.run(w.build(rotator.Hooks{}), nil)
	startupRotations := func(name string) []events.Event {
		return eventsWhere(r.rec, func(e events.Event) bool {
			return e.Secret == name && e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded &&
				e.Source == events.SourceStartup && e.Cause == events.CauseScheduled
		})
	}
	w.eventually("the overdue secrets rotate", func() bool {
		return len(startupRotations(secCheckout)) > 0 && len(startupRotations(secWebhook)) > 0
	})
	if w.current(secCheckout).KeyID == before[secCheckout].KeyID || w.current(secWebhook).SecretID == before[secWebhook].SecretID {
		t.Errorf("a start-up rotation reported success but AWSCURRENT did not change")
	}
	// reporting is 31 days old (max 90), but its monthly slot was due while
	// the daemon was down: that slot runs at start-up, under its own cause.
	w.eventually("the missed slot of reporting runs", func() bool { return len(startupRotations(secReporting)) > 0 })
	if got := w.current(secReporting).KeyID; got == before[secReporting].KeyID {
		t.Errorf("%s missed its monthly slot while the daemon was down and was not rotated at start-up", secReporting)
	}
	for _, n := range []string{secCheckout, secWebhook, secReporting} {
		if got := len(startupRotations(n)); got != 1 {
			t.Errorf("%d start-up rotations of %s, want 1", got, n)
		}
	}
	assertKeyScopes(t, w, w.current(secCheckout).KeyID, checkoutScopes)
}

func TestScheduledSlotRotatesEachSecretOfThePolicyOnce(t *testing.T) {
	w := newWorld(t, worldOptions{})
	before := map[string]string{}
	for _, n := range []string{secCheckout, secReporting, secWebhook} {
		c := w.current(n)
		before[n] = c.KeyID + c.SecretID
	}
	// Two replicas on one store and one LakiConnect.
	r1 := w.run(w.build(rotator.Hooks{}), w.ln)
	r2 := w.run(w.build(rotator.Hooks{}), nil)

	// The checkout slot is at 03:00 UTC; reporting's at 04:00, the webhook's at 05:00.
	now := w.clk.Now()
	slot := time.Date(now.Year(), now.Month(), now.Day()+1, 3, 0, 0, 0, time.UTC)
	// Stop just short of the slot: a scheduler that registers its wait late
	// still aims at this slot; eventually then moves the clock across it.
	w.clk.Set(slot.Add(-2 * time.Second))
	time.Sleep(50 * time.Millisecond)
	w.eventually("both replicas fire the checkout slot", func() bool {
		for _, r := range []*running{r1, r2} {
			if len(eventsWhere(r.rec, func(e events.Event) bool {
				return e.Secret == secCheckout && e.Cause == events.CauseScheduled && e.Step == events.StepRotation && e.Outcome != events.OutcomeStarted
			})) == 0 {
				return false
			}
		}
		return true
	})
	newKey := w.current(secCheckout)
	w.remember(newKey.Secret)
	if newKey.KeyID+newKey.SecretID == before[secCheckout] {
		t.Fatalf("the checkout slot did not rotate %s", secCheckout)
	}
	// Let any straggling retry run before counting.
	for range 20 {
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if n := len(keysFor(w, secCheckout)); n != 2 {
		t.Errorf("%d keys exist for %s after one slot fired on two replicas; want 2 (old and one new)", n, secCheckout)
	}
	if w.current(secCheckout).KeyID != newKey.KeyID {
		t.Errorf("AWSCURRENT of %s moved again after the slot", secCheckout)
	}
	assertKeyScopes(t, w, newKey.KeyID, checkoutScopes)
	for _, n := range []string{secReporting, secWebhook} {
		c := w.current(n)
		if c.KeyID+c.SecretID != before[n] {
			t.Errorf("%s rotated in the checkout slot", n)
		}
	}
}

func TestSecurityEventsEndToEnd(t *testing.T) {
	w := newWorld(t, worldOptions{securityWebhook: true, deliverTwice: true})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	old := w.current(secCheckout)

	start := time.Now()
	eventID, err := w.fix.Sim.ExposeKey(old.KeyID, "public_repository", "https://code.example/leak")
	if err != nil {
		t.Fatal(err)
	}
	w.eventually("the exposed key is replaced", func() bool {
		if time.Since(start) > 5*time.Second {
			t.Logf("deliveries: %+v\nlogs:\n%s", w.fix.Sim.Deliveries(), w.logs.String())
			t.FailNow()
		}
		return w.current(secCheckout).KeyID != old.KeyID
	})
	newKey := w.current(secCheckout)
	w.remember(newKey.Secret)
	w.eventually("the exposed key ends", func() bool {
		k, _ := w.fix.Sim.Key(old.KeyID)
		return k.Status == laki.StatusRevoked || (k.ExpiresAt != nil && !k.ExpiresAt.After(w.clk.Now()))
	})
	w.eventually("the event is delivered twice", func() bool {
		n := 0
		for _, d := range w.fix.Sim.Deliveries() {
			if d.EventID == eventID && d.Succeeded() {
				n++
			}
		}
		return n >= 2
	})
	for range 20 { // give the redelivery every chance to do something
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if n := len(keysFor(w, secCheckout)); n != 2 {
		t.Errorf("%d keys exist for %s after one exposure delivered twice; want 2", n, secCheckout)
	}
	compromise := eventsWhere(r.rec, func(e events.Event) bool {
		return e.Secret == secCheckout && e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded && e.Cause == events.CauseCompromise
	})
	if len(compromise) != 1 {
		t.Errorf("%d compromise rotations of %s succeeded, want 1", len(compromise), secCheckout)
	} else if compromise[0].Source != events.SourceLakiEvent {
		t.Errorf("compromise rotation source %s, want %s", compromise[0].Source, events.SourceLakiEvent)
	}
	// The third door: one event delivered twice is one accepted record,
	// made by the daemon, with the event as the actor.
	accepted := eventsWhere(r.rec, func(e events.Event) bool {
		return e.Step == events.StepTrigger && e.Outcome == events.OutcomeSucceeded && e.Source == events.SourceLakiEvent
	})
	if len(accepted) != 1 || accepted[0].Actor != "lakiconnect:"+eventID {
		t.Errorf("accepted security-event triggers: %+v; want exactly 1 with actor lakiconnect:%s", accepted, eventID)
	}

	// Someone revokes the key now in AWSCURRENT in the dashboard.
	if err := w.fix.Sim.RevokeKey(newKey.KeyID, "revoked_by_dashboard"); err != nil {
		t.Fatal(err)
	}
	w.eventually("a critical alert names the revoked current key", func() bool {
		return len(eventsWhere(r.rec, func(e events.Event) bool {
			return e.Step == events.StepAlert && e.Severity == events.SeverityCritical && e.Secret == secCheckout &&
				e.KeyID == newKey.KeyID && e.Details["reason"] == "current_key_revoked"
		})) == 1
	})
	r.stop()
	assertNoSecrets(t, "logs", w.logs.String(), w.allStoredSecrets())
}

func TestPlanShowsInFlightOverdueDueAndScopeChanges(t *testing.T) {
	// checkout's policy no longer allows customers:read; the webhook may be 10 days old.
	w := newWorld(t, worldOptions{policies: map[string]string{
		"checkout.yaml": `name: checkout
kind: api_key
scopes: [payments:read, payments:write]
environments: [sandbox]
max_age: 30d
schedule: "0 3 * * *"
grace: {scheduled: 1h, personnel: 0s, compromise: 0s}
`,
		"webhooks.yaml": `name: webhooks
kind: webhook_secret
environments: [sandbox]
max_age: 10d
schedule: "0 5 * * 1"
grace: {scheduled: 1h, personnel: 0s, compromise: 0s}
`}})
	crashRotation(t, w, secReporting, rotator.AfterPut)
	w.clk.Advance(20 * 24 * time.Hour)

	svc := w.build(rotator.Hooks{})
	defer svc.Shutdown(context.Background())
	items, err := svc.Plan(context.Background(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	scopeChange := map[string]string{}
	for _, it := range items {
		got[it.Secret] = it.State
		scopeChange[it.Secret] = it.ScopeChange
	}
	want := map[string]string{secReporting: "in_flight", secWebhook: "overdue", secCheckout: "due"}
	for n, st := range want {
		if got[n] != st {
			t.Errorf("plan state of %s = %q, want %q", n, got[n], st)
		}
	}
	if !strings.Contains(scopeChange[secCheckout], "customers:read") {
		t.Errorf("plan for %s shows scope change %q; want customers:read dropped", secCheckout, scopeChange[secCheckout])
	}
	items, err = svc.Plan(context.Background(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Secret == secCheckout && it.State != "ok" {
			t.Errorf("with a 1m horizon, %s is %q, want ok", secCheckout, it.State)
		}
	}
	// Plan changes nothing.
	if w.current(secReporting).KeyID == w.stage(secReporting, secretstore.StagePending).KeyID {
		t.Error("plan finished the in-flight rotation")
	}
}

func TestScansFindAPlantedOverPrivilegedKey(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	// Someone put a key with every scope into the checkout secret.
	planted, err := w.fix.Sim.CreateKey(laki.Sandbox, w.merchant, "hand-made", laki.AllScopes)
	if err != nil {
		t.Fatal(err)
	}
	w.remember(planted.Secret)
	c := w.current(secCheckout)
	c.KeyID, c.Secret, c.Scopes = planted.ID, planted.Secret, nil
	for _, s := range planted.Scopes {
		c.Scopes = append(c.Scopes, string(s))
	}
	v, _ := c.Encode()
	desc, err := w.store.Describe(ctx, secCheckout)
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := desc.VersionWithStage(secretstore.StageCurrent)
	if err := w.store.PutPending(ctx, secCheckout, "planted-version-00000000000000001", v); err != nil {
		t.Fatal(err)
	}
	if err := w.store.MoveStage(ctx, secCheckout, secretstore.StageCurrent, "planted-version-00000000000000001", cur.ID); err != nil {
		t.Fatal(err)
	}

	svc := w.build(rotator.Hooks{})
	defer svc.Shutdown(ctx)
	vs, err := svc.Scans.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, v := range vs {
		if v.Reason == "over_privileged" && v.Secret == secCheckout && v.KeyID == planted.ID {
			found = true
			if v.Severity != events.SeverityCritical && v.Severity != events.SeverityWarning {
				t.Errorf("over-privileged violation severity %s", v.Severity)
			}
		}
		if v.Reason == "over_privileged" && v.Secret == secReporting {
			t.Errorf("reporting's key (exactly its policy's scopes) reported over-privileged: %s", v.Message)
		}
		assertNoSecrets(t, "violation message", v.Message, w.allStoredSecrets())
	}
	if !found {
		t.Errorf("no over_privileged violation for %s key %s among %+v", secCheckout, planted.ID, vs)
	}
}

func TestSweepRevokesAnOrphanOnlyPastTheMargin(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	before := map[string]bool{}
	for _, k := range keysFor(w, secCheckout) {
		before[k.ID] = true
	}
	crashRotation(t, w, secCheckout, rotator.AfterCreate)
	var orphan string
	for _, k := range keysFor(w, secCheckout) {
		if !before[k.ID] {
			orphan = k.ID
		}
	}
	if orphan == "" {
		t.Fatal("the crash after create left no key at LakiConnect")
	}
	svc := w.build(rotator.Hooks{})
	defer svc.Shutdown(ctx)
	if err := svc.Daemon.Catalog().Refresh(ctx, w.clk.Now()); err != nil {
		t.Fatal(err)
	}
	res, err := svc.Daemon.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k, _ := w.fix.Sim.Key(orphan); k.Status != laki.StatusActive {
		t.Fatalf("a young orphan (inside the 25h margin) was ended: %s", k.Status)
	}
	if !sweptHas(res[laki.Sandbox].Young, orphan) {
		t.Errorf("sweep does not report %s as young: %+v", orphan, res[laki.Sandbox])
	}

	w.clk.Advance(26 * time.Hour)
	res, err = svc.Daemon.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !sweptHas(res[laki.Sandbox].Revoked, orphan) {
		t.Errorf("sweep did not revoke orphan %s: %+v", orphan, res[laki.Sandbox])
	}
	if k, _ := w.fix.Sim.Key(orphan); k.Status != laki.StatusRevoked {
		t.Errorf("orphan %s is %s at LakiConnect, want revoked", orphan, k.Status)
	}
	for id := range before {
		if k, _ := w.fix.Sim.Key(id); k.Status != laki.StatusActive {
			t.Errorf("the sweep ended key %s that AWSCURRENT holds", id)
		}
	}
	if len(res[laki.Sandbox].Revoked) != 1 {
		t.Errorf("sweep revoked %d keys, want only the orphan", len(res[laki.Sandbox].Revoked))
	}
}

func sweptHas(ks []rotator.SweptKey, id string) bool {
	for _, k := range ks {
		if k.KeyID == id {
			return true
		}
	}
	return false
}

// An exposed key that is no longer current (AWSPREVIOUS, in its grace) is
// revoked at once; the current key is not rotated, since it was not exposed.
func TestExposedOldKeyInGraceIsRevokedWithoutARotation(t *testing.T) {
	w := newWorld(t, worldOptions{securityWebhook: true})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	old := w.current(secCheckout)
	st, err := r.client.Trigger(context.Background(), httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "ops@example", Reason: "routine"})
	if err != nil {
		t.Fatal(err)
	}
	if final := w.waitTrigger(r, st.ID); final.State != httpapi.StateSucceeded {
		t.Fatalf("manual rotation ended %s: %+v", final.State, final.Secrets)
	}
	current := w.current(secCheckout)
	w.remember(current.Secret)
	if k, _ := w.fix.Sim.Key(old.KeyID); k.Status != laki.StatusExpiring {
		t.Fatalf("old key is %s after a manual rotation, want expiring (in its grace)", k.Status)
	}

	if _, err := w.fix.Sim.ExposeKey(old.KeyID, "paste_site", ""); err != nil {
		t.Fatal(err)
	}
	w.eventually("the exposed old key is revoked", func() bool {
		k, _ := w.fix.Sim.Key(old.KeyID)
		return k.Status == laki.StatusRevoked
	})
	if got := w.current(secCheckout); got.KeyID != current.KeyID {
		t.Errorf("AWSCURRENT moved to %s; the exposed key was not the current one, nothing should rotate", got.KeyID)
	}
	// The alert follows the revoke's answer, which the simulator shows
	// first: wait for it, then check that it came once.
	alerted := func() []events.Event {
		return eventsWhere(r.rec, func(e events.Event) bool {
			return e.Step == events.StepAlert && e.Details["reason"] == "exposed_old_key_revoked" && e.Secret == secCheckout
		})
	}
	w.eventually("the revoke is reported", func() bool { return len(alerted()) > 0 })
	for range 10 {
		time.Sleep(10 * time.Millisecond)
		w.clk.Advance(time.Second)
	}
	if alerts := alerted(); len(alerts) != 1 {
		t.Errorf("%d exposed_old_key_revoked alerts, want 1", len(alerts))
	}
}

// countingStore counts value reads.
type countingStore struct {
	secretstore.Store
	mu   sync.Mutex
	gets int
}

func (c *countingStore) Get(ctx context.Context, name string, sel secretstore.Selector) (secretstore.Version, error) {
	c.mu.Lock()
	c.gets++
	c.mu.Unlock()
	return c.Store.Get(ctx, name, sel)
}

func (c *countingStore) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets
}

// The scans read each stored version once: a second scan with nothing
// rotated in between reads no value from the store.
func TestRepeatedScansReadEachVersionOnce(t *testing.T) {
	w := newWorld(t, worldOptions{})
	ctx := context.Background()
	cfg, err := config.Parse(w.cfgPath, w.cfgYAML)
	if err != nil {
		t.Fatal(err)
	}
	counting := &countingStore{Store: w.store}
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{Clock: w.clk, LookupEnv: w.lookupEnv, Stdout: &w.stdout,
		Stores: map[laki.Environment]secretstore.Store{laki.Sandbox: counting}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Shutdown(ctx)
	if _, err := svc.Scans.Check(ctx); err != nil {
		t.Fatal(err)
	}
	first := counting.count()
	if first == 0 {
		t.Fatal("the first scan read nothing; it must read every current version")
	}
	if _, err := svc.Scans.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if again := counting.count() - first; again != 0 {
		t.Errorf("the second scan read %d values; versions do not change, it should read none", again)
	}
}

// arn is the secret's ARN (what version ids derive from).
func (w *world) arn(name string) string {
	w.t.Helper()
	d, err := w.store.Describe(context.Background(), name)
	if err != nil {
		w.t.Fatal(err)
	}
	if d.ARN == "" {
		return name
	}
	return d.ARN
}
