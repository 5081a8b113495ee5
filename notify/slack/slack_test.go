package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/fakeslack"
	"github.com/lakirotator/lakirotator/notify"
)

var (
	botToken   = secret.New("xoxb-test-BOTTOKENsecret-9f8e7d")
	keySecret  = secret.New("lc_live_sk_APIKEYsecretvalue77aa")
	hookSecret = "T000/B000/WEBHOOKpathSECRET42"
)

// newFake is a Notifier of channel C0SEC on a fake Slack.
func newFake(t *testing.T) (*fakeslack.Server, *Notifier) {
	f := fakeslack.Start(t, fakeslack.Options{Channel: "C0SEC"})
	n, err := New(Config{Token: botToken, Channel: "C0SEC", APIURL: f.URL + "/api/", HTTPClient: f.Client()})
	require.NoError(t, err)
	return f, n
}

// posts are the form fields of every message posted to f.
func posts(f *fakeslack.Server) []url.Values {
	var out []url.Values
	for _, m := range f.Messages() {
		out = append(out, m.Form)
	}
	return out
}

// rawPosts are the posted forms without the token field: the messages as
// Slack shows them.
func rawPosts(f *fakeslack.Server) []string {
	var out []string
	for _, form := range posts(f) {
		msg := url.Values{}
		for k, v := range form {
			if k != "token" {
				msg[k] = v
			}
		}
		out = append(out, msg.Encode())
	}
	return out
}

// blockTexts flattens a posted "blocks" value into type -> texts.
type postedBlock struct {
	Type string `json:"type"`
	Text *struct {
		Text string `json:"text"`
	} `json:"text"`
	Fields []struct {
		Text string `json:"text"`
	} `json:"fields"`
	Elements []struct {
		Text string `json:"text"`
	} `json:"elements"`
}

func decodeBlocks(t *testing.T, raw string) []postedBlock {
	t.Helper()
	var b []postedBlock
	require.NoError(t, json.Unmarshal([]byte(raw), &b), raw)
	return b
}

func failedEvent() events.Event {
	return events.Event{
		Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Step: events.StepTest, Outcome: events.OutcomeFailed,
		Severity: events.SeverityWarning, Secret: "prod/payments-api", Environment: "production", MasterMerchantID: "mm_42",
		KeyID: "key_01HXYZ0000abcd", PreviousKeyID: "key_01HOLD00000wxyz", KeyLast4: "77aa",
		Cause: events.CauseScheduled, Source: events.SourceSchedule, Actor: "scheduler",
		Duration: 3210 * time.Millisecond, TriggerID: "trg-1",
		Error: fmt.Sprintf("whoami with new key %v: 401 unauthorized", keySecret),
	}
}

func TestNotifyPostsBlocksFieldByField(t *testing.T) {
	f, s := newFake(t)
	n := notify.FromEvent(failedEvent())
	n.Mention = "<!subteam^S0ONCALL>"
	retry, err := s.Notify(context.Background(), n)
	require.NoError(t, err)
	assert.False(t, retry)
	require.Len(t, posts(f), 1)
	post := posts(f)[0]
	assert.Equal(t, "C0SEC", post.Get("channel"))
	assert.Contains(t, post.Get("text"), "<!subteam^S0ONCALL>", "the fallback text pages too")
	assert.Empty(t, post.Get("thread_ts"), "a scheduled rotation is not threaded")

	blocks := decodeBlocks(t, post.Get("blocks"))
	require.GreaterOrEqual(t, len(blocks), 5)
	assert.Equal(t, "header", blocks[0].Type)
	assert.Equal(t, ":rotating_light: Test of new credential failed: prod/payments-api", blocks[0].Text.Text)
	assert.Equal(t, "<!subteam^S0ONCALL>", blocks[1].Text.Text, "the mention, as Slack markup, alone")

	fields := map[string]string{}
	for _, fl := range blocks[2].Fields {
		label, value, _ := strings.Cut(fl.Text, "\n")
		fields[label] = value
	}
	assert.Equal(t, map[string]string{
		"*Secret*":       "`prod/payments-api`",
		"*Environment*":  "production",
		"*Merchant*":     "`mm_42`",
		"*Key*":          "new `…abcd`, was `…wxyz`, value ends `77aa`",
		"*Cause*":        "scheduled",
		"*Requested by*": "scheduler via schedule",
		"*Step*":         "test failed",
		"*Took*":         "3.21s",
	}, fields)
	assert.Equal(t, "*Error*\n```whoami with new key [REDACTED]: 401 unauthorized```", blocks[3].Text.Text)
	assert.True(t, strings.HasPrefix(blocks[4].Text.Text, "*What you must do*\nNothing changed for consumers"), blocks[4].Text.Text)
	assert.Equal(t, "context", blocks[5].Type)
	assert.Equal(t, "2026-03-01T12:00:00Z", blocks[5].Elements[0].Text)

	for _, raw := range rawPosts(f) {
		assert.NotContains(t, raw, "key_01HXYZ0000abcd", "full key ids stay out of Slack")
	}
}

func TestEmergencyIsOneThreadPerTrigger(t *testing.T) {
	f, s := newFake(t)
	ctx := context.Background()
	send := func(trigger, secretName string, step events.Step, outcome events.Outcome) {
		e := events.Event{Step: step, Outcome: outcome, Secret: secretName, Cause: events.CauseCompromise, TriggerID: trigger, Severity: events.SeverityCritical}
		_, err := s.Notify(ctx, notify.FromEvent(e))
		require.NoError(t, err)
	}
	send("emg-1", "", events.StepTrigger, events.OutcomeSucceeded)        // start
	send("emg-1", "prod/a", events.StepRotation, events.OutcomeSucceeded) // each secret
	send("emg-2", "", events.StepTrigger, events.OutcomeSucceeded)        // another emergency
	send("emg-1", "prod/b", events.StepRotation, events.OutcomeFailed)
	send("emg-1", "", events.StepRotation, events.OutcomeSucceeded) // done

	require.Len(t, posts(f), 5)
	parent1 := "1700000000.000001"
	assert.Empty(t, posts(f)[0].Get("thread_ts"))
	assert.Equal(t, parent1, posts(f)[1].Get("thread_ts"))
	assert.Empty(t, posts(f)[2].Get("thread_ts"), "a new trigger starts its own thread")
	assert.Equal(t, parent1, posts(f)[3].Get("thread_ts"))
	assert.Equal(t, "true", posts(f)[3].Get("reply_broadcast"), "a failure inside the thread also shows in the channel")
	assert.Equal(t, parent1, posts(f)[4].Get("thread_ts"))
	assert.Contains(t, posts(f)[1].Get("blocks"), "Compromise rotation succeeded: prod/a")
}

func TestRetryFlag(t *testing.T) {
	tests := []struct {
		name  string
		code  int
		body  string
		retry bool
	}{
		{"channel not found", http.StatusOK, `{"ok":false,"error":"channel_not_found"}`, false},
		{"bad token", http.StatusOK, `{"ok":false,"error":"invalid_auth"}`, false},
		{"slack internal error", http.StatusOK, `{"ok":false,"error":"internal_error"}`, true},
		{"server error", http.StatusBadGateway, `bad gateway`, true},
		{"rate limited", http.StatusTooManyRequests, ``, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, s := newFake(t)
			f.SetAnswer(func(int) (int, string) { return tc.code, tc.body })
			retry, err := s.Notify(context.Background(), notify.FromEvent(failedEvent()))
			require.Error(t, err)
			assert.Equal(t, tc.retry, retry, err.Error())
			assert.NotContains(t, err.Error(), botToken.Reveal())
		})
	}
	t.Run("network down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		s, err := New(Config{Token: botToken, Channel: "C0SEC", APIURL: url + "/api/"})
		require.NoError(t, err)
		retry, err := s.Notify(context.Background(), notify.FromEvent(failedEvent()))
		require.Error(t, err)
		assert.True(t, retry, err.Error())
	})
}

func TestWebhookPostsBlocksAndHidesItsURL(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var buf strings.Builder
		_, _ = fmt.Fprint(&buf, r.URL.Path, " ")
		b := make([]byte, 1<<16)
		k, _ := r.Body.Read(b)
		buf.Write(b[:k])
		mu.Lock()
		bodies = append(bodies, buf.String())
		mu.Unlock()
		w.WriteHeader(status)
	}))
	defer srv.Close()
	hook := secret.New(srv.URL + "/services/" + hookSecret)
	s, err := New(Config{WebhookURL: hook, HTTPClient: srv.Client()})
	require.NoError(t, err)

	_, err = s.Notify(context.Background(), notify.FromEvent(failedEvent()))
	require.NoError(t, err)
	require.Len(t, bodies, 1)
	assert.True(t, strings.HasPrefix(bodies[0], "/services/"+hookSecret+" "))
	var msg struct {
		Text   string        `json:"text"`
		Blocks []postedBlock `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal([]byte(strings.SplitN(bodies[0], " ", 2)[1]), &msg))
	assert.Equal(t, "header", msg.Blocks[0].Type)
	assert.Contains(t, msg.Text, "prod/payments-api")
	assert.NotContains(t, bodies[0], keySecret.Reveal())

	status = http.StatusNotFound // webhook revoked: retrying is pointless
	retry, err := s.Notify(context.Background(), notify.FromEvent(failedEvent()))
	require.Error(t, err)
	assert.False(t, retry)

	srv.Close() // network error: net/http quotes the URL, which must not leak
	retry, err = s.Notify(context.Background(), notify.FromEvent(failedEvent()))
	require.Error(t, err)
	assert.True(t, retry)
	assert.NotContains(t, err.Error(), hookSecret)
	assert.Contains(t, err.Error(), secret.Redacted)
}

func TestNewRefusesPlainHTTPToRemoteHosts(t *testing.T) {
	_, err := New(Config{WebhookURL: secret.New("http://hooks.example.com/services/" + hookSecret)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "loopback")
	assert.NotContains(t, err.Error(), hookSecret)
	_, err = New(Config{Token: botToken, Channel: "C1", APIURL: "http://10.0.0.1/api/"})
	require.Error(t, err)
	_, err = New(Config{Token: botToken})
	require.ErrorContains(t, err, "channel is empty")
	_, err = New(Config{})
	require.ErrorContains(t, err, "neither token nor webhook_url")
}

func TestDigestBlocks(t *testing.T) {
	var items []notify.Notification
	for i := range 3 {
		items = append(items, notify.FromEvent(events.Event{Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Secret: fmt.Sprintf("prod/app-%d", i), KeyID: fmt.Sprintf("key_000%d", i), Duration: time.Second}))
	}
	blocks := Blocks(notify.Notification{Title: "Digest: 3 routine updates", Digest: items})
	raw, err := json.Marshal(blocks)
	require.NoError(t, err)
	got := decodeBlocks(t, string(raw))
	require.Len(t, got, 2)
	assert.Equal(t, ":card_index: Digest: 3 routine updates", got[0].Text.Text)
	lines := strings.Split(got[1].Text.Text, "\n")
	require.Len(t, lines, 3)
	assert.Equal(t, "• `prod/app-1` Rotation succeeded: prod/app-1 — new `…0001` in 1s", lines[1])
}

// TestNoSecretInAnySlackPayload runs every kind of notification through a
// dispatcher into Slack and scans all that arrived for the secrets this test made.
func TestNoSecretInAnySlackPayload(t *testing.T) {
	f, s := newFake(t)
	d, err := notify.NewDispatcher(notify.Config{Receivers: map[string]notify.Notifier{"slack": s}, Routes: []notify.Route{
		{Outcomes: []events.Outcome{events.OutcomeSucceeded}, Steps: []events.Step{events.StepRotation}, Causes: []events.Cause{events.CauseScheduled}, Receiver: "slack", Digest: true},
		{Receiver: "slack"},
	}})
	require.NoError(t, err)
	base := failedEvent()
	for _, step := range []events.Step{events.StepTrigger, events.StepCreate, events.StepTest, events.StepPromote, events.StepRetire, events.StepRotation, events.StepViolation, events.StepAlert, events.StepAuth, events.StepSweep} {
		for _, outcome := range []events.Outcome{events.OutcomeStarted, events.OutcomeSucceeded, events.OutcomeFailed, events.OutcomeRefused} {
			for _, cause := range []events.Cause{events.CauseScheduled, events.CauseCompromise} {
				e := base
				e.Step, e.Outcome, e.Cause = step, outcome, cause
				e.Reason = fmt.Sprintf("reason mentions %s", keySecret)
				e.Details = map[string]string{"value": keySecret.String()}
				d.Emit(context.Background(), e)
			}
		}
	}
	require.NoError(t, d.Close(context.Background()))
	require.Greater(t, len(rawPosts(f)), 40)
	for _, raw := range rawPosts(f) {
		for _, v := range []string{keySecret.Reveal(), botToken.Reveal()} {
			assert.NotContains(t, raw, v)
		}
	}
	for _, m := range f.Messages() {
		assert.Contains(t, m.Authorization+m.Form.Get("token"), botToken.Reveal(), "the token goes only where Slack expects it")
	}
}

// An alert from the 401/403 watch names an existing key (it may be
// retired): not "new", and no "Requested by" line, since nobody asked.
func TestAlertNamesTheKeyWithoutNewOrRequester(t *testing.T) {
	f, s := newFake(t)
	e := events.Event{
		Time: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Step: events.StepAlert, Outcome: events.OutcomeWarning,
		Severity: events.SeverityWarning, Secret: "prod/checkout", Environment: "production", MasterMerchantID: "mm_42",
		KeyID: "key_01HOLD00000wxyz", Source: events.SourcePolicyScan,
		Reason:  "12 requests were refused with 401 (unauthorized) in the last 15m0s with key key_01HOLD00000wxyz, the retired (previous) key of prod/checkout.",
		Details: map[string]string{"reason": "unauthorized_on_retired_key"},
	}
	_, err := s.Notify(context.Background(), notify.FromEvent(e))
	require.NoError(t, err)
	require.Len(t, posts(f), 1)
	fields := map[string]string{}
	for _, b := range decodeBlocks(t, posts(f)[0].Get("blocks")) {
		for _, fl := range b.Fields {
			label, value, _ := strings.Cut(fl.Text, "\n")
			fields[label] = value
		}
	}
	assert.Equal(t, "key `…wxyz`", fields["*Key*"])
	assert.NotContains(t, fields, "*Requested by*")
	assert.Contains(t, fields["*Reason*"], "the retired (previous) key of prod/checkout")
}
