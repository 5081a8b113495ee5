// Over 400 lines on purpose: test support, the whole Store contract read case by case in one file.

// Package storetest is the conformance suite every secretstore.Store passes:
// the Secrets Manager store against moto, the local store in memory and on
// disk. A case that moto cannot pass because it differs from AWS is run
// against a stand-in that behaves like AWS, never weakened.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Harness is a store under test plus the test-only seeding it needs:
// creating and deleting secrets is outside the Store interface (Terraform
// and people do it), so each store's test supplies its own way.
type Harness struct {
	Store secretstore.Store
	// Create makes a secret; initial, when not nil, becomes its first
	// version, labelled AWSCURRENT.
	Create func(ctx context.Context, name, description string, tags map[string]string, initial *secret.Value) error
	// ScheduleDeletion marks the secret for deletion (recoverable, as AWS's DeleteSecret).
	ScheduleDeletion func(ctx context.Context, name string) error
	// MotoDifferences marks a plain moto 5.2.1 server, which accepts a
	// reused token with another value and puts to a secret scheduled for
	// deletion where AWS refuses both (MOTO.md). Those AWS-only checks are
	// skipped here; the harness with the awsfault stand-in, which returns
	// AWS's errors, runs them.
	MotoDifferences bool
}

// Run runs every case, each on a fresh harness from newStore. Stores that
// share a server between cases are isolated by the unique names and tag
// keys every case uses.
func Run(t *testing.T, newStore func(t *testing.T) Harness) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"PutPendingThenGetByStageAndID", testPutPendingThenGet},
		{"FirstVersionOfEmptySecretIsAlsoCurrent", testFirstVersionIsCurrent},
		{"PromoteMovesPreviousAutomatically", testPromote},
		{"PendingMovesOffPreviousPending", testPendingMoves},
		{"RemoveStageOnly", testRemoveStage},
		{"IdempotentPutChangesNothing", testIdempotentPut},
		{"SameTokenOtherValueIsTokenReused", testTokenReused},
		{"InvalidPutInput", testInvalidPut},
		{"ListPaginatesPast100", testListPagination},
		{"ListTagFilters", testTagFilters},
		{"Tag", testTag},
		{"NotFound", testNotFound},
		{"ScheduledForDeletion", testScheduledForDeletion},
		{"ConcurrentWriters", testConcurrentWriters},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &suite{t: t, h: newStore(t), ctx: context.Background()}
			c.fn(t, s)
			s.checkNoLeaks()
		})
	}
}

type suite struct {
	t   *testing.T
	h   Harness
	ctx context.Context

	mu     sync.Mutex
	values []string // every secret value the case created
	errs   []error  // every error a store call returned
}

var nameSanitizer = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// name returns a secret name unique to this case and run.
func (s *suite) name(label string) string {
	base := nameSanitizer.ReplaceAllString(s.t.Name(), "-")
	if len(base) > 80 {
		base = base[len(base)-80:]
	}
	return fmt.Sprintf("storetest/%s/%s-%s", base, label, randomHex(4))
}

// versionID returns a fresh 32-character version id (AWS wants 32–64).
func versionID() string { return randomHex(16) }

// value returns a fresh secret value, remembered for the leak scan.
func (s *suite) value() secret.Value {
	v := "storetest-secret-" + randomHex(12)
	s.mu.Lock()
	s.values = append(s.values, v)
	s.mu.Unlock()
	return secret.New(v)
}

func (s *suite) record(err error) error {
	if err != nil {
		s.mu.Lock()
		s.errs = append(s.errs, err)
		s.mu.Unlock()
	}
	return err
}

// checkNoLeaks fails the case if any error message holds a secret value.
func (s *suite) checkNoLeaks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, err := range s.errs {
		msg := fmt.Sprintf("%v %+v %#v", err, err, err)
		for _, v := range s.values {
			if strings.Contains(msg, v) {
				s.t.Errorf("error %q contains a secret value the test created", err.Error())
			}
		}
	}
}

func (s *suite) create(name string, tags map[string]string, initial *secret.Value) {
	s.t.Helper()
	if err := s.h.Create(s.ctx, name, "conformance suite secret", tags, initial); err != nil {
		s.t.Fatalf("seed %s: %v", name, err)
	}
}

func (s *suite) createWithValue(name string) {
	s.t.Helper()
	v := s.value()
	s.create(name, nil, &v)
}

func (s *suite) put(name, id string, v secret.Value) error {
	return s.record(s.h.Store.PutPending(s.ctx, name, id, v))
}

func (s *suite) mustPut(name, id string, v secret.Value) {
	s.t.Helper()
	if err := s.put(name, id, v); err != nil {
		s.t.Fatalf("PutPending(%s, %s): %v", name, id, err)
	}
}

func (s *suite) move(name, stage, to, from string) error {
	return s.record(s.h.Store.MoveStage(s.ctx, name, stage, to, from))
}

func (s *suite) mustMove(name, stage, to, from string) {
	s.t.Helper()
	if err := s.move(name, stage, to, from); err != nil {
		s.t.Fatalf("MoveStage(%s, %s, to %s, from %s): %v", name, stage, to, from, err)
	}
}

func (s *suite) get(name string, sel secretstore.Selector) (secretstore.Version, error) {
	v, err := s.h.Store.Get(s.ctx, name, sel)
	return v, s.record(err)
}

func (s *suite) mustGet(name string, sel secretstore.Selector) secretstore.Version {
	s.t.Helper()
	v, err := s.get(name, sel)
	if err != nil {
		s.t.Fatalf("Get(%s, %+v): %v", name, sel, err)
	}
	return v
}

func (s *suite) describe(name string) secretstore.Secret {
	s.t.Helper()
	sec, err := s.h.Store.Describe(s.ctx, name)
	if err != nil {
		s.record(err)
		s.t.Fatalf("Describe(%s): %v", name, err)
	}
	return sec
}

// holders returns the ids of the versions carrying stage.
func holders(sec secretstore.Secret, stage string) []string {
	var ids []string
	for _, v := range sec.Versions {
		if v.Has(stage) {
			ids = append(ids, v.ID)
		}
	}
	sort.Strings(ids)
	return ids
}

func (s *suite) wantHolders(sec secretstore.Secret, stage string, want ...string) {
	s.t.Helper()
	got := holders(sec, stage)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		s.t.Errorf("%s: versions with %s = %v, want %v (versions %+v)", sec.Name, stage, got, want, sec.Versions)
	}
}

func (s *suite) currentID(name string) string {
	s.t.Helper()
	sec := s.describe(name)
	ids := holders(sec, secretstore.StageCurrent)
	if len(ids) != 1 {
		s.t.Fatalf("%s: versions with AWSCURRENT = %v, want exactly one", name, ids)
	}
	return ids[0]
}

func wantKind(t *testing.T, what string, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error = %v, want kind %q", what, err, kind)
		return
	}
	var se *secretstore.Error
	if !errors.As(err, &se) {
		t.Errorf("%s: error %v is not a *secretstore.Error", what, err)
	}
}

func testPutPendingThenGet(t *testing.T, s *suite) {
	name := s.name("get")
	initial := s.value()
	s.create(name, nil, &initial)
	cur := s.currentID(name)
	id, v := versionID(), s.value()
	s.mustPut(name, id, v)

	for _, sel := range []secretstore.Selector{secretstore.ByStage(secretstore.StagePending), secretstore.ByID(id)} {
		got := s.mustGet(name, sel)
		if got.ID != id || !got.Value.Equal(v) || !slices.Contains(got.Stages, secretstore.StagePending) {
			t.Errorf("Get(%+v) = id %s stages %v (value matches: %v), want id %s with AWSPENDING and the put value",
				sel, got.ID, got.Stages, got.Value.Equal(v), id)
		}
		if got.SecretName != name || got.ARN == "" {
			t.Errorf("Get(%+v): name %q ARN %q, want name %q and an ARN", sel, got.SecretName, got.ARN, name)
		}
	}
	got := s.mustGet(name, secretstore.ByStage(secretstore.StageCurrent))
	if got.ID != cur || !got.Value.Equal(initial) {
		t.Errorf("AWSCURRENT moved to %s on a pending put, want it to stay on %s with the initial value", got.ID, cur)
	}
	sec := s.describe(name)
	s.wantHolders(sec, secretstore.StagePending, id)
	s.wantHolders(sec, secretstore.StageCurrent, cur)
	if sec.Description != "conformance suite secret" || sec.DeletedAt != nil || sec.ARN == "" {
		t.Errorf("Describe: description %q, deleted %v, ARN %q", sec.Description, sec.DeletedAt, sec.ARN)
	}
}

// AWS labels the first version of a secret AWSCURRENT whatever stages the
// put asked for; a rotation of a secret created empty relies on it.
func testFirstVersionIsCurrent(t *testing.T, s *suite) {
	name := s.name("empty")
	s.create(name, nil, nil)
	id := versionID()
	s.mustPut(name, id, s.value())
	sec := s.describe(name)
	s.wantHolders(sec, secretstore.StagePending, id)
	s.wantHolders(sec, secretstore.StageCurrent, id)
}

func testPromote(t *testing.T, s *suite) {
	name := s.name("promote")
	s.createWithValue(name)
	v0 := s.currentID(name)
	v1 := versionID()
	s.mustPut(name, v1, s.value())
	s.mustMove(name, secretstore.StageCurrent, v1, v0)
	sec := s.describe(name)
	s.wantHolders(sec, secretstore.StageCurrent, v1)
	s.wantHolders(sec, secretstore.StagePrevious, v0)

	v2 := versionID()
	s.mustPut(name, v2, s.value())
	s.mustMove(name, secretstore.StageCurrent, v2, v1)
	sec = s.describe(name)
	s.wantHolders(sec, secretstore.StageCurrent, v2)
	s.wantHolders(sec, secretstore.StagePrevious, v1)
	if v, ok := sec.Version(v0); ok && len(v.Stages) != 0 {
		t.Errorf("oldest version %s still has stages %v, want none", v0, v.Stages)
	}
	got := s.mustGet(name, secretstore.ByStage(secretstore.StagePrevious))
	if got.ID != v1 {
		t.Errorf("Get(AWSPREVIOUS) = %s, want %s", got.ID, v1)
	}
}

func testPendingMoves(t *testing.T, s *suite) {
	name := s.name("pending")
	s.createWithValue(name)
	v1, v2 := versionID(), versionID()
	s.mustPut(name, v1, s.value())
	s.mustPut(name, v2, s.value())
	sec := s.describe(name)
	s.wantHolders(sec, secretstore.StagePending, v2)
	if _, ok := sec.Version(v1); !ok {
		t.Errorf("version %s disappeared when AWSPENDING moved off it", v1)
	}
}

func testRemoveStage(t *testing.T, s *suite) {
	name := s.name("remove")
	s.createWithValue(name)
	v0 := s.currentID(name)
	v1 := versionID()
	s.mustPut(name, v1, s.value())
	s.mustMove(name, secretstore.StageCurrent, v1, v0)
	s.mustMove(name, secretstore.StagePending, "", v1)
	sec := s.describe(name)
	s.wantHolders(sec, secretstore.StagePending)
	s.wantHolders(sec, secretstore.StageCurrent, v1)
	s.wantHolders(sec, secretstore.StagePrevious, v0)
}

func testIdempotentPut(t *testing.T, s *suite) {
	name := s.name("idem")
	s.createWithValue(name)
	v0 := s.currentID(name)
	id, v := versionID(), s.value()
	s.mustPut(name, id, v)
	before := s.describe(name)
	s.mustPut(name, id, secret.New(v.Reveal()))
	after := s.describe(name)
	if !equalVersions(before.Versions, after.Versions) {
		t.Errorf("repeated put changed the versions: before %+v, after %+v", before.Versions, after.Versions)
	}
	// Repeating the put after a promotion does not bring AWSPENDING back.
	s.mustMove(name, secretstore.StageCurrent, id, v0)
	s.mustMove(name, secretstore.StagePending, "", id)
	before = s.describe(name)
	s.mustPut(name, id, v)
	after = s.describe(name)
	if !equalVersions(before.Versions, after.Versions) {
		t.Errorf("put repeated after promotion changed the versions: before %+v, after %+v", before.Versions, after.Versions)
	}
}

func equalVersions(a, b []secretstore.VersionInfo) bool {
	norm := func(vs []secretstore.VersionInfo) map[string]string {
		m := map[string]string{}
		for _, v := range vs {
			st := slices.Clone(v.Stages)
			sort.Strings(st)
			m[v.ID] = strings.Join(st, ",")
		}
		return m
	}
	x, y := norm(a), norm(b)
	if len(x) != len(y) {
		return false
	}
	for k, v := range x {
		if w, ok := y[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func testTokenReused(t *testing.T, s *suite) {
	if s.h.MotoDifferences {
		t.Skip("moto overwrites a reused token's version (MOTO.md); AWS's ResourceExistsException is checked in the stand-in harness")
	}
	name := s.name("reuse")
	s.createWithValue(name)
	id, v1, v2 := versionID(), s.value(), s.value()
	s.mustPut(name, id, v1)
	err := s.put(name, id, v2)
	wantKind(t, "PutPending with a used token and another value", err, secretstore.ErrTokenReused)
	got := s.mustGet(name, secretstore.ByID(id))
	if !got.Value.Equal(v1) {
		t.Errorf("version %s was overwritten by a put with a reused token", id)
	}
}

func testInvalidPut(t *testing.T, s *suite) {
	name := s.name("invalid")
	s.createWithValue(name)
	wantKind(t, "PutPending with a short version id", s.put(name, "short", s.value()), secretstore.ErrInvalidRequest)
	wantKind(t, "PutPending with an empty value", s.put(name, versionID(), secret.Value{}), secretstore.ErrInvalidRequest)
}

func (s *suite) list(filters ...secretstore.TagFilter) []string {
	s.t.Helper()
	var names []string
	err := s.h.Store.List(s.ctx, filters, func(sec secretstore.Secret) error {
		names = append(names, sec.Name)
		return nil
	})
	if err != nil {
		s.record(err)
		s.t.Fatalf("List(%+v): %v", filters, err)
	}
	sort.Strings(names)
	return names
}

func testListPagination(t *testing.T, s *suite) {
	key := "storetest-page-" + randomHex(4)
	prefix := s.name("page")
	var want []string
	for i := range 105 {
		n := fmt.Sprintf("%s-%03d", prefix, i)
		s.create(n, map[string]string{key: "yes"}, nil)
		want = append(want, n)
	}
	got := s.list(secretstore.TagFilter{Key: key})
	if !slices.Equal(got, want) {
		t.Fatalf("List by tag listed %d secrets, want the %d created (first missing or extra: %v)", len(got), len(want), firstDiff(got, want))
	}
	// The secrets carry their metadata in the listing.
	stop := errors.New("stop")
	n := 0
	err := s.h.Store.List(s.ctx, []secretstore.TagFilter{{Key: key}}, func(sec secretstore.Secret) error {
		if sec.Tags[key] != "yes" || sec.ARN == "" {
			t.Errorf("listed %s with tags %v and ARN %q", sec.Name, sec.Tags, sec.ARN)
		}
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Errorf("List stopped after %d secrets with %v, want fn's error after 3", n, err)
	}
}

func firstDiff(got, want []string) string {
	for i := range max(len(got), len(want)) {
		switch {
		case i >= len(got):
			return "missing " + want[i]
		case i >= len(want):
			return "extra " + got[i]
		case got[i] != want[i]:
			return fmt.Sprintf("got %s where %s was expected", got[i], want[i])
		}
	}
	return "none"
}

func testTagFilters(t *testing.T, s *suite) {
	k := "storetest-tag-" + randomHex(4)
	k1, k2 := k+"-env", k+"-kind"
	a, b, c, d := s.name("a"), s.name("b"), s.name("c"), s.name("d")
	s.create(a, map[string]string{k1: "prod", k2: "api"}, nil)
	s.create(b, map[string]string{k1: "sandbox"}, nil)
	s.create(c, map[string]string{k2: "api"}, nil)
	// d's value starts with a's: a prefix match is not a match.
	s.create(d, map[string]string{k1: "production", k + "-env2": "prod"}, nil)

	sorted := func(xs ...string) []string { sort.Strings(xs); return xs }
	for _, tc := range []struct {
		what    string
		filters []secretstore.TagFilter
		want    []string
	}{
		{"key only", []secretstore.TagFilter{{Key: k1}}, sorted(a, b, d)},
		{"key and value", []secretstore.TagFilter{{Key: k1, Values: []string{"prod"}}}, sorted(a)},
		{"key and either value", []secretstore.TagFilter{{Key: k1, Values: []string{"prod", "sandbox"}}}, sorted(a, b)},
		{"two filters", []secretstore.TagFilter{{Key: k1}, {Key: k2, Values: []string{"api"}}}, sorted(a)},
		{"value on another key", []secretstore.TagFilter{{Key: k2, Values: []string{"prod"}}}, nil},
	} {
		if got := s.list(tc.filters...); !slices.Equal(got, tc.want) {
			t.Errorf("List %s (%+v) = %v, want %v", tc.what, tc.filters, got, tc.want)
		}
	}
}

func testTag(t *testing.T, s *suite) {
	name := s.name("tag")
	s.create(name, map[string]string{"owner": "platform"}, nil)
	if err := s.record(s.h.Store.Tag(s.ctx, name, map[string]string{"rotation-attempts": "2", "owner": "security"})); err != nil {
		t.Fatalf("Tag: %v", err)
	}
	got := s.describe(name).Tags
	want := map[string]string{"owner": "security", "rotation-attempts": "2"}
	if len(got) != len(want) || got["owner"] != want["owner"] || got["rotation-attempts"] != want["rotation-attempts"] {
		t.Errorf("tags after Tag = %v, want %v", got, want)
	}
}

func testNotFound(t *testing.T, s *suite) {
	missing := s.name("missing")
	id := versionID()
	_, err := s.get(missing, secretstore.ByStage(secretstore.StageCurrent))
	wantKind(t, "Get of a missing secret", err, secretstore.ErrNotFound)
	_, err = s.h.Store.Describe(s.ctx, missing)
	wantKind(t, "Describe of a missing secret", s.record(err), secretstore.ErrNotFound)
	wantKind(t, "PutPending to a missing secret", s.put(missing, id, s.value()), secretstore.ErrNotFound)
	wantKind(t, "MoveStage on a missing secret", s.move(missing, secretstore.StageCurrent, id, versionID()), secretstore.ErrNotFound)
	wantKind(t, "Tag of a missing secret", s.record(s.h.Store.Tag(s.ctx, missing, map[string]string{"a": "b"})), secretstore.ErrNotFound)
	if err != nil && !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the secret %s", err, missing)
	}

	name := s.name("present")
	s.createWithValue(name)
	_, err = s.get(name, secretstore.ByID(versionID()))
	wantKind(t, "Get of a missing version", err, secretstore.ErrNotFound)
	_, err = s.get(name, secretstore.ByStage(secretstore.StagePending))
	wantKind(t, "Get of a stage no version has", err, secretstore.ErrNotFound)
	if err := s.move(name, secretstore.StagePending, versionID(), ""); err == nil {
		t.Errorf("MoveStage to a missing version succeeded")
	}
}

func testScheduledForDeletion(t *testing.T, s *suite) {
	key := "storetest-del-" + randomHex(4)
	name := s.name("deleted")
	v := s.value()
	s.create(name, map[string]string{key: "x"}, &v)
	kept := s.name("kept")
	s.create(kept, map[string]string{key: "x"}, nil)
	if err := s.h.ScheduleDeletion(s.ctx, name); err != nil {
		t.Fatalf("seed: schedule deletion of %s: %v", name, err)
	}
	if got := s.list(secretstore.TagFilter{Key: key}); !slices.Equal(got, []string{kept}) {
		t.Errorf("List = %v, want only %s (scheduled deletions are not listed)", got, kept)
	}
	_, err := s.get(name, secretstore.ByStage(secretstore.StageCurrent))
	wantKind(t, "Get of a secret scheduled for deletion", err, secretstore.ErrScheduledForDeletion)
	if !s.h.MotoDifferences { // moto accepts such puts (MOTO.md); the stand-in harness checks AWS's refusal
		wantKind(t, "PutPending to a secret scheduled for deletion", s.put(name, versionID(), s.value()), secretstore.ErrScheduledForDeletion)
	}
	sec := s.describe(name)
	if sec.DeletedAt == nil {
		t.Errorf("Describe of a secret scheduled for deletion has no DeletedAt")
	}
}

// Several rotations race on one secret: each puts its own pending version,
// then moves AWSCURRENT to it from the version it saw as current, retrying
// when another writer got there first. Whatever the interleaving, the secret
// ends with exactly one AWSCURRENT, one AWSPREVIOUS on another version, and
// at most one AWSPENDING.
func testConcurrentWriters(t *testing.T, s *suite) {
	name := s.name("race")
	s.createWithValue(name)
	const writers = 6
	ids := make([]string, writers)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		ids[i] = versionID()
		v := s.value()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.put(name, ids[i], v); err != nil {
				errs <- fmt.Errorf("writer %d: PutPending: %w", i, err)
				return
			}
			for attempt := 0; ; attempt++ {
				sec, err := s.h.Store.Describe(s.ctx, name)
				if err != nil {
					errs <- fmt.Errorf("writer %d: Describe: %w", i, s.record(err))
					return
				}
				cur := holders(sec, secretstore.StageCurrent)
				if len(cur) != 1 {
					errs <- fmt.Errorf("writer %d saw AWSCURRENT on %v", i, cur)
					return
				}
				err = s.move(name, secretstore.StageCurrent, ids[i], cur[0])
				if err == nil {
					return
				}
				if !errors.Is(err, secretstore.ErrInvalidRequest) || attempt == 50 {
					errs <- fmt.Errorf("writer %d: MoveStage from %s: %w", i, cur[0], err)
					return
				}
				time.Sleep(time.Millisecond) // let the winner finish; real time is what races here
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sec := s.describe(name)
	cur := holders(sec, secretstore.StageCurrent)
	prev := holders(sec, secretstore.StagePrevious)
	if len(cur) != 1 || len(prev) != 1 || cur[0] == prev[0] {
		t.Fatalf("after concurrent promotions AWSCURRENT is on %v and AWSPREVIOUS on %v, want one each on different versions", cur, prev)
	}
	if !slices.Contains(ids, cur[0]) {
		t.Errorf("AWSCURRENT ended on %s, not on a written version", cur[0])
	}
	if p := holders(sec, secretstore.StagePending); len(p) > 1 {
		t.Errorf("AWSPENDING is on %v, want at most one version", p)
	}
	for _, id := range ids {
		if _, ok := sec.Version(id); !ok {
			t.Errorf("version %s was lost", id)
		}
	}
}
