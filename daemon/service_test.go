package daemon_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

func sortedScopes(s []laki.Scope) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	slices.Sort(out)
	return out
}

// assertKeyScopes checks at the simulator that a key holds exactly want.
func assertKeyScopes(t *testing.T, w *world, keyID string, want []laki.Scope) {
	t.Helper()
	k, ok := w.fix.Sim.Key(keyID)
	if !ok {
		t.Fatalf("key %s does not exist at LakiConnect", keyID)
	}
	if got, exp := sortedScopes(k.Scopes), sortedScopes(want); !slices.Equal(got, exp) {
		t.Errorf("key %s has scopes %v at LakiConnect, the policy says %v", keyID, got, exp)
	}
}

func TestTriggerOneSecretRotatesOnlyIt(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	ctx := context.Background()
	oldCheckout, oldReporting := w.current(secCheckout), w.current(secReporting)

	st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "ops@example", Reason: "routine check"})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	if st.Total != 1 || st.Source != events.SourceHTTP {
		t.Errorf("accepted trigger = total %d source %s, want 1 secret from http", st.Total, st.Source)
	}
	final := w.waitTrigger(r, st.ID)
	if final.State != httpapi.StateSucceeded || final.Done != 1 || final.Failed != 0 {
		t.Fatalf("trigger ended %s (%d done, %d failed): %+v", final.State, final.Done, final.Failed, final.Secrets)
	}
	newCheckout := w.current(secCheckout)
	w.remember(newCheckout.Secret)
	if newCheckout.KeyID == oldCheckout.KeyID {
		t.Fatalf("AWSCURRENT of %s still holds key %s", secCheckout, oldCheckout.KeyID)
	}
	if final.Secrets[0].VersionID == "" {
		t.Error("trigger progress does not name the new version")
	}
	assertKeyScopes(t, w, newCheckout.KeyID, checkoutScopes)
	if prev := w.stage(secCheckout, "AWSPREVIOUS"); prev.KeyID != oldCheckout.KeyID {
		t.Errorf("AWSPREVIOUS holds %s, want the old key %s", prev.KeyID, oldCheckout.KeyID)
	}
	// A manual rotation gives the old key its grace (1h): it is ending, not gone.
	old, _ := w.fix.Sim.Key(oldCheckout.KeyID)
	if old.Status != laki.StatusExpiring || old.ExpiresAt == nil || !old.ExpiresAt.After(w.clk.Now()) {
		t.Errorf("old key %s is %s (expires %v); want expiring after now (grace 1h)", old.ID, old.Status, old.ExpiresAt)
	}
	if got := w.current(secReporting); got.KeyID != oldReporting.KeyID {
		t.Errorf("%s rotated too (key %s → %s); only %s was asked for", secReporting, oldReporting.KeyID, got.KeyID, secCheckout)
	}

	// The metrics endpoint counts the rotation by cause and result.
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `lakirotator_rotations_total{cause="manual",result="succeeded"} 1`) {
		t.Errorf("/metrics lacks one manual succeeded rotation:\n%s", grepLines(string(body), "lakirotator_rotations_total"))
	}
	assertNoSecrets(t, "/metrics", string(body), w.allStoredSecrets())
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestTriggerOwnerRotatesExactlyTheirSecrets(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	ctx := context.Background()
	before := map[string]string{}
	for _, n := range []string{secCheckout, secReporting, secWebhook} {
		c := w.current(n)
		before[n] = c.KeyID + c.SecretID
	}

	st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Owner: "alice", Cause: events.CausePersonnel, Requester: "hr-bot", Reason: "alice left the company"})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	if st.Total != 2 {
		t.Errorf("alice's trigger selects %d secrets, want 2 (%s, %s)", st.Total, secCheckout, secWebhook)
	}
	final := w.waitTrigger(r, st.ID)
	if final.State != httpapi.StateSucceeded {
		t.Fatalf("trigger ended %s: %+v", final.State, final.Secrets)
	}
	var rotated []string
	for _, p := range final.Secrets {
		rotated = append(rotated, p.Secret)
	}
	slices.Sort(rotated)
	if want := []string{secCheckout, secWebhook}; !slices.Equal(rotated, want) {
		t.Errorf("trigger rotated %v, want %v", rotated, want)
	}
	for n, was := range before {
		c := w.current(n)
		w.remember(c.Secret)
		changed := c.KeyID+c.SecretID != was
		if wantChanged := n != secReporting; changed != wantChanged {
			t.Errorf("%s changed=%v, want %v (alice owns checkout and the webhook, not reporting)", n, changed, wantChanged)
		}
	}
	newKey := w.current(secCheckout)
	assertKeyScopes(t, w, newKey.KeyID, checkoutScopes)
	// Personnel grace is zero: the old checkout key ends now.
	oldID := before[secCheckout] // an API key: KeyID alone
	old, _ := w.fix.Sim.Key(oldID)
	if old.Status == laki.StatusActive {
		t.Errorf("old key %s is still active after a personnel rotation with zero grace", oldID)
	}
	// The trigger is recorded as a critical personnel event naming the owner.
	accepted := eventsWhere(r.rec, func(e events.Event) bool {
		return e.Step == events.StepTrigger && e.Outcome == events.OutcomeSucceeded && e.TriggerID == st.ID
	})
	if len(accepted) != 1 || accepted[0].Severity != events.SeverityCritical || accepted[0].Details["owner"] != "alice" {
		t.Errorf("accepted trigger events = %+v; want one critical event naming owner alice", accepted)
	}
}

func TestTriggerAllRotatesEverySecret(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	before := map[string]string{}
	for _, n := range []string{secCheckout, secReporting, secWebhook} {
		c := w.current(n)
		before[n] = c.KeyID + c.SecretID
	}
	mgmtBefore := w.current(secMgmt).KeyID
	st, err := r.client.Trigger(context.Background(), httpapi.TriggerRequest{All: true, Cause: events.CauseManual, Requester: "ops"})
	if err != nil {
		t.Fatalf("trigger: %v", err)
	}
	final := w.waitTrigger(r, st.ID)
	if final.State != httpapi.StateSucceeded || final.Done != 3 {
		t.Fatalf("trigger all ended %s with %d done: %+v", final.State, final.Done, final.Secrets)
	}
	for n, was := range before {
		c := w.current(n)
		w.remember(c.Secret)
		if c.KeyID+c.SecretID == was {
			t.Errorf("%s did not rotate", n)
		}
	}
	assertKeyScopes(t, w, w.current(secReporting).KeyID, reportingScopes)
	// The management key is not a managed secret here: "all" leaves it be.
	if got := w.current(secMgmt).KeyID; got != mgmtBefore {
		t.Errorf("management key changed (%s → %s); it is not managed in this config", mgmtBefore, got)
	}
}

func TestRefusedTriggers(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	ctx := context.Background()
	cases := []struct {
		name string
		req  httpapi.TriggerRequest
		want string // in the error message
	}{
		{"unknown secret", httpapi.TriggerRequest{Secret: "app/nope", Cause: events.CauseManual, Requester: "ops"}, `no managed secret is named "app/nope"`},
		{"unknown owner", httpapi.TriggerRequest{Owner: "mallory", Cause: events.CausePersonnel, Requester: "ops", Reason: "left"}, `owner "mallory" has no managed secrets`},
		{"compromise without reason", httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseCompromise, Requester: "ops"}, "reason is required for a compromise rotation"},
		{"blank requester", httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "   "}, "requester, when given, must name someone"},
		{"scheduled cause", httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseScheduled, Requester: "ops"}, `cause "scheduled" is not compromise, personnel or manual`},
		{"no cause", httpapi.TriggerRequest{Secret: secCheckout, Requester: "ops"}, "cause is required"},
		{"two selectors", httpapi.TriggerRequest{Secret: secCheckout, All: true, Cause: events.CauseManual, Requester: "ops"}, "exactly one of a secret, an owner, or all"},
	}
	keyBefore := w.current(secCheckout).KeyID
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.client.Trigger(ctx, tc.req)
			var ae *httpapi.APIError
			if !errors.As(err, &ae) || ae.StatusCode != http.StatusBadRequest {
				t.Fatalf("trigger error = %v; want a 400 answer", err)
			}
			if !strings.Contains(ae.Message, tc.want) {
				t.Errorf("400 message %q does not say %q", ae.Message, tc.want)
			}
			refused := eventsWhere(r.rec, func(e events.Event) bool {
				return e.Step == events.StepTrigger && e.Outcome == events.OutcomeRefused && strings.Contains(e.Error, tc.want)
			})
			if len(refused) != 1 {
				t.Errorf("%d refused trigger events say %q, want 1", len(refused), tc.want)
			}
		})
	}
	// In-process callers (CLI --local) cannot leave the actor out either.
	_, err := r.svc.Daemon.Trigger(ctx, trigger.Request{Secret: secCheckout, Cause: events.CauseManual, OnBehalfOf: "ops", Source: events.SourceCLI})
	if ref, ok := trigger.Refused(err); !ok || !strings.Contains(ref.Reason, "not identified") {
		t.Errorf("trigger without actor: %v; want a refusal saying the caller is not identified", err)
	}
	if got := w.current(secCheckout).KeyID; got != keyBefore {
		t.Errorf("a refused trigger rotated %s (%s → %s)", secCheckout, keyBefore, got)
	}
	if n := len(keysFor(w, secCheckout)); n != 1 {
		t.Errorf("%d keys exist for %s after refused triggers, want 1", n, secCheckout)
	}
}

func TestInventoryAndOutputsNeverHoldSecretValues(t *testing.T) {
	w := newWorld(t, worldOptions{})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	st, err := r.client.Trigger(context.Background(), httpapi.TriggerRequest{All: true, Cause: events.CauseManual, Requester: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if final := w.waitTrigger(r, st.ID); final.State != httpapi.StateSucceeded {
		t.Fatalf("trigger ended %s: %+v", final.State, final.Secrets)
	}
	req, _ := http.NewRequest(http.MethodGet, r.url+"/v1/inventory", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("inventory: %d %s", resp.StatusCode, raw)
	}
	for _, n := range []string{secCheckout, secReporting, secWebhook} {
		if !strings.Contains(string(raw), `"name":"`+n+`"`) {
			t.Errorf("inventory does not list %s: %s", n, raw)
		}
	}
	inv, err := r.client.Inventory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range inv.Secrets {
		if s.Name == secCheckout && (s.CurrentVersionID == "" || s.PreviousVersionID == "" || s.PendingVersionID != "" || s.NextRotation == nil) {
			t.Errorf("inventory of %s = %+v; want current and previous versions, nothing in flight, a next rotation", s.Name, s)
		}
	}
	values := w.allStoredSecrets()
	assertNoSecrets(t, "inventory JSON", string(raw), values)
	r.stop()
	audit, err := os.ReadFile(w.dir + "/audit.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(audit), `"step":"promote"`) {
		t.Errorf("the audit file records no promotion")
	}
	assertNoSecrets(t, "audit file", string(audit), values)
	assertNoSecrets(t, "logs", w.logs.String(), values)
	assertNoSecrets(t, "standard output", w.stdout.String(), values)
}
