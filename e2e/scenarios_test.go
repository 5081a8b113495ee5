package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
)

// TestEndToEnd runs every scenario against one set of processes, in order:
// later scenarios (restart, audit verify, leak scan) build on earlier ones.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: starts moto, lakisim and the daemon")
	}
	w := newWorld(t)
	defer func() {
		if t.Failed() {
			t.Log(w.daemonTail())
			t.Log(w.auditTail())
			t.Log(w.slack.dump())
		}
	}()
	// Snapshot of every initial AWSCURRENT key id.
	initial := map[string]string{}
	for _, mk := range managedKeys {
		initial[mk.name] = w.currentKeyID(mk.name)
	}

	steps := []struct {
		name string
		f    func(t *testing.T, w *world, initial map[string]string)
	}{
		{"unknown_secret_and_status", testUnknownSecretAndStatus},
		{"personnel_trigger", testPersonnelTrigger},
		{"scheduled_rotation", testScheduledRotation},
		{"forged_webhooks_refused", testForgedWebhooks},
		{"exposed_key_compromise", testExposedKey},
		{"failed_rotation", testFailedRotation},
		{"slack_slash_command", testSlashCommand},
		{"sigterm_mid_batch", testSigtermMidBatch},
		{"audit_verify", testAuditVerify},
		{"no_secret_leaks", testNoLeaks},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { s.f(t, w.with(t), initial) }) {
			if s.name == "sigterm_mid_batch" {
				return // the daemon may be down; later steps would only add noise
			}
		}
	}
}

// with returns the world reporting failures to t (a subtest).
func (w *world) with(t *testing.T) *world {
	w.t = t
	return w
}

// Scenario 3.
func testUnknownSecretAndStatus(t *testing.T, w *world, _ map[string]string) {
	res := w.cli("", append([]string{"rotate", "payments/production/no-such-secret", "--reason", "e2e"}, w.apiArgs()...)...)
	if res.code != 2 {
		t.Fatalf("rotate of an unknown secret: want exit 2\n%s", res)
	}
	if !strings.Contains(res.stderr, "payments/production/no-such-secret") {
		t.Errorf("the error does not name the unknown secret\n%s", res)
	}

	res = w.cli("", append([]string{"status", "-o", "json"}, w.apiArgs()...)...)
	if res.code != 0 {
		t.Fatalf("status -o json: want exit 0\n%s", res)
	}
	var inv struct {
		Secrets []struct {
			Name           string `json:"name"`
			CurrentVersion string `json:"current_version"`
			Kind           string `json:"kind"`
		} `json:"secrets"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &inv); err != nil {
		t.Fatalf("status -o json is not JSON: %v\n%s", err, res)
	}
	listed := map[string]string{}
	for _, s := range inv.Secrets {
		listed[s.Name] = s.CurrentVersion
	}
	for _, mk := range managedKeys {
		ver, ok := listed[mk.name]
		if !ok {
			t.Errorf("status does not list %s", mk.name)
			continue
		}
		switch {
		case ver == "":
			t.Errorf("status lists no current version for %s", mk.name)
		case mk.policy != "fast" && !w.hasStage(mk.name, ver, "AWSCURRENT"):
			// (the fast secret may rotate between the two reads)
			t.Errorf("status says %s is current at %s, Secrets Manager disagrees", mk.name, ver)
		}
	}
	w.assertNoSecretIn(t, "status -o json", res.stdout+res.stderr)
}

func (w *world) hasAnyStage(name, stage string) bool {
	for ver := range w.stages(name) {
		if w.hasStage(name, ver, stage) {
			return true
		}
	}
	return false
}

func (w *world) hasStage(name, version, stage string) bool {
	for _, s := range w.stages(name)[version] {
		if s == stage {
			return true
		}
	}
	return false
}

// assertNoSecretIn fails when any secret value seen so far appears in text.
func (w *world) assertNoSecretIn(t *testing.T, where, text string) {
	t.Helper()
	w.mu.Lock()
	vals := append([]string(nil), w.secrets...)
	w.mu.Unlock()
	for _, v := range vals {
		if len(v) >= 8 && strings.Contains(text, v) {
			t.Errorf("%s contains a secret value ending %q", where, secret.New(v).Last4())
		}
	}
}

// Scenario 2.
func testPersonnelTrigger(t *testing.T, w *world, initial map[string]string) {
	// Without --yes, answering "n" rotates nothing.
	res := w.cli("n\n", append([]string{"trigger", "--owner", "alice", "--reason", "left the company"}, w.apiArgs()...)...)
	if res.code == 0 {
		t.Errorf("trigger answered n: want a non-zero exit\n%s", res)
	}
	if !strings.Contains(res.stderr, "alice-checkout") || !strings.Contains(res.stderr, "alice-refunds") {
		t.Errorf("the confirmation does not list alice's secrets\n%s", res)
	}
	for _, n := range []string{"payments/production/alice-checkout", "payments/production/alice-refunds"} {
		if got := w.currentKeyID(n); got != initial[n] {
			t.Errorf("%s rotated although the confirmation was refused", n)
		}
	}

	// A missing reason is a usage error.
	res = w.cli("", append([]string{"trigger", "--owner", "alice", "--yes"}, w.apiArgs()...)...)
	if res.code != 2 {
		t.Errorf("trigger without --reason: want exit 2\n%s", res)
	}
	if !strings.Contains(strings.ToLower(res.stderr), "reason") {
		t.Errorf("the error does not say the reason is missing\n%s", res)
	}

	res = w.cli("", append([]string{"trigger", "--owner", "alice", "--reason", "left the company", "--yes"}, w.apiArgs()...)...)
	if res.code != 0 {
		t.Fatalf("trigger --owner alice --yes: want exit 0\n%s\n%s", res, w.daemonTail())
	}
	for _, mk := range managedKeys {
		got := w.currentKeyID(mk.name)
		isAlice := mk.owners[0] == "alice"
		switch {
		case isAlice && got == initial[mk.name]:
			t.Errorf("%s (alice's) was not rotated", mk.name)
		case isAlice:
			old := w.simKey(initial[mk.name])
			if old.Status != laki.StatusExpiring {
				t.Errorf("%s: old key %s is %s, want expiring (personnel grace 1h)", mk.name, old.ID, old.Status)
			}
			c, _ := w.stored(mk.name, "AWSCURRENT")
			if !w.whoami(c.Secret) {
				t.Errorf("%s: the new AWSCURRENT key does not authenticate", mk.name)
			}
		case mk.policy != "fast" && got != initial[mk.name]:
			t.Errorf("%s (not alice's) was rotated", mk.name)
		}
	}
	recs := w.findAudit(func(r auditRecord) bool {
		return r.Event.Step == "rotation" && r.Event.Outcome == "succeeded" && r.Event.Cause == "personnel"
	})
	if len(recs) != 2 {
		t.Errorf("audit has %d personnel rotations succeeded, want 2 (alice's secrets)\n%s", len(recs), w.auditTail())
	}
}

// Scenario 1.
func testScheduledRotation(t *testing.T, w *world, initial map[string]string) {
	const name = "payments/production/fast-api-key"
	eventually(t, 60*time.Second, "the fast policy's schedule rotates "+name, func() bool {
		return w.currentKeyID(name) != initial[name]
	}, w.daemonTail)
	cur, _ := w.stored(name, "AWSCURRENT")
	if !w.whoami(cur.Secret) {
		t.Errorf("the new AWSCURRENT of %s does not authenticate", name)
	}
	if old := w.simKey(initial[name]); old.Status != laki.StatusExpiring {
		t.Errorf("old key %s is %s at LakiConnect, want expiring (24h grace)", old.ID, old.Status)
	}
	prev, _ := w.stored(name, "AWSPREVIOUS")
	if prev.KeyID != initial[name] && w.simKey(prev.KeyID).Status != laki.StatusExpiring {
		t.Errorf("AWSPREVIOUS key %s is not expiring", prev.KeyID)
	}

	// Slack: a rotation message for the secret with its facts.
	var msg slackMessage
	eventually(t, 15*time.Second, "Slack gets the scheduled rotation message", func() bool {
		ms := w.slack.find(func(m slackMessage) bool {
			f := m.fields()
			return strings.Contains(f["Secret"], name) && f["Cause"] == "scheduled" && strings.Contains(m.header(), "succeeded")
		})
		if len(ms) == 0 {
			return false
		}
		msg = ms[0]
		return true
	}, w.slack.dump)
	f := msg.fields()
	if msg.Channel != rotationsChan {
		t.Errorf("rotation message went to %q, want %q", msg.Channel, rotationsChan)
	}
	if f["Secret"] != "`"+name+"`" {
		t.Errorf("Secret field %q", f["Secret"])
	}
	if f["Environment"] != "production" {
		t.Errorf("Environment field %q, want production", f["Environment"])
	}
	if f["Merchant"] != "`"+merchant+"`" {
		t.Errorf("Merchant field %q", f["Merchant"])
	}
	// The message is about some rotation of this secret: its last 4 is that of a key the secret held.
	last4s := map[string]bool{}
	for _, stage := range []string{"AWSCURRENT", "AWSPREVIOUS"} {
		c, _ := w.stored(name, stage)
		last4s[c.Secret.Last4()] = true
	}
	okKey := false
	for l4 := range last4s {
		if strings.Contains(f["Key"], "value ends `"+l4+"`") {
			okKey = true
		}
	}
	if !okKey {
		t.Errorf("Key field %q does not end with the last 4 of the stored key", f["Key"])
	}

	// Audit: the step records of the scheduled rotation.
	for _, step := range []string{"create", "test", "promote", "rotation"} {
		recs := w.findAudit(func(r auditRecord) bool {
			return r.Event.Secret == name && r.Event.Step == step && r.Event.Outcome == "succeeded" && r.Event.Cause == "scheduled"
		})
		if len(recs) == 0 {
			t.Errorf("audit has no %s/succeeded record for the scheduled rotation of %s", step, name)
		}
	}
}

// Scenario 5.
func testForgedWebhooks(t *testing.T, w *world, _ map[string]string) {
	path := fmt.Sprintf("%s/v1/lakiconnect/events/production/%s", w.apiURL, merchant)
	before := len(w.findAudit(isWebhookRefusal))
	body := fmt.Sprintf(`{"id":"evt_forged000000000000000001","object":"event","type":"api_key.exposed","environment":"production","master_merchant_id":%q,"idempotency_key":"idem-forged-1","created_at":%q,"data":{"key_id":%q,"source":"public_repository","detected_at":%q}}`,
		merchant, time.Now().UTC().Format(time.RFC3339), "key_forged", time.Now().UTC().Format(time.RFC3339))
	post := func(sig string) int {
		req, _ := http.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(lakiconnect.SignatureHeader, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	forged := webhooksig.Sign(time.Now(), []byte(body), secret.New("whsec_not-the-real-secret-0000000000"))
	if st := post(forged); st != http.StatusUnauthorized {
		t.Errorf("forged signature: status %d, want 401", st)
	}
	stale := webhooksig.Sign(time.Now().Add(-time.Hour), []byte(body), w.whSec)
	if st := post(stale); st != http.StatusUnauthorized {
		t.Errorf("stale timestamp: status %d, want 401", st)
	}
	eventually(t, 10*time.Second, "both refusals are in the audit file", func() bool {
		return len(w.findAudit(isWebhookRefusal)) >= before+2
	}, w.auditTail)
}

func isWebhookRefusal(r auditRecord) bool {
	return r.Event.Step == "auth" && r.Event.Outcome == "refused" && r.Event.Source == "lakiconnect_event"
}

// Scenario 4.
func testExposedKey(t *testing.T, w *world, initial map[string]string) {
	const name = "payments/production/exposed-key"
	exposed := w.currentKeyID(name)
	w.simAdmin("POST", "/_sim/keys/"+exposed+"/expose", map[string]string{"source": "public_repository", "url": "https://example.invalid/leak"}, nil)
	eventually(t, 30*time.Second, "the exposed key is revoked at LakiConnect", func() bool {
		return w.simKey(exposed).Status == laki.StatusRevoked
	}, w.daemonTail, w.auditTail)
	eventually(t, 15*time.Second, "AWSCURRENT holds a new key", func() bool { return w.currentKeyID(name) != exposed })
	cur, _ := w.stored(name, "AWSCURRENT")
	if !w.whoami(cur.Secret) {
		t.Errorf("the new AWSCURRENT key of %s does not authenticate", name)
	}
	eventually(t, 15*time.Second, "Slack shows the emergency: on the security channel, and its outcome", func() bool {
		alerted := w.slack.find(func(m slackMessage) bool {
			f := m.fields()
			return m.Channel == securityChan && f["Cause"] == "compromise" && f["Secret"] == "`"+name+"`"
		})
		done := w.slack.find(func(m slackMessage) bool {
			f := m.fields()
			return f["Cause"] == "compromise" && f["Secret"] == "`"+name+"`" &&
				strings.Contains(m.header(), "Compromise rotation succeeded") &&
				strings.Contains(f["Key"], "was `…"+exposed[len(exposed)-4:]+"`")
		})
		return len(alerted) > 0 && len(done) > 0
	}, w.slack.dump)
	recs := w.findAudit(func(r auditRecord) bool {
		return r.Event.Secret == name && r.Event.Step == "rotation" && r.Event.Outcome == "succeeded" && r.Event.Cause == "compromise"
	})
	if len(recs) == 0 {
		t.Errorf("audit has no succeeded compromise rotation of %s", name)
	}
}

// Scenario 6.
func testFailedRotation(t *testing.T, w *world, initial map[string]string) {
	const name = "payments/production/failing-key"
	w.simAdmin("POST", "/_sim/faults", map[string]any{"method": "POST", "path_prefix": "/api_keys", "status": 500}, nil)
	cleared := false
	clear := func() {
		if !cleared {
			w.simAdmin("DELETE", "/_sim/faults", nil, nil)
			cleared = true
		}
	}
	defer clear()
	res := w.cli("", append([]string{"rotate", name, "--reason", "e2e failure drill"}, w.apiArgs()...)...)
	if res.code != 1 {
		t.Errorf("rotate under a persistent 500: want exit 1\n%s", res)
	}
	var msg slackMessage
	eventually(t, 20*time.Second, "Slack gets the failure message", func() bool {
		ms := w.slack.find(func(m slackMessage) bool {
			return strings.Contains(m.fields()["Secret"], name) && strings.Contains(m.header(), "failed")
		})
		if len(ms) > 0 {
			msg = ms[0]
		}
		return len(ms) > 0
	}, w.slack.dump)
	var hasError, hasNext bool
	for _, s := range msg.sections() {
		hasError = hasError || strings.HasPrefix(s, "*Error*")
		hasNext = hasNext || (strings.HasPrefix(s, "*What you must do*") && len(s) > len("*What you must do*\n")+10)
	}
	if !hasError || !hasNext {
		t.Errorf("failure message lacks the error (%v) or next steps (%v): %v", hasError, hasNext, msg.sections())
	}
	if f := msg.fields(); f["Cause"] != "manual" || f["Environment"] != "production" {
		t.Errorf("failure message fields: %v", f)
	}
	if len(w.findAudit(func(r auditRecord) bool {
		return r.Event.Secret == name && r.Event.Outcome == "failed" && r.Event.Error != ""
	})) == 0 {
		t.Errorf("audit has no failure record for %s\n%s", name, w.auditTail())
	}
	cur, _ := w.stored(name, "AWSCURRENT")
	if cur.KeyID != initial[name] {
		t.Errorf("AWSCURRENT of %s moved to %s although creation failed", name, cur.KeyID)
	}
	if !w.whoami(cur.Secret) {
		t.Errorf("AWSCURRENT of %s no longer authenticates after the failed rotation", name)
	}
	clear()
}

// Scenario 8.
func testSlashCommand(t *testing.T, w *world, initial map[string]string) {
	const name = "payments/production/slack-key"
	endpoint := w.apiURL + "/v1/slack/commands"
	form := func(user string) string {
		return url.Values{
			"token": {"legacy-verification-token"}, "team_id": {"T0E2E"}, "user_id": {user}, "user_name": {"e2e"},
			"command": {"/rotate"}, "text": {name + " manual e2e slash command"}, "response_url": {"https://hooks.slack.invalid/x"},
		}.Encode()
	}
	send := func(body, ts, sig string) int {
		req, _ := http.NewRequest("POST", endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Slack-Request-Timestamp", ts)
		req.Header.Set("X-Slack-Signature", sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	refusals := func() int {
		return len(w.findAudit(func(r auditRecord) bool { return r.Event.Source == "slack" && r.Event.Outcome == "refused" }))
	}
	before := refusals()
	now := strconv.FormatInt(time.Now().Unix(), 10)
	body := form(slackUser)
	if st := send(body, now, slackSign(secret.New("wrong-signing-secret"), now, body)); st != http.StatusUnauthorized {
		t.Errorf("bad signature: status %d, want 401", st)
	}
	old := strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)
	if st := send(body, old, slackSign(w.signing, old, body)); st != http.StatusUnauthorized {
		t.Errorf("stale timestamp: status %d, want 401", st)
	}
	other := form("U0INTRUDER")
	if st := send(other, now, slackSign(w.signing, now, other)); st != http.StatusForbidden {
		t.Errorf("unlisted user: status %d, want 403", st)
	}
	eventually(t, 10*time.Second, "the three refusals are audited", func() bool { return refusals() >= before+3 }, w.auditTail)
	if got := w.currentKeyID(name); got != initial[name] {
		t.Fatalf("%s rotated after refused slash commands", name)
	}

	if st := send(body, now, slackSign(w.signing, now, body)); st != http.StatusOK {
		t.Fatalf("allowed user: status %d, want 200", st)
	}
	eventually(t, 30*time.Second, "the slash command rotates "+name, func() bool { return w.currentKeyID(name) != initial[name] }, w.daemonTail)
	// The rotation's Slack message credits the Slack user as a mention.
	eventually(t, 15*time.Second, "Slack shows the slash-command rotation", func() bool {
		return len(w.slack.find(func(m slackMessage) bool {
			return m.fields()["Secret"] == "`"+name+"`" && strings.Contains(m.header(), "succeeded")
		})) > 0
	}, w.slack.dump)
	for _, m := range w.slack.find(func(m slackMessage) bool { return m.fields()["Secret"] == "`"+name+"`" }) {
		if got, want := m.fields()["Requested by"], "<@"+slackUser+"> via slack"; got != want {
			t.Errorf("Requested by %q, want %q (a working Slack mention)", got, want)
		}
	}
	// The daemon alone records the trigger's outcome: exactly one "accepted".
	if n := len(w.findAudit(func(r auditRecord) bool {
		return r.Event.Secret == name && r.Event.Step == "trigger" && r.Event.Outcome == "succeeded" && r.Event.Source == "slack" && r.Event.Actor == slackUser
	})); n != 1 {
		t.Errorf("audit has %d accepted slack triggers by %s for %s, want exactly 1", n, slackUser, name)
	}
}

// Scenario 7.
func testSigtermMidBatch(t *testing.T, w *world, initial map[string]string) {
	var batch []string
	for _, mk := range managedKeys {
		if mk.owners[0] == "batch-team" {
			batch = append(batch, mk.name)
		}
	}
	start := time.Now()
	w.simAdmin("POST", "/_sim/faults", map[string]any{"method": "POST", "path_prefix": "/api_keys", "latency": "2s"}, nil)
	args := append([]string{"trigger", "--owner", "batch-team", "--reason", "team disbanded", "--yes"}, w.apiArgs()...)
	done := make(chan cliResult, 1)
	go func() { done <- w.cli("", args...) }()

	newKeys := func(name string) []laki.APIKey {
		var out []laki.APIKey
		for _, k := range w.simKeys() {
			if strings.HasPrefix(k.Name, "lakirotator ") && strings.HasSuffix(k.Name, " "+name) && !k.CreatedAt.Before(start.Add(-time.Second)) {
				out = append(out, k)
			}
		}
		return out
	}
	// Every batch rotation has started creating its key (and waits in the
	// simulator's latency) when SIGTERM arrives: all four are in hand.
	eventually(t, 30*time.Second, "every batch rotation is creating its key", func() bool {
		started := map[string]bool{}
		for _, r := range w.findAudit(func(r auditRecord) bool {
			return r.Event.Step == "create" && r.Event.Outcome == "started" && r.Event.Cause == "personnel"
		}) {
			started[r.Event.Secret] = true
		}
		for _, n := range batch {
			if !started[n] {
				return false
			}
		}
		return true
	}, w.daemonTail, w.auditTail)
	code, took := w.stopDaemon(45 * time.Second)
	if code != 0 {
		t.Errorf("the daemon exited %d after SIGTERM, want 0\n%s", code, w.daemonTail())
	}
	t.Logf("daemon stopped %s after SIGTERM", took.Round(time.Millisecond))
	<-done // the CLI loses its daemon; its exit code is not the point here
	w.simAdmin("DELETE", "/_sim/faults", nil, nil)

	w.startDaemon()
	for _, n := range batch {
		eventually(t, 30*time.Second, "no rotation of "+n+" is left in flight", func() bool {
			for ver, stages := range w.stages(n) {
				for _, s := range stages {
					if s == "AWSPENDING" && !w.hasStage(n, ver, "AWSCURRENT") {
						return false
					}
				}
			}
			return w.currentKeyID(n) != initial[n]
		}, w.daemonTail)
		keys := newKeys(n)
		cur := w.currentKeyID(n)
		if len(keys) != 1 || keys[0].ID != cur {
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID+"("+string(k.Status)+")")
			}
			t.Errorf("%s: new keys %v for this rotation, want exactly one, the AWSCURRENT %s", n, ids, cur)
		}
		prev, _ := w.stored(n, "AWSPREVIOUS") // the seed key, since the rotation happened
		for _, k := range w.simKeys() {
			if !strings.HasSuffix(k.Name, " "+n) || k.Status == laki.StatusRevoked {
				continue
			}
			if k.ID != cur && k.ID != prev.KeyID {
				t.Errorf("%s: key %s (%s) is live but neither AWSCURRENT nor AWSPREVIOUS: an orphan", n, k.ID, k.Status)
			}
		}
	}
}

// Scenario 9.
func testAuditVerify(t *testing.T, w *world, _ map[string]string) {
	path := filepath.Join(w.dir, "audit.jsonl")
	res := w.cli("", "audit", "verify", path)
	if res.code != 0 {
		t.Fatalf("audit verify on the daemon's file: want exit 0\n%s", res)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("audit file has only %d records", len(lines))
	}
	seqOf := func(line string) uint64 {
		var r struct {
			Seq uint64 `json:"seq"`
		}
		_ = json.Unmarshal([]byte(line), &r)
		return r.Seq
	}
	k := len(lines) / 2
	tamper := func(label string, mutate func([]string) []string, wantSeq uint64) {
		t.Run(label, func(t *testing.T) {
			cp := mutate(append([]string(nil), lines...))
			p := filepath.Join(w.dir, "audit-"+label+".jsonl")
			writeFile(t, p, strings.Join(cp, "\n")+"\n")
			res := w.cli("", "audit", "verify", p)
			if res.code != 1 {
				t.Fatalf("verify %s copy: want exit 1\n%s", label, res)
			}
			out := res.stdout + res.stderr
			if !strings.Contains(out, fmt.Sprintf("%d", wantSeq)) || !strings.Contains(out, "BROKEN after "+fmt.Sprint(wantSeq-1)) {
				t.Errorf("verify %s copy does not name record %d\n%s", label, wantSeq, res)
			}
		})
	}
	tamper("edited", func(ls []string) []string {
		ls[k] = strings.Replace(ls[k], `"seq":`, `"note":"x","seq":`, 1)
		return ls
	}, seqOf(lines[k]))
	tamper("deleted", func(ls []string) []string {
		return append(ls[:k], ls[k+1:]...)
	}, seqOf(lines[k]))
	tamper("swapped", func(ls []string) []string {
		ls[k], ls[k+1] = ls[k+1], ls[k]
		return ls
	}, seqOf(lines[k]))
}

// Scenario 10.
func testNoLeaks(t *testing.T, w *world, _ map[string]string) {
	// Every stored value of every managed secret counts as created or read.
	for _, mk := range managedKeys {
		w.stored(mk.name, "AWSCURRENT")
		if w.hasAnyStage(mk.name, "AWSPREVIOUS") {
			w.stored(mk.name, "AWSPREVIOUS")
		}
	}
	w.remember("whsec_not-the-real-secret-0000000000")
	check := func(where, text string) { w.assertNoSecretIn(t, where, text) }
	for i, m := range w.slack.messages() {
		b, _ := json.Marshal(m)
		check(fmt.Sprintf("Slack message %d", i), string(b))
	}
	// The bot token goes to Slack itself (that is its use); nothing else may.
	raw := strings.ReplaceAll(strings.Join(w.slack.raw(), "\n"), url.QueryEscape(w.slackTk.Reveal()), "")
	raw = strings.ReplaceAll(raw, w.slackTk.Reveal(), "")
	check("Slack request bodies", raw)
	files, _ := filepath.Glob(filepath.Join(w.dir, "*.log"))
	files = append(files, filepath.Join(w.dir, "audit.jsonl"))
	for _, f := range files {
		if strings.HasSuffix(f, "lakisim.log") {
			continue // the simulator is LakiConnect's side: it holds the keys by design
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("reading %s: %v", filepath.Base(f), err)
			continue
		}
		check(filepath.Base(f), string(b))
	}
	w.mu.Lock()
	outs := strings.Join(w.outputs, "\n")
	w.mu.Unlock()
	check("CLI output", outs)
	w.mu.Lock()
	n := len(w.secrets)
	w.mu.Unlock()
	if n < 20 {
		t.Errorf("only %d secret values were collected for the scan; the scan would prove little", n)
	}
}
