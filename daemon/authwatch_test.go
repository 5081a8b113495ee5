package daemon_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/rotator"
)

// refusedCalls makes n calls to LakiConnect with key and expects each refused.
func refusedCalls(t *testing.T, w *world, key secret.Value, n int) {
	t.Helper()
	c, err := lakiconnect.NewClient(lakiconnect.Config{BaseURL: w.fix.SandboxURL, APIKey: key, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		_, err := c.WhoAmI(context.Background())
		var apiErr *lakiconnect.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
			t.Fatalf("whoami with a bad key: %v; want 401", err)
		}
	}
}

// The 401/403 watch sees what it cannot attribute: 30 refusals with keys
// LakiConnect does not know, spread over prefixes, alert on their own
// threshold; and LakiConnect's spike event about a retired key names the
// managed secret that held it. Both say it in words, with the numbers.
func TestAuthWatchUnattributedBurstAndSpikeNamingTheSecret(t *testing.T) {
	w := newWorld(t, worldOptions{securityWebhook: true})
	w.cfgYAML = append(w.cfgYAML, []byte("auth_watch:\n  poll_interval: 10s\n  unattributed: {unauthorized_401: 20, window: 1m}\n")...)
	r := w.run(w.build(rotator.Hooks{}), w.ln)

	// 30 guesses with keys LakiConnect never issued, 10 per prefix.
	for _, p := range []string{"aaaa", "bbbb", "cccc"} {
		refusedCalls(t, w, secret.New("lk_test_"+p+strings.Repeat("x", 40)), 10)
	}
	var alert events.Event
	w.eventually("an alert for the unattributed burst", func() bool {
		got := eventsWhere(r.rec, func(e events.Event) bool {
			return e.Step == events.StepAlert && e.Details["reason"] == "unauthorized_unattributed"
		})
		if len(got) > 0 {
			alert = got[0]
		}
		return len(got) > 0
	})
	if alert.Details["count"] != "30" || alert.MasterMerchantID != w.merchant || !strings.Contains(alert.Reason, "30 requests were refused with 401 (unauthorized)") ||
		!strings.Contains(alert.Reason, "keys LakiConnect does not know") {
		t.Errorf("unattributed alert: count %s, merchant %s, reason %q", alert.Details["count"], alert.MasterMerchantID, alert.Reason)
	}

	// A rotation retires app/reporting's key; someone keeps using it after
	// it is revoked, and LakiConnect reports the spike.
	old := w.current(secReporting)
	st, err := r.client.Trigger(context.Background(), httpapi.TriggerRequest{Secret: secReporting, Cause: events.CauseManual, Reason: "spike test"})
	if err != nil {
		t.Fatal(err)
	}
	w.waitTrigger(r, st.ID)
	if err := w.fix.Sim.RevokeKey(old.KeyID, "revoked_by_api"); err != nil {
		t.Fatal(err)
	}
	refusedCalls(t, w, old.Secret, 25)
	w.eventually("the spike event's alert names the secret", func() bool {
		got := eventsWhere(r.rec, func(e events.Event) bool {
			return e.Step == events.StepAlert && e.Details["reason"] == "auth_failure_spike" && e.KeyID == old.KeyID
		})
		if len(got) > 0 {
			alert = got[0]
		}
		return len(got) > 0
	})
	if alert.Secret != secReporting || !strings.Contains(alert.Reason, "the retired (previous) key of "+secReporting) || !strings.HasPrefix(alert.Actor, "lakiconnect:evt_") {
		t.Errorf("spike alert: secret %q, actor %q, reason %q; want it to name %s and the key's state, by the event", alert.Secret, alert.Actor, alert.Reason, secReporting)
	}
}
