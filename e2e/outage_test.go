package e2e

// A security event during a LakiConnect outage: the event is acknowledged,
// the action cannot run, the daemon is killed and restarted while
// LakiConnect is still down. The alert escalates while it is down; the
// exposed key is revoked once LakiConnect is back; a redelivery after that
// (and after another restart) changes nothing.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// escalateAfter is how long an emergency may stay undone before a critical
// alert, in the outage test (the daemon's default is 5 min).
const escalateAfter = 3 * time.Second

func TestSecurityEventDuringOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("outage: starts moto, lakisim and the daemon")
	}
	f := newFleet(t, fleetOptions{replicas: 1, engine: "  escalate_after: " + escalateAfter.String() + "\n"})
	r := f.replicas[0]
	f.start(r, true)
	defer func() {
		if t.Failed() {
			t.Log(f.tail(r))
			t.Log(f.slack.dump())
		}
	}()
	s := f.secret("payments/production/checkout")
	before := f.storedVersions(s)
	exposed := current(before).cred

	// LakiConnect refuses everything (503) from now on.
	f.simAdmin("POST", "/_sim/faults", map[string]any{"status": 503}, nil)
	outage := time.Now()
	cleared := false
	defer func() {
		if !cleared {
			f.simAdmin("DELETE", "/_sim/faults", nil, nil)
		}
	}()
	var exposure struct {
		EventID string `json:"event_id"`
	}
	f.simAdmin("POST", "/_sim/keys/"+exposed+"/expose", map[string]string{"source": "paste_site"}, &exposure)
	eventually(t, 15*time.Second, "LakiConnect's delivery of api_key.exposed is acknowledged with 2xx", func() bool {
		return f.delivered(exposure.EventID)
	})

	alerts := func(since time.Time) []auditRecord {
		var out []auditRecord
		for _, rec := range f.audit(r) {
			ev := rec.Event
			if ev.Step == "alert" && ev.Outcome != "succeeded" && ev.Secret == s.name && !rec.Time.Before(since) {
				out = append(out, rec)
			}
		}
		return out
	}
	eventually(t, escalateAfter+15*time.Second, "a critical alert says the compromise is still not done", func() bool {
		return len(alerts(outage)) > 0
	}, func() string { return f.tail(r) })

	// Killed and restarted while LakiConnect is still down.
	f.kill(r)
	restarted := time.Now()
	f.start(r, false)
	eventually(t, 30*time.Second, "the restarted daemon answers /healthz", func() bool {
		resp, err := http.Get(r.apiURL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	eventually(t, 2*escalateAfter+15*time.Second, "the alert keeps escalating after the restart, LakiConnect still down", func() bool {
		return len(alerts(restarted)) > 0
	}, func() string { return f.tail(r) })
	// Before and after the restart: an alert each time, besides the
	// "accepted" of the trigger.
	msgs := f.slack.find(func(m slackMessage) bool {
		return m.Channel == fleetSecurity && strings.Contains(m.fields()["Secret"], s.name) && !strings.Contains(m.header(), "accepted")
	})
	if len(msgs) < 2 {
		t.Errorf("Slack's security channel got %d alerts about %s during the outage, want one before and one after the restart\n%s", len(msgs), s.name, f.slack.dump())
	}

	// LakiConnect is back: the exposed key ends, a new one is current.
	f.simAdmin("DELETE", "/_sim/faults", nil, nil)
	cleared = true
	back := time.Now()
	eventually(t, 60*time.Second, "the exposed key is revoked once LakiConnect is back", func() bool {
		return f.key(s.env, exposed).Status == laki.StatusRevoked
	}, func() string { return f.tail(r) })
	t.Logf("exposed key revoked %s after LakiConnect came back (outage %s)", time.Since(back).Round(100*time.Millisecond), back.Sub(outage).Round(100*time.Millisecond))
	cur := current(f.storedVersions(s))
	if cur.cred == exposed || cur.cred == "" {
		t.Errorf("AWSCURRENT of %s still holds %q", s.name, cur.cred)
	} else if k := f.key(s.env, cur.cred); k.Status != laki.StatusActive {
		t.Errorf("the new AWSCURRENT key %s of %s is %s", cur.cred, s.name, k.Status)
	}
	rotations := func() []auditRecord {
		var out []auditRecord
		for _, rec := range f.audit(r) {
			if ev := rec.Event; ev.Secret == s.name && ev.Step == "rotation" && ev.Outcome == "succeeded" {
				out = append(out, rec)
			}
		}
		return out
	}
	// The old key ends before the rotation's record is written.
	eventually(t, 10*time.Second, "the rotation's success is audited", func() bool { return len(rotations()) > 0 })
	succeeded := 0
	for _, rec := range rotations() {
		succeeded++
		if rec.Event.Cause != "compromise" {
			t.Errorf("audit #%d: the rotation of %s succeeded as cause %q, want compromise", rec.Seq, s.name, rec.Event.Cause)
		}
	}
	if succeeded != 1 {
		t.Errorf("%d rotation/succeeded records for %s, want 1", succeeded, s.name)
	}

	// Once done, no more escalation; a redelivery after another restart is a no-op.
	time.Sleep(escalateAfter + time.Second)
	done := time.Now()
	f.stop(r)
	f.start(r, true)
	nSlack, nAudit := len(f.slack.messages()), len(f.audit(r))
	if st := f.redeliver(r, exposure.EventID); st/100 != 2 {
		t.Errorf("redelivery of %s: status %d, want 2xx", exposure.EventID, st)
	}
	time.Sleep(3 * time.Second)
	if late := alerts(done); len(late) > 0 {
		t.Errorf("%d alerts about %s after its compromise was done, e.g. #%d %q", len(late), s.name, late[0].Seq, late[0].Event.Reason)
	}
	if extra := f.slack.messages()[nSlack:]; len(extra) > 0 {
		var hs []string
		for _, m := range extra {
			hs = append(hs, m.header())
		}
		t.Errorf("a redelivery of an event already acted on sent %d Slack messages: %q", len(extra), hs)
	}
	for _, rec := range f.audit(r)[nAudit:] {
		if ev := rec.Event; ev.Secret == s.name || ev.Severity == "critical" {
			t.Errorf("a redelivery of an event already acted on was audited: #%d %s/%s %s severity=%s", rec.Seq, ev.Step, ev.Outcome, ev.Secret, ev.Severity)
		}
	}
	if got := current(f.storedVersions(s)); got.id != cur.id {
		t.Errorf("the redelivery rotated %s again (AWSCURRENT %s, was %s)", s.name, got.id, cur.id)
	}
}

// delivered reports whether LakiConnect's delivery of an event got a 2xx.
func (f *fleet) delivered(eventID string) bool {
	var ds []struct {
		EventID    string `json:"event_id"`
		StatusCode int    `json:"status_code"`
	}
	f.simAdmin("GET", "/_sim/deliveries", nil, &ds)
	for _, d := range ds {
		if d.EventID == eventID && d.StatusCode/100 == 2 {
			return true
		}
	}
	return false
}

// redeliver posts an event LakiConnect raised once more, signed anew, as an
// at-least-once delivery may.
func (f *fleet) redeliver(r *replica, eventID string) int {
	var evs []lakiconnect.Event
	f.simAdmin("GET", "/_sim/events", nil, &evs)
	for _, ev := range evs {
		if ev.ID == eventID {
			body, _ := json.Marshal(ev)
			return f.postEvent(r, ev.Environment, body)
		}
	}
	f.t.Fatalf("lakisim raised no event %s", eventID)
	return 0
}
