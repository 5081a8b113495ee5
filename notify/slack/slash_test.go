package slack

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

var signingSecret = secret.New("slack-signing-SECRET-0c0ffee0c0ffee")

func signedRequest(t *testing.T, key secret.Value, at time.Time, user, text string) *http.Request {
	t.Helper()
	body := url.Values{"command": {"/rotate"}, "user_id": {user}, "user_name": {"alice"}, "text": {text}}.Encode()
	ts := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key.Reveal()))
	fmt.Fprintf(mac, "v0:%s:%s", ts, body)
	r := httptest.NewRequest(http.MethodPost, "/slack/rotate", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Slack-Request-Timestamp", ts)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

type slashFixture struct {
	h     *SlashCommandHandler
	clock *clock.Fake
	audit *events.Recorder
	mu    sync.Mutex
	got   []TriggerRequest
}

func newSlash(t *testing.T) *slashFixture {
	// slack-go also checks the timestamp against the system clock, so the
	// fake starts at the real time and only moves from there.
	f := &slashFixture{clock: clock.NewFake(time.Now().Truncate(time.Second)), audit: &events.Recorder{}}
	f.h = &SlashCommandHandler{
		SigningSecret: signingSecret, AllowedUsers: []string{"U0SECTEAM"}, Clock: f.clock, Audit: f.audit,
		Trigger: func(_ context.Context, req TriggerRequest) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.got = append(f.got, req)
			return nil
		},
	}
	return f
}

func (f *slashFixture) serve(r *http.Request) (*httptest.ResponseRecorder, string) {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	f.h.Wait()
	var msg struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if json.Unmarshal(w.Body.Bytes(), &msg) == nil && msg.ResponseType != "" {
		return w, msg.ResponseType + ": " + msg.Text
	}
	return w, w.Body.String()
}

func TestSlashCommandAcceptsSignedAllowedUser(t *testing.T) {
	f := newSlash(t)
	w, answer := f.serve(signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/payments-api compromise key pasted in #general"))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.True(t, strings.HasPrefix(answer, "ephemeral: Accepted: compromise rotation of `prod/payments-api`"), answer)

	require.Len(t, f.got, 1)
	req := f.got[0]
	assert.Equal(t, "prod/payments-api", req.Secret)
	assert.Equal(t, events.CauseCompromise, req.Cause)
	assert.Equal(t, "key pasted in #general", req.Reason)
	assert.Equal(t, "U0SECTEAM", req.Actor)
	assert.Equal(t, events.SourceSlack, req.Source)
	assert.True(t, strings.HasPrefix(req.TriggerID, "slack-"))

	evs := f.audit.Events()
	require.Len(t, evs, 1)
	assert.Equal(t, events.StepTrigger, evs[0].Step)
	assert.Equal(t, events.OutcomeSucceeded, evs[0].Outcome)
	assert.Equal(t, "U0SECTEAM", evs[0].Actor)
	assert.Equal(t, events.SourceSlack, evs[0].Source)
	assert.Equal(t, req.TriggerID, evs[0].TriggerID)
	assert.Equal(t, events.SeverityCritical, evs[0].Severity)
}

func TestSlashCommandOwner(t *testing.T) {
	f := newSlash(t)
	w, _ := f.serve(signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "--owner bob left the company"))
	assert.Equal(t, http.StatusOK, w.Code)
	require.Len(t, f.got, 1)
	assert.Equal(t, "bob", f.got[0].Owner)
	assert.Empty(t, f.got[0].Secret)
	assert.Equal(t, events.CausePersonnel, f.got[0].Cause)
	assert.Equal(t, "bob", f.audit.Events()[0].Details["owner"])
}

func TestSlashCommandRefusals(t *testing.T) {
	tests := []struct {
		name   string
		req    func(f *slashFixture) *http.Request
		status int
		step   events.Step
		reason string
		actor  string
	}{
		{"bad signature", func(f *slashFixture) *http.Request {
			return signedRequest(t, secret.New("not-the-signing-secret"), f.clock.Now(), "U0SECTEAM", "prod/a manual why")
		}, http.StatusUnauthorized, events.StepAuth, "bad signature", ""},
		{"body changed after signing", func(f *slashFixture) *http.Request {
			r := signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/a manual why")
			r2 := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(url.Values{"user_id": {"U0SECTEAM"}, "text": {"prod/b manual why"}}.Encode()))
			r2.Header = r.Header
			return r2
		}, http.StatusUnauthorized, events.StepAuth, "bad signature", ""},
		{"stale timestamp", func(f *slashFixture) *http.Request {
			r := signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/a manual why")
			f.clock.Advance(5*time.Minute + time.Second)
			return r
		}, http.StatusUnauthorized, events.StepAuth, "stale timestamp: 5m1s from now", ""},
		{"missing headers", func(f *slashFixture) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/", strings.NewReader("user_id=U0SECTEAM&text=prod/a"))
		}, http.StatusUnauthorized, events.StepAuth, "missing or malformed X-Slack-Request-Timestamp", ""},
		{"unlisted user", func(f *slashFixture) *http.Request {
			return signedRequest(t, signingSecret, f.clock.Now(), "U0MALLORY", "prod/a manual why")
		}, http.StatusForbidden, events.StepTrigger, "slack user not allowed to rotate", "U0MALLORY"},
		{"no reason", func(f *slashFixture) *http.Request {
			return signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/a compromise")
		}, http.StatusOK, events.StepTrigger, "bad syntax: a reason is required", "U0SECTEAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newSlash(t)
			w, answer := f.serve(tc.req(f))
			assert.Equal(t, tc.status, w.Code, answer)
			assert.Empty(t, f.got, "no rotation on a refused request")
			evs := f.audit.Events()
			require.Len(t, evs, 1, "every refusal is audited")
			assert.Equal(t, tc.step, evs[0].Step)
			assert.Equal(t, events.OutcomeRefused, evs[0].Outcome)
			assert.Equal(t, events.SourceSlack, evs[0].Source)
			assert.Equal(t, tc.reason, evs[0].Reason)
			assert.Equal(t, tc.actor, evs[0].Actor, "only a verified user id is recorded as the actor")
			if tc.status == http.StatusOK {
				assert.Contains(t, answer, "ephemeral: ")
				assert.Contains(t, answer, "Usage:")
			}
			assert.NotContains(t, w.Body.String(), signingSecret.Reveal())
		})
	}
}

func TestParseRotateCommand(t *testing.T) {
	tests := []struct {
		text string
		want TriggerRequest
		err  string
	}{
		{"prod/a rotate it please", TriggerRequest{Secret: "prod/a", Cause: events.CauseManual, Reason: "rotate it please"}, ""},
		{"prod/a PERSONNEL  alice left", TriggerRequest{Secret: "prod/a", Cause: events.CausePersonnel, Reason: "alice left"}, ""},
		{"--owner team-payments compromise laptop stolen", TriggerRequest{Owner: "team-payments", Cause: events.CauseCompromise, Reason: "laptop stolen"}, ""},
		{"", TriggerRequest{}, "no secret given"},
		{"--owner", TriggerRequest{}, "--owner needs a person or team"},
		{"prod/a scheduled because", TriggerRequest{}, `cause "scheduled" is for the scheduler`},
		{"--force prod/a x", TriggerRequest{}, `unknown option "--force"`},
		{"prod/a", TriggerRequest{}, "a reason is required"},
	}
	for _, tc := range tests {
		got, err := ParseRotateCommand(tc.text)
		if tc.err != "" {
			assert.ErrorContains(t, err, tc.err, tc.text)
			continue
		}
		require.NoError(t, err, tc.text)
		assert.Equal(t, tc.want, got, tc.text)
	}
}

func TestSlashTriggerFailureIsAudited(t *testing.T) {
	f := newSlash(t)
	f.h.Trigger = func(context.Context, TriggerRequest) error { return fmt.Errorf("unknown secret prod/zzz") }
	w, _ := f.serve(signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/zzz manual test"))
	assert.Equal(t, http.StatusOK, w.Code, "Slack gets its answer before the rotation runs")
	evs := f.audit.Events()
	require.Len(t, evs, 2)
	assert.Equal(t, events.OutcomeFailed, evs[1].Outcome)
	assert.Equal(t, "unknown secret prod/zzz", evs[1].Error)
	assert.Equal(t, evs[0].TriggerID, evs[1].TriggerID)
}
