package slack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slack-go/slack"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// TriggerRequest is a rotation asked for in Slack.
type TriggerRequest struct {
	Secret    string // one managed secret; empty when Owner is set
	Owner     string // rotate every secret this person or team owns
	Cause     events.Cause
	Reason    string
	Actor     string // verified Slack user id
	ActorName string // Slack user name, for display only
	TriggerID string // groups this trigger's events (the Slack thread)
	Source    events.Source
}

// SlashCommandHandler serves "/rotate": it verifies Slack's signature,
// allows only the listed users, answers at once with an ephemeral message
// and calls Trigger in the background. Every attempt, accepted or refused,
// is emitted on Audit.
type SlashCommandHandler struct {
	SigningSecret secret.Value
	AllowedUsers  []string // Slack user ids
	Clock         clock.Clock
	// Tolerance is how far the request timestamp may be from Clock; default 5 minutes.
	Tolerance time.Duration
	Trigger   func(ctx context.Context, req TriggerRequest) error
	Audit     events.Sink
	Logger    *slog.Logger

	wg sync.WaitGroup
}

const maxSlashBody = 64 << 10

// Usage is the help text returned for a malformed command.
const Usage = "Usage: `/rotate <secret> [compromise|personnel|manual] <reason…>` or `/rotate --owner <person> [compromise|personnel|manual] <reason…>`"

// refusal is a refused request, with what the audit record says.
type refusal struct {
	status int
	step   events.Step
	reason string
	answer string
}

func (h *SlashCommandHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.clock().Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSlashBody))
	if err != nil {
		h.refuse(ctx, w, now, url.Values{}, refusal{http.StatusRequestEntityTooLarge, events.StepAuth, "request body unreadable or too large", "request too large"})
		return
	}
	form, _ := url.ParseQuery(string(body))
	if ref := h.verify(r.Header, body, now); ref != nil {
		h.refuse(ctx, w, now, form, *ref)
		return
	}
	user := form.Get("user_id")
	if user == "" || !slices.Contains(h.AllowedUsers, user) {
		h.refuse(ctx, w, now, form, refusal{http.StatusForbidden, events.StepTrigger, "slack user not allowed to rotate", "You are not allowed to rotate secrets. Ask the security team."})
		return
	}
	req, perr := ParseRotateCommand(form.Get("text"))
	if perr != nil {
		h.refuse(ctx, w, now, form, refusal{http.StatusOK, events.StepTrigger, "bad syntax: " + perr.Error(), perr.Error() + "\n" + Usage})
		return
	}
	req.Actor, req.ActorName, req.Source = user, form.Get("user_name"), events.SourceSlack
	req.TriggerID = "slack-" + randomID()
	h.emit(ctx, events.Event{
		Time: now, Step: events.StepTrigger, Outcome: events.OutcomeSucceeded, Severity: severityOf(req.Cause),
		Secret: req.Secret, Cause: req.Cause, Source: events.SourceSlack, Actor: user, Reason: req.Reason,
		TriggerID: req.TriggerID, Details: ownerDetail(req.Owner),
	})
	target := "`" + req.Secret + "`"
	if req.Owner != "" {
		target = "every secret owned by `" + req.Owner + "`"
	}
	writeEphemeral(w, http.StatusOK, fmt.Sprintf("Accepted: %s rotation of %s (trigger `%s`). Progress follows in the notifications channel.", req.Cause, target, req.TriggerID))

	if h.Trigger == nil {
		return
	}
	h.wg.Go(func() {
		tctx := context.WithoutCancel(ctx)
		if err := h.Trigger(tctx, req); err != nil {
			h.logger().ErrorContext(tctx, "slack-triggered rotation failed to start", "trigger_id", req.TriggerID, "secret", req.Secret, "owner", req.Owner, "error", err.Error())
			h.emit(tctx, events.Event{
				Time: h.clock().Now(), Step: events.StepTrigger, Outcome: events.OutcomeFailed, Severity: events.SeverityCritical,
				Secret: req.Secret, Cause: req.Cause, Source: events.SourceSlack, Actor: user, Reason: req.Reason,
				TriggerID: req.TriggerID, Error: err.Error(), Details: ownerDetail(req.Owner),
			})
		}
	})
}

// Wait blocks until the triggers started by the handler have returned; for shutdown and tests.
func (h *SlashCommandHandler) Wait() { h.wg.Wait() }

// verify checks the signature with slack-go and the timestamp against the
// injected clock. slack-go also checks the timestamp, against the system
// clock; the check here is the one tests can move.
func (h *SlashCommandHandler) verify(header http.Header, body []byte, now time.Time) *refusal {
	bad := func(reason string) *refusal {
		return &refusal{http.StatusUnauthorized, events.StepAuth, reason, "request not verified"}
	}
	if h.SigningSecret.IsZero() {
		return bad("no signing secret configured")
	}
	ts, err := strconv.ParseInt(header.Get("X-Slack-Request-Timestamp"), 10, 64)
	if err != nil {
		return bad("missing or malformed X-Slack-Request-Timestamp")
	}
	tol := h.Tolerance
	if tol <= 0 {
		tol = 5 * time.Minute
	}
	if d := now.Sub(time.Unix(ts, 0)).Abs(); d > tol {
		return bad(fmt.Sprintf("stale timestamp: %s from now", d.Round(time.Second)))
	}
	v, err := slack.NewSecretsVerifier(header, h.SigningSecret.Reveal())
	if errors.Is(err, slack.ErrExpiredTimestamp) {
		return bad("stale timestamp by the system clock")
	}
	if err != nil {
		return bad("bad signature headers: " + err.Error())
	}
	if _, err := v.Write(body); err != nil {
		return bad("signature check failed")
	}
	if err := v.Ensure(); err != nil {
		return bad("bad signature")
	}
	return nil
}

func (h *SlashCommandHandler) refuse(ctx context.Context, w http.ResponseWriter, now time.Time, form url.Values, ref refusal) {
	e := events.Event{
		Time: now, Step: ref.step, Outcome: events.OutcomeRefused, Severity: events.SeverityWarning,
		Source: events.SourceSlack, Reason: ref.reason,
		Details: map[string]string{},
	}
	if ref.status == http.StatusUnauthorized || ref.status == http.StatusRequestEntityTooLarge {
		// Unverified: the user id is only a claim, so it is not the actor.
		if u := form.Get("user_id"); u != "" {
			e.Details["claimed_user_id"] = clipID(u)
		}
	} else {
		e.Actor = form.Get("user_id")
		e.Details["text"] = clipID(form.Get("text"))
	}
	h.emit(ctx, e)
	h.logger().WarnContext(ctx, "slack /rotate refused", "reason", ref.reason, "status", ref.status)
	if ref.status == http.StatusUnauthorized || ref.status == http.StatusRequestEntityTooLarge {
		http.Error(w, ref.answer, ref.status)
		return
	}
	writeEphemeral(w, ref.status, ref.answer)
}

func clipID(s string) string { return clip(s, 200) }

func (h *SlashCommandHandler) emit(ctx context.Context, e events.Event) {
	if h.Audit != nil {
		h.Audit.Emit(ctx, e)
	}
}

func (h *SlashCommandHandler) clock() clock.Clock {
	if h.Clock == nil {
		return clock.Real{}
	}
	return h.Clock
}

func (h *SlashCommandHandler) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

func writeEphemeral(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"response_type": slack.ResponseTypeEphemeral, "text": text})
}

func severityOf(c events.Cause) events.Severity {
	if c.Emergency() {
		return events.SeverityCritical
	}
	return events.SeverityInfo
}

func ownerDetail(owner string) map[string]string {
	if owner == "" {
		return nil
	}
	return map[string]string{"owner": owner}
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ParseRotateCommand parses the text after "/rotate":
// "<secret> [compromise|personnel|manual] <reason…>" or
// "--owner <person> [compromise|personnel|manual] <reason…>". The cause
// defaults to manual for a secret and personnel for an owner; a reason is required.
func ParseRotateCommand(text string) (TriggerRequest, error) {
	f := strings.Fields(text)
	var req TriggerRequest
	if len(f) == 0 {
		return req, errors.New("no secret given")
	}
	if f[0] == "--owner" {
		if len(f) < 2 {
			return req, errors.New("--owner needs a person or team")
		}
		req.Owner, req.Cause, f = f[1], events.CausePersonnel, f[2:]
	} else {
		if strings.HasPrefix(f[0], "-") {
			return req, fmt.Errorf("unknown option %q", f[0])
		}
		req.Secret, req.Cause, f = f[0], events.CauseManual, f[1:]
	}
	if len(f) > 0 {
		switch c := events.Cause(strings.ToLower(f[0])); c {
		case events.CauseCompromise, events.CausePersonnel, events.CauseManual:
			req.Cause, f = c, f[1:]
		case events.CauseScheduled:
			return req, errors.New("cause \"scheduled\" is for the scheduler; use compromise, personnel or manual")
		}
	}
	if len(f) == 0 {
		return req, errors.New("a reason is required")
	}
	req.Reason = strings.Join(f, " ")
	return req, nil
}
