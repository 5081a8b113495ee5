package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/testutil/fakeslack"
	"github.com/lakirotator/lakirotator/rotator"
)

// sendSlashCommand sends a signed /rotate command to the running daemon and returns
// the status and the ephemeral text (or the body).
func sendSlashCommand(t *testing.T, r *running, at time.Time, user, text string) (int, string) {
	t.Helper()
	body := url.Values{"command": {"/rotate"}, "user_id": {user}, "text": {text}}.Encode()
	req, err := http.NewRequest(http.MethodPost, r.url+"/v1/slack/commands", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	fakeslack.SignCommand(req, slackSigning, at, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var msg struct{ Text string }
	if json.Unmarshal(b, &msg) == nil && msg.Text != "" {
		return resp.StatusCode, msg.Text
	}
	return resp.StatusCode, string(b)
}

// auditRecords reads the world's audit file.
func auditRecords(t *testing.T, w *world) []audit.Record {
	t.Helper()
	f, err := os.Open(filepath.Join(w.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec audit.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("audit line: %v", err)
		}
		out = append(out, rec)
	}
	return out
}

func triggerRecords(recs []audit.Record, outcome events.Outcome, keep func(events.Event) bool) []events.Event {
	var out []events.Event
	for _, r := range recs {
		if r.Event.Step == events.StepTrigger && r.Event.Outcome == outcome && keep(r.Event) {
			out = append(out, r.Event)
		}
	}
	return out
}

var slackTriggerID = regexp.MustCompile("trigger `([^`]+)`")

// The HTTP API and the Slack command are doors into one trigger path: each
// accepted request makes exactly one "accepted" audit record and each
// refused one exactly one "refused" record, written by the daemon, with
// the authenticated principal as actor and a named person as on_behalf_of.
func TestDoorsRecordExactlyOneAcceptedOrRefused(t *testing.T) {
	w := newWorld(t, worldOptions{slack: true})
	r := w.run(w.build(rotator.Hooks{}), w.ln)
	ctx := context.Background()

	st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secReporting, Cause: events.CauseManual, Requester: "someone-else", Reason: "actor test"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Actor != "token:tester" || st.OnBehalfOf != "someone-else" {
		t.Errorf("trigger status actor %q on behalf of %q; want token:tester on behalf of someone-else", st.Actor, st.OnBehalfOf)
	}
	w.waitTrigger(r, st.ID)
	if _, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: "app/nope", Cause: events.CauseManual, Requester: "someone-else"}); err == nil {
		t.Fatal("a trigger of an unknown secret was accepted")
	}

	at := w.clk.Now()
	status, answer := sendSlashCommand(t, r, at, slackUser, secCheckout+" compromise pasted in a channel")
	m := slackTriggerID.FindStringSubmatch(answer)
	if status != http.StatusOK || !strings.HasPrefix(answer, "Accepted: compromise rotation of `"+secCheckout+"`") || m == nil {
		t.Fatalf("slack answered %d %q; want Accepted with a trigger id", status, answer)
	}
	slackID := m[1]
	// The same signed request again (a replay within Slack's window) is
	// refused: one request, one compromise trigger.
	if status, answer := sendSlashCommand(t, r, at, slackUser, secCheckout+" compromise pasted in a channel"); status != http.StatusUnauthorized {
		t.Errorf("replayed Slack request answered %d %q; want 401", status, answer)
	}
	w.waitTrigger(r, slackID)
	status, answer = sendSlashCommand(t, r, w.clk.Now(), slackUser, "app/nope manual by mistake")
	if status != http.StatusOK || answer != `Refused: no managed secret is named "app/nope"` {
		t.Errorf("slack answered %d %q for an unknown secret; want the daemon's refusal", status, answer)
	}
	r.stop()

	recs := auditRecords(t, w)
	httpAccepted := triggerRecords(recs, events.OutcomeSucceeded, func(e events.Event) bool { return e.TriggerID == st.ID })
	if len(httpAccepted) != 1 {
		t.Fatalf("%d accepted records for the HTTP trigger, want exactly 1", len(httpAccepted))
	}
	if e := httpAccepted[0]; e.Actor != "token:tester" || e.OnBehalfOf != "someone-else" || e.Source != events.SourceHTTP {
		t.Errorf("HTTP trigger recorded actor %q on behalf of %q via %s; want token:tester on behalf of someone-else via http", e.Actor, e.OnBehalfOf, e.Source)
	}
	for _, rec := range recs {
		if rec.Event.TriggerID == st.ID && (rec.Event.Actor != "token:tester" || rec.Event.OnBehalfOf != "someone-else") {
			t.Errorf("record %d (%s/%s) of the HTTP trigger has actor %q on behalf of %q", rec.Seq, rec.Event.Step, rec.Event.Outcome, rec.Event.Actor, rec.Event.OnBehalfOf)
		}
	}
	httpRefused := triggerRecords(recs, events.OutcomeRefused, func(e events.Event) bool { return e.Source == events.SourceHTTP })
	if len(httpRefused) != 1 || httpRefused[0].Actor != "token:tester" || httpRefused[0].OnBehalfOf != "someone-else" {
		t.Errorf("HTTP refusals recorded: %+v; want exactly 1, actor token:tester on behalf of someone-else", httpRefused)
	}

	slackAccepted := triggerRecords(recs, events.OutcomeSucceeded, func(e events.Event) bool { return e.Source == events.SourceSlack })
	if len(slackAccepted) != 1 || slackAccepted[0].TriggerID != slackID || slackAccepted[0].Actor != slackUser {
		t.Errorf("Slack accepted records: %+v; want exactly 1, trigger %s, actor %s", slackAccepted, slackID, slackUser)
	}
	slackRefused := triggerRecords(recs, events.OutcomeRefused, func(e events.Event) bool { return e.Source == events.SourceSlack })
	if len(slackRefused) != 1 || slackRefused[0].Actor != slackUser {
		t.Errorf("Slack refused records: %+v; want exactly 1 with actor %s", slackRefused, slackUser)
	}
}
