package rotator_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

func TestVersionIDIsDeterministicUUID(t *testing.T) {
	a := rotator.VersionID("arn:aws:secretsmanager:eu-west-1:1:secret:x", "2026-06-01T00:00:00Z")
	if a != rotator.VersionID("arn:aws:secretsmanager:eu-west-1:1:secret:x", "2026-06-01T00:00:00Z") {
		t.Fatal("same secret and cause gave two version ids")
	}
	if a == rotator.VersionID("arn:aws:secretsmanager:eu-west-1:1:secret:x", "2026-06-02T00:00:00Z") ||
		a == rotator.VersionID("arn:aws:secretsmanager:eu-west-1:1:secret:y", "2026-06-01T00:00:00Z") {
		t.Fatal("different secret or cause gave the same version id")
	}
	if len(a) != 36 || strings.Count(a, "-") != 4 || a[14] != '8' {
		t.Fatalf("version id %q is not a version-8 UUID", a)
	}
	k := rotator.IdempotencyKey("payments/api", a, "create")
	if k != "rotate-payments/api-"+a+"-create" {
		t.Fatalf("idempotency key %q", k)
	}
	long := rotator.IdempotencyKey(strings.Repeat("é", 300), a, "expire-old")
	if len(long) > 255 || strings.Contains(long, "é") {
		t.Fatalf("idempotency key for a long non-ASCII name is %d chars: %q", len(long), long)
	}
}

func TestRotateAPIKeyHappyPathAndCallBudget(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/payments", inventory.KindAPIKey, laki.Sandbox, []laki.Scope{laki.ScopePaymentsRead})
	old := h.current(ms.Name)
	e := h.engine(nil)
	ctx := context.Background()

	known, err := h.store.Describe(ctx, ms.Name) // the caller's listing data
	if err != nil {
		t.Fatal(err)
	}
	h.store.resetCounts()
	res, err := e.RotateJob(ctx, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("2026-06-01T09:00:00Z"), Known: &known})
	if err != nil {
		t.Fatal(err)
	}
	calls := h.store.counts()
	total := 0
	for _, n := range calls {
		total += n
	}
	t.Logf("store calls for one rotation: %v", calls)
	if total > 3 || calls["PutPending"] != 1 || calls["MoveStage"] != 1 {
		t.Fatalf("store calls %v: want at most 3, exactly one PutPending and one MoveStage", calls)
	}

	vid := rotator.VersionID(known.ARN, "2026-06-01T09:00:00Z")
	if res.Outcome != rotator.Rotated || res.VersionID != vid || res.PreviousKeyID != old.KeyID {
		t.Fatalf("result %+v", res)
	}
	st := h.store.stages(ms.Name)
	if !slices.Equal(st[vid], []string{"AWSCURRENT", "AWSPENDING"}) || !slices.Equal(st[known.Versions[0].ID], []string{"AWSPREVIOUS"}) {
		t.Fatalf("stages after rotation: %v", st)
	}
	cur := h.current(ms.Name)
	if cur.KeyID != res.KeyID || cur.KeyID == old.KeyID {
		t.Fatalf("AWSCURRENT holds key %s, result says %s", cur.KeyID, res.KeyID)
	}
	w, err := h.whoami(laki.Sandbox, cur.Secret)
	if err != nil {
		t.Fatalf("new current key does not work: %v", err)
	}
	if !slices.Equal(sortScopes(w.Scopes), sortScopes(apiScopes)) || w.Status != laki.StatusActive {
		t.Fatalf("new key whoami %+v, want exactly %v", w, apiScopes)
	}
	nk := h.key(cur.KeyID)
	if nk.Metadata[rotator.MetaCreatedBy] != rotator.MetaCreatedByValue || nk.Metadata[rotator.MetaVersion] != vid || nk.Metadata[rotator.MetaSecret] != ms.Name {
		t.Fatalf("new key metadata %v", nk.Metadata)
	}
	ok := h.key(old.KeyID)
	wantEnd := h.fx.Clock.Now().Add(24 * time.Hour)
	if ok.Status != laki.StatusExpiring || ok.ExpiresAt == nil || ok.ExpiresAt.Sub(wantEnd).Abs() > time.Second {
		t.Fatalf("old key status %s expires %v, want expiring at %v", ok.Status, ok.ExpiresAt, wantEnd)
	}
	if _, err := h.whoami(laki.Sandbox, old.Secret); err != nil {
		t.Fatalf("old key stopped working during its grace: %v", err)
	}
	for _, step := range []events.Step{events.StepCreate, events.StepTest, events.StepPromote, events.StepRetire, events.StepRotation} {
		if len(h.rec.Events()) == 0 || !slices.ContainsFunc(h.rec.Events(), func(e events.Event) bool {
			return e.Step == step && e.Secret == ms.Name && e.Cause == events.CauseScheduled && e.Actor == "scheduler"
		}) {
			t.Errorf("no %s event naming the secret, cause and actor", step)
		}
	}
	// Past the grace the old key ends by itself at LakiConnect.
	h.fx.Clock.Advance(24*time.Hour + time.Minute)
	if _, err := h.whoami(laki.Sandbox, old.Secret); err == nil {
		t.Fatal("old key still works after its grace")
	}

	// Steady state: one store read (the old credential, AWSCURRENT) and the
	// two writes; at LakiConnect only create, verify and expire, since its
	// calls per key are the scarcer budget.
	known, err = h.store.Describe(ctx, ms.Name)
	if err != nil {
		t.Fatal(err)
	}
	h.store.resetCounts()
	before := len(h.fx.Sim.Requests())
	second, err := e.RotateJob(ctx, rotator.Job{Secret: ms, Policy: basePolicy(), Trigger: scheduled("2026-06-02T09:00:00Z"), Known: &known})
	if err != nil {
		t.Fatal(err)
	}
	if calls := h.store.counts(); len(calls) != 3 || calls["Get"] != 1 || calls["PutPending"] != 1 || calls["MoveStage"] != 1 {
		t.Fatalf("steady-state store calls %v: want one Get, one PutPending and one MoveStage", calls)
	}
	var lakiCalls []string
	for _, r := range h.fx.Sim.Requests()[before:] {
		lakiCalls = append(lakiCalls, r.Method+" "+r.Path)
	}
	if len(lakiCalls) != 3 {
		t.Fatalf("LakiConnect lakiCalls for one rotation: %v; want create, whoami and expire only", lakiCalls)
	}
	if second.PreviousKeyID != cur.KeyID || h.key(cur.KeyID).Status != laki.StatusExpiring {
		t.Fatalf("second rotation ended %s, want %s expiring", second.PreviousKeyID, cur.KeyID)
	}

	// The same cause again changes nothing.
	again, err := e.Rotate(ctx, ms, basePolicy(), scheduled("2026-06-02T09:00:00Z"))
	if err != nil || again.Outcome != rotator.AlreadyDone || again.KeyID != second.KeyID {
		t.Fatalf("repeat: %+v %v", again, err)
	}
	older, err := e.Rotate(ctx, ms, basePolicy(), scheduled("2026-06-01T09:00:00Z"))
	if err != nil || older.Outcome != rotator.Superseded {
		t.Fatalf("repeat of the older slot: %+v %v", older, err)
	}
	if n := len(h.rotatorKeys(laki.Sandbox, ms.Name)); n != 2 {
		t.Fatalf("%d rotator keys after two rotations and a repeat, want 2", n)
	}
}

func sortScopes(s []laki.Scope) []laki.Scope {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

func TestRotateRefusesBadInputNamingTheSecret(t *testing.T) {
	h := newHarness(t)
	ms := h.seedKey("svc/x", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	e := h.engine(nil)
	pol := basePolicy()
	pol.Scopes = nil
	_, err := e.Rotate(context.Background(), ms, pol, scheduled("s1"))
	if err == nil || !strings.Contains(err.Error(), `"svc/x"`) || !strings.Contains(err.Error(), "scopes") {
		t.Fatalf("err = %v", err)
	}
	_, err = e.Rotate(context.Background(), ms, basePolicy(), rotator.Trigger{Kind: events.CauseScheduled})
	if err == nil || !strings.Contains(err.Error(), "cause id") {
		t.Fatalf("err = %v", err)
	}
	// Declared production, stored sandbox: never mix.
	prod := ms
	prod.Environment = laki.Production
	_, err = e.Rotate(context.Background(), prod, basePolicy(), scheduled("s1"))
	if err == nil || !strings.Contains(err.Error(), "sandbox") {
		t.Fatalf("err = %v", err)
	}
	// The stored credential is read right before the put (the look that
	// keeps a stale writer from writing), so the key may have been made: it
	// must have been ended at once, never stored.
	for _, k := range append(h.rotatorKeys(laki.Production, ms.Name), h.rotatorKeys(laki.Sandbox, ms.Name)...) {
		if k.Status != laki.StatusRevoked {
			t.Fatalf("key %s made for a refused rotation is %s", k.ID, k.Status)
		}
	}
	_ = secretstore.StageCurrent
}
