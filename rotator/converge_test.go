package rotator_test

import (
	"context"
	"sync"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// What the crash and replica tests check, on whichever store: the engines
// as replicas in one slot, and a rotation finished after a crash.

// rotateAsReplicas rotates every secret on every engine at once in the
// scheduled slot, as replicas do, and returns the errors. Time passes as
// for daemons: the replica whose create was replayed waits, then follows.
func (h *harness) rotateAsReplicas(engines []*rotator.Engine, secrets []inventory.ManagedSecret, slot string) []error {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, len(engines)*len(secrets))
	for _, e := range engines {
		for _, ms := range secrets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := e.Rotate(ctx, ms, basePolicy(), scheduled(slot)); err != nil {
					errs <- err
				}
			}()
		}
	}
	h.settling(wg.Wait)
	close(errs)
	var out []error
	for err := range errs {
		out = append(out, err)
	}
	return out
}

// requireOneRotatorKey fails the test unless the rotator made exactly one
// key for the secret name and cur (its AWSCURRENT) holds it.
func (h *harness) requireOneRotatorKey(name string, cur secretstore.Credential) {
	h.t.Helper()
	keys := h.rotatorKeys(laki.Sandbox, name)
	if len(keys) != 1 || keys[0].ID != cur.KeyID {
		h.t.Fatalf("%s: %d keys, current %s", name, len(keys), cur.KeyID)
	}
}

// requireRolledForward fails the test unless the rotation of name that a
// restart finished (res) made one key, AWSCURRENT (cur) holds it and it
// works, and the old key ended as cause demands.
func (h *harness) requireRolledForward(name string, res rotator.Result, cur, old secretstore.Credential, cause events.Cause) {
	h.t.Helper()
	keys := h.rotatorKeys(laki.Sandbox, name)
	if len(keys) != 1 {
		h.t.Fatalf("%d keys made for one rotation, want 1", len(keys))
	}
	if cur.KeyID != keys[0].ID || res.KeyID != cur.KeyID {
		h.t.Fatalf("AWSCURRENT holds %s, the rotation made %s (result %s)", cur.KeyID, keys[0].ID, res.KeyID)
	}
	if _, err := h.whoami(laki.Sandbox, cur.Secret); err != nil {
		h.t.Fatalf("current key does not work: %v", err)
	}
	want := laki.StatusExpiring
	if cause == events.CauseCompromise {
		want = laki.StatusRevoked
	}
	if got := h.key(old.KeyID).Status; got != want {
		h.t.Fatalf("old key is %s, want %s", got, want)
	}
}
