// Package trigger holds the words of the daemon's one trigger path: what a
// door (the HTTP API, the security-event receiver, the Slack command, the
// CLI in-process) asks for, how far it has come, and why it was refused.
// The daemon validates, records and runs triggers; doors only authenticate
// the caller and translate their transport into a Request. No transport
// type appears here, so the daemon depends on none.
package trigger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/events"
)

// Request asks for rotations now. Exactly one of Secret, Owner and All selects.
type Request struct {
	Secret string
	Owner  string
	All    bool
	Cause  events.Cause
	Reason string
	// Actor is the authenticated principal that asked: "token:<name>",
	// "cert:<name>", a Slack user id, "lakiconnect:<event id>". Doors set it
	// from the credential, never from the request's own words.
	Actor string
	// OnBehalfOf is a person the request names (the API's "requester"); it
	// is kept, but it is a claim, not who authenticated.
	OnBehalfOf string
	Source     events.Source
	// ID, when set, makes the trigger idempotent: a second request with the
	// same id returns the first one's status (a redelivered security event).
	ID string
}

// States of a trigger and of each of its secrets.
const (
	StateQueued    = "queued"
	StateRunning   = "running"
	StateSucceeded = "succeeded"
	StatePartial   = "partial" // some secrets failed
	StateFailed    = "failed"
)

// SecretProgress is one secret's part in a trigger.
type SecretProgress struct {
	Secret    string
	State     string
	VersionID string
	Error     string
}

// Status is a trigger and how far it has come.
type Status struct {
	ID         string
	State      string
	Cause      events.Cause
	Source     events.Source
	Reason     string
	Actor      string
	OnBehalfOf string
	CreatedAt  time.Time
	FinishedAt *time.Time
	Total      int
	Done       int
	Failed     int
	Secrets    []SecretProgress
}

// Finished reports whether every secret of the trigger has ended.
func (s Status) Finished() bool {
	return s.State == StateSucceeded || s.State == StatePartial || s.State == StateFailed
}

// Refusal is a request the caller got wrong (names nothing, an unknown
// secret or owner, no reason). The daemon has recorded it once; doors only
// answer with Reason.
type Refusal struct {
	Reason string
}

func (r *Refusal) Error() string { return "trigger refused: " + r.Reason }

// Refused returns the refusal inside err, if err is one.
func Refused(err error) (*Refusal, bool) {
	var r *Refusal
	ok := errors.As(err, &r)
	return r, ok
}

// Refusef builds a Refusal.
func Refusef(format string, args ...any) *Refusal {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// Path is the one way into the daemon's triggers; every door holds one.
type Path interface {
	// Trigger validates, records (exactly one "accepted" or "refused"
	// event) and queues a request. A *Refusal error is the caller's fault.
	Trigger(ctx context.Context, req Request) (Status, error)
	// TriggerStatus returns a trigger of this process.
	TriggerStatus(id string) (Status, bool)
}

// Ended is how many of the trigger's secrets have ended, well or not.
func (s Status) Ended() int { return s.Done + s.Failed }

// Progress is what Follow needs of a status: the daemon's, or its wire form.
type Progress interface {
	Finished() bool
	Ended() int
}

// Follow reads a trigger with get every interval until it has finished,
// calling progress each time more of its secrets have ended. The CLI
// follows a daemon over HTTP with it, and in-process callers the daemon.
func Follow[S Progress](ctx context.Context, every time.Duration, get func(context.Context) (S, error), progress func(S)) (S, error) {
	last := -1
	for {
		st, err := get(ctx)
		if err != nil {
			return st, err
		}
		if n := st.Ended(); n != last && progress != nil {
			last = n
			progress(st)
		}
		if st.Finished() {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(every):
		}
	}
}
