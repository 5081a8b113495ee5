package slackcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/fakeslack"
	"github.com/lakirotator/lakirotator/trigger"
)

var signingSecret = secret.New("slack-signing-SECRET-0c0ffee0c0ffee")

func signedRequest(t *testing.T, key secret.Value, at time.Time, user, text string) *http.Request {
	t.Helper()
	body := url.Values{"command": {"/rotate"}, "user_id": {user}, "user_name": {"alice"}, "text": {text}}.Encode()
	r := httptest.NewRequest(http.MethodPost, "/slack/rotate", strings.NewReader(body))
	fakeslack.SignCommand(r, key.Reveal(), at, body)
	return r
}

// paths records what the handler asked of the daemon; it refuses unknown
// secrets as the daemon does.
type paths struct {
	mu  sync.Mutex
	got []trigger.Request
}

func (p *paths) Trigger(_ context.Context, req trigger.Request) (trigger.Status, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if req.Secret == "prod/zzz" {
		return trigger.Status{}, trigger.Refusef("no managed secret is named %q", req.Secret)
	}
	p.got = append(p.got, req)
	return trigger.Status{ID: fmt.Sprintf("trg_%d", len(p.got)), Total: 1, State: trigger.StateQueued}, nil
}

func (p *paths) TriggerStatus(string) (trigger.Status, bool) { return trigger.Status{}, false }

func (p *paths) requests() []trigger.Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]trigger.Request(nil), p.got...)
}

type slashFixture struct {
	h     *Handler
	clock *clock.Fake
	audit *events.Recorder
	paths *paths
	refs  *inbound.Refusals
}

func newSlash(t *testing.T) *slashFixture {
	// slack-go also checks the timestamp against the system clock, so the
	// fake starts at the real time and only moves from there.
	f := &slashFixture{clock: clock.NewFake(time.Now().Truncate(time.Second)), audit: &events.Recorder{}, paths: &paths{}}
	f.refs = inbound.NewRefusals(inbound.RefusalsOptions{Events: f.audit, Clock: f.clock})
	f.h = &Handler{
		SigningSecret: signingSecret, AllowedUsers: []string{"U0SECTEAM"}, Clock: f.clock, Refusals: f.refs, Triggers: f.paths,
	}
	return f
}

func (f *slashFixture) serve(r *http.Request) (*httptest.ResponseRecorder, string) {
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
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
	assert.True(t, strings.HasPrefix(answer, "ephemeral: Accepted: compromise rotation of `prod/payments-api`, 1 secret(s) (trigger `trg_1`)"), answer)

	got := f.paths.requests()
	require.Len(t, got, 1)
	req := got[0]
	assert.Equal(t, "prod/payments-api", req.Secret)
	assert.Equal(t, events.CauseCompromise, req.Cause)
	assert.Equal(t, "key pasted in #general", req.Reason)
	assert.Equal(t, "U0SECTEAM", req.Actor, "the actor is the verified Slack user id")
	assert.Empty(t, req.OnBehalfOf)
	assert.Equal(t, events.SourceSlack, req.Source)
	assert.Empty(t, f.audit.Events(), "the door records no trigger outcome: the daemon does")
}

func TestSlashCommandOwner(t *testing.T) {
	f := newSlash(t)
	w, _ := f.serve(signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "--owner bob left the company"))
	assert.Equal(t, http.StatusOK, w.Code)
	got := f.paths.requests()
	require.Len(t, got, 1)
	assert.Equal(t, "bob", got[0].Owner)
	assert.Empty(t, got[0].Secret)
	assert.Equal(t, events.CausePersonnel, got[0].Cause)
}

// A captured signed request sent again within Slack's window is acted on
// once; the copies are refused and counted.
func TestSlashCommandReplayIsActedOnOnce(t *testing.T) {
	f := newSlash(t)
	captured := signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/payments-api compromise key pasted")
	body, _ := io.ReadAll(captured.Body)
	var codes []int
	for i := 0; i < 3; i++ {
		r := httptest.NewRequest(http.MethodPost, "/slack/rotate", bytes.NewReader(body))
		r.Header = captured.Header.Clone()
		w, _ := f.serve(r)
		codes = append(codes, w.Code)
		f.clock.Advance(time.Minute)
	}
	assert.Equal(t, []int{200, 401, 401}, codes)
	assert.Len(t, f.paths.requests(), 1, "one compromise trigger from one signed request")
	f.refs.Flush(context.Background())
	refused := f.audit.Events()
	require.NotEmpty(t, refused)
	assert.Equal(t, "replayed", refused[0].Details["reason"])
}

func TestSlashCommandRefusals(t *testing.T) {
	tests := []struct {
		name   string
		req    func(f *slashFixture) *http.Request
		status int
		code   string
		actor  string
	}{
		{"bad signature", func(f *slashFixture) *http.Request {
			return signedRequest(t, secret.New("not-the-signing-secret"), f.clock.Now(), "U0SECTEAM", "prod/a manual why")
		}, http.StatusUnauthorized, "bad_signature", ""},
		{"body changed after signing", func(f *slashFixture) *http.Request {
			r := signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/a manual why")
			r2 := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(url.Values{"user_id": {"U0SECTEAM"}, "text": {"prod/b manual why"}}.Encode()))
			r2.Header = r.Header
			return r2
		}, http.StatusUnauthorized, "bad_signature", ""},
		{"stale timestamp", func(f *slashFixture) *http.Request {
			r := signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/a manual why")
			f.clock.Advance(5*time.Minute + time.Second)
			return r
		}, http.StatusUnauthorized, "stale_timestamp", ""},
		{"missing headers", func(f *slashFixture) *http.Request {
			return httptest.NewRequest(http.MethodPost, "/", strings.NewReader("user_id=U0SECTEAM&text=prod/a"))
		}, http.StatusUnauthorized, "bad_timestamp", ""},
		{"form not URL-encoded", func(f *slashFixture) *http.Request {
			body := "command=%2Frotate&user_id=U0SECTEAM&text=prod%2Fa+manual+why%zz"
			r := httptest.NewRequest(http.MethodPost, "/slack/rotate", strings.NewReader(body))
			fakeslack.SignCommand(r, signingSecret.Reveal(), f.clock.Now(), body)
			return r
		}, http.StatusBadRequest, "bad_form", ""},
		{"unlisted user", func(f *slashFixture) *http.Request {
			return signedRequest(t, signingSecret, f.clock.Now(), "U0MALLORY", "prod/a manual why")
		}, http.StatusForbidden, "user_not_allowed", "U0MALLORY"},
		{"no reason", func(f *slashFixture) *http.Request {
			return signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/a compromise")
		}, http.StatusOK, "bad_syntax", "U0SECTEAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newSlash(t)
			w, answer := f.serve(tc.req(f))
			assert.Equal(t, tc.status, w.Code, answer)
			assert.Empty(t, f.paths.requests(), "no rotation on a refused request")
			evs := f.audit.Events()
			require.Len(t, evs, 1, "every refusal is audited")
			assert.Equal(t, events.StepAuth, evs[0].Step)
			assert.Equal(t, events.OutcomeRefused, evs[0].Outcome)
			assert.Equal(t, events.SourceSlack, evs[0].Source)
			assert.Equal(t, tc.code, evs[0].Details["reason"])
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
		want Command
		err  string
	}{
		{"prod/a rotate it please", Command{Secret: "prod/a", Cause: events.CauseManual, Reason: "rotate it please"}, ""},
		{"prod/a PERSONNEL  alice left", Command{Secret: "prod/a", Cause: events.CausePersonnel, Reason: "alice left"}, ""},
		{"--owner team-payments compromise laptop stolen", Command{Owner: "team-payments", Cause: events.CauseCompromise, Reason: "laptop stolen"}, ""},
		{"", Command{}, "no secret given"},
		{"--owner", Command{}, "--owner needs a person or team"},
		{"prod/a scheduled because", Command{}, `cause "scheduled" is for the scheduler`},
		{"--force prod/a x", Command{}, `unknown option "--force"`},
		{"prod/a", Command{}, "a reason is required"},
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

func TestSlashRefusedByTheDaemonSaysWhy(t *testing.T) {
	f := newSlash(t)
	w, answer := f.serve(signedRequest(t, signingSecret, f.clock.Now(), "U0SECTEAM", "prod/zzz manual test"))
	assert.Equal(t, http.StatusOK, w.Code)
	assert.Equal(t, `ephemeral: Refused: no managed secret is named "prod/zzz"`, answer, "Slack hears the daemon's answer, not an early 'Accepted'")
}
