package rotator

import (
	"context"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// RetireState is where the old (AWSPREVIOUS) credential stands.
type RetireState string

const (
	RetireNone      RetireState = "none"      // no previous version, or it is gone at LakiConnect
	RetireInGrace   RetireState = "in_grace"  // still working until EndsAt
	RetireEnded     RetireState = "ended"     // confirmed revoked
	RetireRevoked   RetireState = "revoked"   // was past its end but working: revoked now
	RetireScheduled RetireState = "scheduled" // had no end: its end was scheduled now
)

// RetireResult is what Retire found and did.
type RetireResult struct {
	Secret     string
	KeyID      string
	State      RetireState
	EndsAt     *time.Time
	LastUsedAt *time.Time
	// StillInUse is set when the old key was used within the policy's
	// LastUsedWarning of its end (a warning event was raised).
	StillInUse bool
}

// Retire watches the old credential of a secret (the one AWSPREVIOUS
// holds): during its grace it warns when consumers still use it close to
// its end; after the end it confirms it is revoked, and revokes it if
// LakiConnect did not. An old credential whose end was never scheduled gets
// one now (the policy's default grace). known is the secret's Describe or
// listing data, nil to have Retire describe it.
func (e *Engine) Retire(ctx context.Context, ms inventory.ManagedSecret, pol RotationPolicy, known *secretstore.Secret) (RetireResult, error) {
	res := RetireResult{Secret: ms.Name, State: RetireNone}
	if err := ms.Validate(); err != nil {
		return res, &StepError{Secret: ms.Name, Step: "retire", Err: err, Permanent: true}
	}
	info := known
	if info == nil {
		d, err := e.store.Describe(ctx, ms.Name)
		if err != nil {
			return res, stepErr(ms.Name, "retire: describe", err)
		}
		info = &d
	}
	prev, ok := info.VersionWithStage(secretstore.StagePrevious)
	if !ok {
		return res, nil
	}
	cur, _ := info.VersionWithStage(secretstore.StageCurrent)
	old, err := e.read(ctx, ms, secretstore.ByID(prev.ID), "retire: read previous")
	if err != nil {
		return res, err
	}
	res.KeyID = old.ID()
	iss, err := e.issuer(ctx, ms)
	if err != nil {
		return res, stepErr(ms.Name, "retire", err)
	}
	ev := events.Event{Secret: ms.Name, Kind: string(ms.Kind), Environment: string(ms.Environment),
		MasterMerchantID: ms.MasterMerchantID, VersionID: cur.ID, PreviousVersionID: prev.ID, PreviousKeyID: res.KeyID,
		KeyLast4: old.Secret.Last4(), Source: events.SourceSchedule, Actor: "rotator"}
	now := e.clk.Now().UTC()

	var status laki.KeyStatus
	var endsAt *time.Time
	if old.Type == secretstore.TypeWebhookSecret {
		ep, err := iss.GetWebhookEndpoint(ctx, ms.EndpointID)
		if err != nil {
			return res, stepErr(ms.Name, "retire", err)
		}
		found := false
		for _, s := range ep.Secrets {
			if s.ID == old.SecretID {
				found, status, endsAt = true, s.Status, s.ExpiresAt
			}
		}
		if !found {
			return res, nil
		}
	} else {
		k, err := iss.GetAPIKey(ctx, old.KeyID)
		if isNotFound(err) {
			return res, nil
		}
		if err != nil {
			return res, stepErr(ms.Name, "retire", err)
		}
		status, endsAt, res.LastUsedAt = k.Status, endOf(k), k.LastUsedAt
	}
	res.EndsAt = endsAt

	job := Job{Secret: ms, Policy: pol, Trigger: Trigger{Kind: events.CauseScheduled}}
	switch {
	case status == laki.StatusRevoked:
		res.State = RetireEnded
		ev.Details = map[string]string{"action": "confirm_ended"}
		e.emit(ctx, ev, events.StepRetire, events.OutcomeSucceeded, nil)
	case status == laki.StatusActive || endsAt == nil || !now.Before(*endsAt):
		// Never scheduled, or past its end yet still working: make it end.
		grace := pol.GraceFor(events.CauseScheduled)
		if status != laki.StatusActive {
			grace = 0
		}
		at, err := e.endOld(ctx, iss, job, cur.ID, &old, grace)
		if grace == 0 {
			res.State = RetireRevoked
		} else {
			res.State = RetireScheduled
		}
		if err != nil {
			return res, err
		}
		res.EndsAt = at
	default:
		res.State = RetireInGrace
		if oldKeyStillUsedNearEnd(pol, now, *endsAt, cur.CreatedAt, res.LastUsedAt) {
			res.StillInUse = true
			ev.Severity = events.SeverityWarning
			ev.Details = map[string]string{"action": "old_key_still_used",
				"last_used_at": res.LastUsedAt.UTC().Format(time.RFC3339), "ends_at": endsAt.UTC().Format(time.RFC3339)}
			e.emit(ctx, ev, events.StepAlert, events.OutcomeWarning, nil)
		}
	}
	return res, nil
}
