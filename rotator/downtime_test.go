package rotator_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// Consumers that refresh AWSCURRENT only once per step (a stale cache) see
// no failed call through a scheduled rotation: the API key consumer's
// /whoami and the webhook receiver's verification of what LakiConnect signs.
func TestZeroDowntimeForCachingConsumers(t *testing.T) {
	h := newHarness(t)
	api := h.seedKey("svc/consumer", inventory.KindAPIKey, laki.Sandbox, apiScopes)
	hook, _ := h.seedWebhook("hooks/consumer")
	cached := map[string]secret.Value{api.Name: h.current(api.Name).Secret, hook.Name: h.current(hook.Name).Secret}
	mgmt := h.client(laki.Sandbox, h.fx.SandboxKey)
	verifier := webhooksig.Verifier{Clock: h.fx.Clock}
	var failures []string
	n := 0
	check := func(where string) {
		n++
		if _, err := h.whoami(laki.Sandbox, cached[api.Name]); err != nil {
			failures = append(failures, fmt.Sprintf("%s: api consumer: %v", where, err))
		}
		ts, err := mgmt.TestWebhookSignature(context.Background(), fmt.Sprintf("consumer-%d", n), hook.EndpointID)
		if err != nil {
			t.Fatal(err)
		}
		if err := verifier.Verify(ts.SignatureHeader, []byte(ts.Payload), cached[hook.Name]); err != nil {
			failures = append(failures, fmt.Sprintf("%s: webhook receiver: %v", where, err))
		}
	}
	e := h.engine(func(c *rotator.Config) {
		c.Hooks.AfterStep = func(name string, s rotator.Boundary) error {
			check(fmt.Sprintf("after %s of %s", s, name))
			for _, ms := range []string{api.Name, hook.Name} { // refresh caches after the check
				c, _ := h.store.peek(ms, secretstore.StageCurrent)
				h.keep(c.Secret)
				cached[ms] = c.Secret
			}
			return nil
		}
	})
	for _, ms := range []inventory.ManagedSecret{api, hook} {
		if _, err := e.Rotate(context.Background(), ms, basePolicy(), scheduled("s")); err != nil {
			t.Fatal(err)
		}
	}
	check("after both rotations")
	if n < 10 {
		t.Fatalf("only %d checks ran", n)
	}
	for _, f := range failures {
		t.Error(f)
	}
}
