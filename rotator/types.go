package rotator

import (
	"errors"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// RotationPolicy is what the engine needs from a secret's policy.
type RotationPolicy struct {
	// Scopes the new API key gets, exactly (API and management keys).
	Scopes []laki.Scope
	// Grace is how long the old credential keeps working after promotion, by
	// cause, as the secret's policy decides it (policies.Policy.GraceFor: none
	// for a compromise); a cause missing from the map gets DefaultGrace.
	// Capped at laki.MaxExpireDelay (7 days).
	Grace        map[events.Cause]time.Duration
	DefaultGrace time.Duration
	// RevokeFirstOnCompromise revokes the exposed key before its replacement
	// exists: an outage is preferred to an attacker's access. Ignored for the
	// management key (it would lock the rotator out) and for webhook
	// secrets (an endpoint's last secret cannot be ended).
	RevokeFirstOnCompromise bool
	// ExpiresAfter sets a hard expires_at on new API keys (0: none).
	ExpiresAfter time.Duration
	// LastUsedWarning: an old key used within this long before its end raises a warning.
	LastUsedWarning time.Duration
	// LastUsedWarningFraction: an old key used after its promotion, once
	// this fraction of its grace has passed, raises a warning (0: off).
	LastUsedWarningFraction float64
}

// GraceFor returns the grace for a cause, capped at the API's maximum.
func (p RotationPolicy) GraceFor(c events.Cause) time.Duration {
	g, ok := p.Grace[c]
	if !ok {
		g = p.DefaultGrace
	}
	if g < 0 {
		g = 0
	}
	if g > laki.MaxExpireDelay {
		g = laki.MaxExpireDelay
	}
	return g
}

// Trigger is what set one rotation off: why (Kind), from where, who asked,
// and the id that names the rotation (its events' TriggerID).
type Trigger struct {
	Kind events.Cause
	// ID identifies the rotation: the schedule slot (RFC 3339) or the
	// trigger's id. The version id derives from it, so the same ID always
	// means the same rotation.
	ID     string
	Source events.Source
	Actor  string
	// OnBehalfOf is the person the request named, kept apart from Actor
	// (who authenticated) in every event of the rotation.
	OnBehalfOf string
	Reason     string
	// At is when the cause arose (slot time, trigger time). It goes into the
	// request bodies (a new key's expires_at), which must be byte-identical on
	// a retry; zero means the current hour.
	At time.Time
	// RevokeFirst asks for revoke-first on a compromise, whatever the policy says.
	RevokeFirst bool
}

func (c Trigger) validate() error {
	switch c.Kind {
	case events.CauseScheduled, events.CauseCompromise, events.CausePersonnel, events.CauseManual:
	default:
		return fmt.Errorf("cause kind %q is not scheduled, compromise, personnel or manual", c.Kind)
	}
	if c.ID == "" {
		return errors.New("cause id is empty (a schedule slot or a trigger id is needed for a deterministic version id)")
	}
	return nil
}

// Job is one rotation to run.
type Job struct {
	Secret  inventory.ManagedSecret
	Policy  RotationPolicy
	Trigger Trigger
	// Known is the secret's listing or Describe data, when the caller has it
	// (scheduler, discovery): the engine then needs no Describe of its own.
	Known *secretstore.Secret

	// Join, when set, is asked with a fresh Describe of the secret before a
	// new rotation starts: a cause it returns is another ask for the same
	// secret, kept in the store by a replica (or a person) at the same
	// moment, which this job joins instead of starting a second rotation
	// (both then converge on one version). It costs one Describe, so only
	// triggers set it, never scheduled slots.
	Join func(info secretstore.Secret) (Joined, bool)
	// Announce reports a rotation found already promoted as succeeded: the
	// caller knows that no one reported it (a restart finishing its own
	// trigger). Otherwise such a rotation is reported once, as skipped.
	Announce bool

	resumeOnly bool     // set by Resume: finish a rotation in flight, never start one
	carry      *carried // set on a job requeued in the middle of its rotation
}

// Joined is what Job.Join found: the cause to rotate under, and whether
// another replica writes it (this one then follows, writing nothing until
// that rotation is current or a bound passes).
type Joined struct {
	Trigger Trigger
	Follow  bool
}

// Ending is how a rotation ended.
type Ending string

const (
	// Rotated: a new credential is AWSCURRENT and the old one's end is scheduled.
	Rotated Ending = "rotated"
	// Resumed: an in-flight rotation (possibly of another cause) was finished instead.
	Resumed Ending = "resumed"
	// AlreadyDone: this rotation had already been promoted; the old
	// credential's end was confirmed.
	AlreadyDone Ending = "already_done"
	// Superseded: this rotation's version exists but a later one replaced it.
	Superseded Ending = "superseded"
	// NothingToResume: Resume found no rotation in flight.
	NothingToResume Ending = "nothing_to_resume"
)

// Result describes one finished rotation. It holds ids, never secrets.
type Result struct {
	Secret            string
	Outcome           Ending
	VersionID         string
	PreviousVersionID string
	KeyID             string // new key or webhook secret id
	KeyLast4          string // last 4 characters of the new secret, as LakiConnect shows them
	PreviousKeyID     string
	OldEndsAt         *time.Time // when the old credential stops working (nil: no old one)
	Attempts          int
	// JoinedTrigger is the other ask this job joined (Job.Join): its rotation
	// answered this job's ask. Zero when the job ran under its own cause.
	JoinedTrigger Trigger
}

// Boundary is a point inside a rotation where the AfterStep hook runs.
type Boundary string

const (
	AfterRevokeFirst Boundary = "revoke_first"
	AfterCreate      Boundary = "create"  // credential created at LakiConnect
	AfterPut         Boundary = "put"     // AWSPENDING version written
	AfterTest        Boundary = "test"    // pending credential proved
	AfterPromote     Boundary = "promote" // AWSCURRENT moved
	AfterEndOld      Boundary = "end_old" // old credential's end scheduled (or revoked)
	AfterSweepRevoke Boundary = "sweep_revoke"
)

// Hooks are test seams.
type Hooks struct {
	// AfterStep runs after each step; an error stops the engine right there,
	// as a crash would: nothing more is written, no failure is recorded.
	AfterStep func(secretName string, step Boundary) error
}

// ErrAborted wraps the AfterStep hook's error.
var ErrAborted = errors.New("rotation aborted by hook")
