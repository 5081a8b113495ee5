package rotator_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/rotator"
)

func liveSecrets(ep laki.WebhookEndpoint) map[string]laki.KeyStatus {
	out := map[string]laki.KeyStatus{}
	for _, s := range ep.Secrets {
		if s.Status != laki.StatusRevoked {
			out[s.ID] = s.Status
		}
	}
	return out
}

func (h *harness) endpoint(id string) laki.WebhookEndpoint {
	h.t.Helper()
	ep, err := h.client(laki.Sandbox, h.fx.SandboxKey).GetWebhookEndpoint(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return ep
}

func TestRotateWebhookSecret(t *testing.T) {
	h := newHarness(t)
	ms, first := h.seedWebhook("hooks/main")
	e := h.engine(nil)
	res, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("slot-1"))
	if err != nil {
		t.Fatal(err)
	}
	cur := h.current(ms.Name)
	if cur.SecretID != res.KeyID || cur.SecretID == first.ID || cur.EndpointID != ms.EndpointID {
		t.Fatalf("AWSCURRENT %s/%s, result %+v", cur.EndpointID, cur.SecretID, res)
	}
	live := liveSecrets(h.endpoint(ms.EndpointID))
	if live[first.ID] != laki.StatusExpiring || live[cur.SecretID] != laki.StatusActive {
		t.Fatalf("endpoint secrets %v: want old expiring, new active", live)
	}
	// A delivery signed as LakiConnect signs it (every live secret)
	// verifies for receivers holding either secret during the overlap.
	now := h.fx.Clock.Now()
	body := []byte(`{"id":"evt_1"}`)
	hdr := webhooksig.Sign(now, body, first.Secret, cur.Secret)
	v := webhooksig.Verifier{Clock: h.fx.Clock}
	for _, s := range []secret.Value{first.Secret, cur.Secret} {
		if err := v.Verify(hdr, body, s); err != nil {
			t.Fatalf("receiver holding one secret rejects a delivery: %v", err)
		}
	}
}

// An endpoint that already has two live secrets, one of them stale (no
// stored version holds it), still rotates: the stale one is ended with a
// warning.
func TestRotateWebhookWithStaleSecondSecret(t *testing.T) {
	h := newHarness(t)
	ms, first := h.seedWebhook("hooks/stale")
	stale, err := h.client(laki.Sandbox, h.fx.SandboxKey).CreateWebhookSecret(context.Background(), "manual-1", ms.EndpointID)
	if err != nil {
		t.Fatal(err)
	}
	h.keep(stale.Secret)
	// Made by hand some hours ago: older than the orphan margin, so it cannot
	// be the new secret of a rotation live elsewhere.
	h.fx.Clock.Advance(3 * time.Hour)
	e := h.engine(nil)
	res, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("slot-1"))
	if err != nil {
		t.Fatal(err)
	}
	live := liveSecrets(h.endpoint(ms.EndpointID))
	if _, ok := live[stale.ID]; ok {
		t.Fatalf("stale secret still live: %v", live)
	}
	if live[first.ID] != laki.StatusExpiring || live[res.KeyID] != laki.StatusActive {
		t.Fatalf("endpoint secrets %v", live)
	}
	if len(h.eventsFor(ms.Name, events.StepCreate, events.OutcomeWarning)) != 1 {
		t.Fatal("no warning event for the stale secret")
	}
}

// A crash after the webhook secret was created: the restart's create is a
// replay (the endpoint already has two secrets), and one new secret results.
func TestWebhookCrashAfterCreateReplays(t *testing.T) {
	h := newHarness(t)
	ms, first := h.seedWebhook("hooks/crash")
	if _, err := h.engine(crashAt(rotator.AfterCreate)).Rotate(context.Background(), ms, basePolicy(), scheduled("s")); err == nil {
		t.Fatal("no crash")
	}
	var res rotator.Result
	var err error
	h.settling(func() { res, err = h.engine(nil).Rotate(context.Background(), ms, basePolicy(), scheduled("s")) })
	if err != nil {
		t.Fatal(err)
	}
	live := liveSecrets(h.endpoint(ms.EndpointID))
	if len(live) != 2 || live[first.ID] != laki.StatusExpiring || live[res.KeyID] != laki.StatusActive {
		t.Fatalf("endpoint secrets %v, new %s", live, res.KeyID)
	}
	h.current(ms.Name)
	// After the grace only the new one signs.
	h.fx.Clock.Advance(25 * time.Hour)
	live = liveSecrets(h.endpoint(ms.EndpointID))
	if len(live) != 1 {
		t.Fatalf("after grace: %v", live)
	}
}

// A rotation killed after its new signing secret was made, never resumed
// under its own cause, leaves the endpoint with two live secrets. The next
// rotation (another cause) must still go through: its create's 409 is a
// dead end that LakiConnect replays for a day under the same
// Idempotency-Key, so the stale secret is ended and the create moves to its
// next attempt's key. The secret made before the kill ends; one new secret
// signs.
func TestWebhookWithTwoLiveSecretsStillRotates(t *testing.T) {
	h := newHarness(t)
	ms, first := h.seedWebhook("hooks/two-live")
	ctx := context.Background()
	if _, err := h.engine(crashAt(rotator.AfterCreate)).Rotate(ctx, ms, basePolicy(), scheduled("killed")); err == nil {
		t.Fatal("no crash")
	}
	if n := len(liveSecrets(h.endpoint(ms.EndpointID))); n != 2 {
		t.Fatalf("%d live secrets after the kill, want 2", n)
	}
	// Within the orphan margin the unstored secret may belong to a rotation
	// live on a replica: another cause does not end it, it waits.
	if _, err := h.engine(func(c *rotator.Config) { c.Attempts = 1 }).Rotate(ctx, ms, basePolicy(), scheduled("soon")); err == nil {
		t.Fatal("a rotation ended a young unstored secret that a live rotation may hold")
	}
	if n := len(liveSecrets(h.endpoint(ms.EndpointID))); n != 2 {
		t.Fatalf("%d live secrets after the refused rotation, want 2", n)
	}
	h.fx.Clock.Advance(2 * time.Hour) // past the margin: the secret is a leftover
	for i, slot := range []string{"next", "after"} {
		res, err := h.engine(nil).Rotate(ctx, ms, basePolicy(), scheduled(slot))
		if err != nil {
			t.Fatalf("rotation %d of an endpoint with two live secrets: %v", i+1, err)
		}
		live := liveSecrets(h.endpoint(ms.EndpointID))
		if len(live) != 2 || live[res.KeyID] != laki.StatusActive {
			t.Fatalf("rotation %d: endpoint secrets %v, new %s", i+1, live, res.KeyID)
		}
		if h.current(ms.Name).SecretID != res.KeyID {
			t.Fatalf("rotation %d: AWSCURRENT is not the new secret", i+1)
		}
	}
	if _, ok := liveSecrets(h.endpoint(ms.EndpointID))[first.ID]; ok {
		t.Fatal("the seeded secret still signs after two rotations")
	}
	var idem []string
	for _, r := range h.fx.Sim.Requests() {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/secrets") {
			idem = append(idem, r.IdempotencyKey)
		}
	}
	if !slices.ContainsFunc(idem, func(k string) bool { return strings.HasSuffix(k, "-create-attempt-2") }) {
		t.Fatalf("no create moved to its second attempt: %v", idem)
	}
}
