// Package httpapi is the daemon's HTTP API: triggers, their progress, the
// inventory of managed secrets, health and readiness. It holds the wire types
// shared by the server and by the CLI's client, and never a secret value.
package httpapi

import (
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/trigger"
)

// TriggerRequest asks for rotations now. Exactly one of Secret, Owner and All selects.
type TriggerRequest struct {
	Secret string       `json:"secret,omitempty"`
	Owner  string       `json:"owner,omitempty"`
	All    bool         `json:"all,omitempty"`
	Cause  events.Cause `json:"cause"`
	Reason string       `json:"reason"`
	// Requester is a person the caller acts for. It is recorded as
	// on_behalf_of; the actor is always the authenticated token or certificate.
	Requester string `json:"requester,omitempty"`
}

// Trigger states (the daemon's, as sent on the wire).
const (
	StateQueued    = trigger.StateQueued
	StateRunning   = trigger.StateRunning
	StateSucceeded = trigger.StateSucceeded
	StatePartial   = trigger.StatePartial
	StateFailed    = trigger.StateFailed
)

// ToTrigger turns the wire request into the daemon's, with the
// authenticated principal as actor.
func (r TriggerRequest) ToTrigger(actor string, source events.Source) trigger.Request {
	return trigger.Request{
		Secret: r.Secret, Owner: r.Owner, All: r.All, Cause: r.Cause, Reason: r.Reason,
		Actor: actor, OnBehalfOf: r.Requester, Source: source,
	}
}

// StatusJSON maps the daemon's trigger status to its wire form.
func StatusJSON(st trigger.Status) TriggerStatus {
	out := TriggerStatus{
		ID: st.ID, State: st.State, Cause: st.Cause, Source: st.Source, Reason: st.Reason,
		Actor: st.Actor, OnBehalfOf: st.OnBehalfOf, Requester: st.OnBehalfOf,
		CreatedAt: st.CreatedAt, FinishedAt: st.FinishedAt, Total: st.Total, Done: st.Done, Failed: st.Failed,
		Secrets: make([]SecretProgress, 0, len(st.Secrets)),
	}
	if out.Requester == "" {
		out.Requester = st.Actor
	}
	for _, p := range st.Secrets {
		out.Secrets = append(out.Secrets, SecretProgress{Secret: p.Secret, State: p.State, VersionID: p.VersionID, Error: p.Error})
	}
	return out
}

// SecretProgress is one secret's part in a trigger.
type SecretProgress struct {
	Secret    string `json:"secret"`
	State     string `json:"state"`
	VersionID string `json:"version_id,omitempty"`
	Error     string `json:"error,omitempty"`
}

// TriggerStatus is a trigger and how far it has come.
type TriggerStatus struct {
	ID         string           `json:"id"`
	State      string           `json:"state"`
	Cause      events.Cause     `json:"cause"`
	Source     events.Source    `json:"source"`
	Reason     string           `json:"reason,omitempty"`
	Actor      string           `json:"actor,omitempty"`        // the authenticated principal
	OnBehalfOf string           `json:"on_behalf_of,omitempty"` // the person the request named
	Requester  string           `json:"requester,omitempty"`    // on_behalf_of, or the actor when none was named
	CreatedAt  time.Time        `json:"created_at"`
	FinishedAt *time.Time       `json:"finished_at,omitempty"`
	Total      int              `json:"total"`
	Done       int              `json:"done"`
	Failed     int              `json:"failed"`
	Secrets    []SecretProgress `json:"secrets"`
}

// Finished reports whether every secret of the trigger has ended.
func (s TriggerStatus) Finished() bool {
	return s.State == StateSucceeded || s.State == StatePartial || s.State == StateFailed
}

// Ended is how many of the trigger's secrets have ended, well or not.
func (s TriggerStatus) Ended() int { return s.Done + s.Failed }

// SecretStatus is one managed secret in the inventory: ids, ages, stages, never values.
type SecretStatus struct {
	Name              string     `json:"name"`
	Kind              string     `json:"kind"`
	Environment       string     `json:"environment"`
	MasterMerchantID  string     `json:"master_merchant_id"`
	Policy            string     `json:"policy"`
	Owners            []string   `json:"owners,omitempty"`
	CurrentVersionID  string     `json:"current_version,omitempty"`
	PendingVersionID  string     `json:"pending_version,omitempty"` // set only while a rotation is in flight
	PreviousVersionID string     `json:"previous_version,omitempty"`
	CurrentSince      *time.Time `json:"current_since,omitempty"`
	AgeSeconds        int64      `json:"age_seconds"`
	NextRotation      *time.Time `json:"next_rotation,omitempty"`
	Failures          int        `json:"failures,omitempty"`
	LastFailure       string     `json:"last_failure,omitempty"`
	// OldCredential is the previous credential while it is in its grace.
	OldCredential *OldCredential `json:"old_credential,omitempty"`
}

// OldCredential is what the daemon's last retire check found of a secret's
// previous (AWSPREVIOUS) credential during its grace: who is still on it.
type OldCredential struct {
	VersionID string `json:"version"`
	// ID is the LakiConnect key id or webhook secret id (never the secret).
	ID     string     `json:"id"`
	EndsAt *time.Time `json:"ends_at,omitempty"`
	// LastUsedAt is LakiConnect's last_used_at (API keys only; to the minute).
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// StillInUse: used close to its end (the policy's last_used_warning).
	StillInUse bool      `json:"still_in_use"`
	CheckedAt  time.Time `json:"checked_at"`
}

// Inventory is the answer of GET /v1/inventory.
type Inventory struct {
	Secrets []SecretStatus `json:"secrets"`
}

// ErrorBody is every error answer of the API.
type ErrorBody struct {
	Error string `json:"error"`
}
