// Package slackcmd is the Slack door into the daemon's trigger path: it
// serves "/rotate", verifies Slack's signature and timestamp, acts on a
// signed request at most once, allows only the listed users, and hands the
// command to the daemon, whose answer (accepted or refused) it relays.
// It records no trigger outcome itself: the daemon is the only emitter of
// "accepted" and "refused"; requests refused at the door are reported to
// Refusals.
package slackcmd

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
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
	"time"

	"github.com/slack-go/slack"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/trigger"
)

// Command is a parsed "/rotate" text.
type Command struct {
	Secret string // one managed secret; empty when Owner is set
	Owner  string // rotate every secret this person or team owns
	Cause  events.Cause
	Reason string
}

// Handler serves "/rotate".
type Handler struct {
	SigningSecret secret.Value
	AllowedUsers  []string // Slack user ids
	Clock         clock.Clock
	// Tolerance is how far the request timestamp may be from Clock; default
	// 5 minutes (Slack's). A signature is remembered as long.
	Tolerance time.Duration
	Triggers  trigger.Path
	// Refusals receives every request refused at the door.
	Refusals RefusalSink
	Logger   *slog.Logger

	replays replayGuard
}

// RefusalSink is told of each refused request; it summarises them (a flood
// of forged requests must not become a flood of records).
type RefusalSink interface {
	Refuse(ctx context.Context, r inbound.Refusal)
}

const maxBody = 64 << 10

// Usage is the help text returned for a malformed command.
const Usage = "Usage: `/rotate <secret> [compromise|personnel|manual] <reason…>` or `/rotate --owner <person> [compromise|personnel|manual] <reason…>`"

// refusal is a request refused at the door.
type refusal struct {
	status int
	code   string
	reason string
	answer string
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	now := h.clock().Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		h.refuse(ctx, w, r, "", refusal{http.StatusRequestEntityTooLarge, "body_too_large", "request body unreadable or too large", "request too large"})
		return
	}
	if ref := h.verify(r.Header, body, now); ref != nil {
		h.refuse(ctx, w, r, "", *ref)
		return
	}
	// The signature is good; a second copy of the same request is a replay.
	if !h.replays.first(r.Header.Get("X-Slack-Signature"), now, h.tolerance()) {
		h.refuse(ctx, w, r, "", refusal{http.StatusUnauthorized, "replayed", "signed request already acted on (replay)", "request already handled"})
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		// Signed, so Slack's own: a body we cannot read whole is refused,
		// never read in part (a dropped text field is not a command).
		h.refuse(ctx, w, r, "", refusal{http.StatusBadRequest, "bad_form", "form body is not URL-encoded", "request body not understood"})
		return
	}
	user := form.Get("user_id")
	if user == "" || !slices.Contains(h.AllowedUsers, user) {
		h.refuse(ctx, w, r, user, refusal{http.StatusForbidden, "user_not_allowed", "slack user not allowed to rotate", "You are not allowed to rotate secrets. Ask the security team."})
		return
	}
	cmd, perr := ParseRotateCommand(form.Get("text"))
	if perr != nil {
		h.refuse(ctx, w, r, user, refusal{http.StatusOK, "bad_syntax", "bad syntax: " + perr.Error(), perr.Error() + "\n" + Usage})
		return
	}
	if h.Triggers == nil {
		writeEphemeral(w, http.StatusOK, "Rotations are not enabled on this daemon.")
		return
	}
	// Slack may give up on the answer after 3 s; the trigger, once asked
	// for, is recorded and queued whatever the connection does.
	st, err := h.Triggers.Trigger(context.WithoutCancel(ctx), trigger.Request{
		Secret: cmd.Secret, Owner: cmd.Owner, Cause: cmd.Cause, Reason: cmd.Reason,
		Actor: user, Source: events.SourceSlack, // a verified Slack user id; the source says it is Slack's
	})
	if ref, ok := trigger.Refused(err); ok {
		writeEphemeral(w, http.StatusOK, "Refused: "+ref.Reason)
		return
	}
	if err != nil {
		h.logger().ErrorContext(ctx, "slack-triggered rotation failed to start", "secret", cmd.Secret, "owner", cmd.Owner, "error", err.Error())
		writeEphemeral(w, http.StatusOK, "The rotation could not be queued; the daemon's log says why. Try again or use the API.")
		return
	}
	target := "`" + cmd.Secret + "`"
	if cmd.Owner != "" {
		target = "every secret owned by `" + cmd.Owner + "`"
	}
	writeEphemeral(w, http.StatusOK, fmt.Sprintf("Accepted: %s rotation of %s, %d secret(s) (trigger `%s`). Progress follows in the notifications channel.", cmd.Cause, target, st.Total, st.ID))
}

func (h *Handler) tolerance() time.Duration {
	if h.Tolerance <= 0 {
		return 5 * time.Minute
	}
	return h.Tolerance
}

// verify checks Slack's v0 signature (HMAC-SHA256 of "v0:<ts>:<body>",
// compared in constant time) and the timestamp against the injected clock.
// slack-go's verifier is not used because it checks the timestamp against
// the system clock, which tests (and the demo) cannot move.
func (h *Handler) verify(header http.Header, body []byte, now time.Time) *refusal {
	bad := func(code, reason string) *refusal {
		return &refusal{http.StatusUnauthorized, code, reason, "request not verified"}
	}
	if h.SigningSecret.IsZero() {
		return bad("no_signing_secret", "no signing secret configured")
	}
	tsText := header.Get("X-Slack-Request-Timestamp")
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return bad("bad_timestamp", "missing or malformed X-Slack-Request-Timestamp")
	}
	if d := now.Sub(time.Unix(ts, 0)).Abs(); d > h.tolerance() {
		return bad("stale_timestamp", "stale timestamp: more than "+h.tolerance().String()+" from now")
	}
	sig, ok := strings.CutPrefix(header.Get("X-Slack-Signature"), "v0=")
	got, err := hex.DecodeString(sig)
	if !ok || err != nil || len(got) != sha256.Size {
		return bad("bad_signature_headers", "missing or malformed X-Slack-Signature")
	}
	mac := hmac.New(sha256.New, []byte(h.SigningSecret.Reveal()))
	mac.Write([]byte("v0:" + tsText + ":"))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return bad("bad_signature", "bad signature")
	}
	return nil
}

func (h *Handler) refuse(ctx context.Context, w http.ResponseWriter, r *http.Request, verifiedUser string, ref refusal) {
	// Only a verified user id is an actor; an unverified one is a claim
	// and is not kept (it is attacker-chosen text).
	if h.Refusals != nil {
		h.Refusals.Refuse(ctx, inbound.Refusal{
			Door: events.SourceSlack, Remote: r.RemoteAddr, Code: ref.code, Reason: ref.reason,
			Status: ref.status, Actor: verifiedUser,
		})
	}
	if ref.status == http.StatusUnauthorized || ref.status == http.StatusRequestEntityTooLarge {
		http.Error(w, ref.answer, ref.status)
		return
	}
	writeEphemeral(w, ref.status, ref.answer)
}

func (h *Handler) clock() clock.Clock {
	if h.Clock == nil {
		return clock.Real{}
	}
	return h.Clock
}

func (h *Handler) logger() *slog.Logger {
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

// ParseRotateCommand parses the text after "/rotate":
// "<secret> [compromise|personnel|manual] <reason…>" or
// "--owner <person> [compromise|personnel|manual] <reason…>". The cause
// defaults to manual for a secret and personnel for an owner; a reason is required.
func ParseRotateCommand(text string) (Command, error) {
	f := strings.Fields(text)
	var req Command
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
			return req, fmt.Errorf("unknown option %q", clip(f[0], 40))
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

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
