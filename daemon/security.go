package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
	"github.com/lakirotator/lakirotator/trigger"
)

// HandleSecurityEvent acts on a verified, first-seen LakiConnect security
// event (the receiver has checked signature, merchant and redelivery).
func (d *Daemon) HandleSecurityEvent(ctx context.Context, e lakiconnect.Event) error {
	switch e.Type {
	case laki.EventAPIKeyExposed:
		var data lakiconnect.APIKeyExposedData
		if err := json.Unmarshal(e.Data, &data); err != nil || data.KeyID == "" {
			return fmt.Errorf("event %s: api_key.exposed without a key_id", e.ID)
		}
		entry, current, err := d.lookupOnce(ctx, e, data.KeyID)
		if err != nil {
			return fmt.Errorf("event %s: %w", e.ID, err)
		}
		if entry == nil {
			d.alert(ctx, e, "", data.KeyID, "exposed_key_unmanaged",
				fmt.Sprintf("LakiConnect reports key %s exposed (%s); no managed secret holds it: revoke it by hand", data.KeyID, data.FoundIn))
			return nil
		}
		if actedOn(*entry, "evt:"+e.ID) {
			d.log.Debug("security event already acted on", "event_id", e.ID, "secret", entry.Managed.Name)
			return nil
		}
		in := exposedIntent(e, data, d.clock.Now())
		if !current {
			// An old key still in its grace: consumers have the current one,
			// so ending the exposed key now costs no outage.
			in.OldKey = data.KeyID
			if err := d.recordIntent(ctx, []inventory.Entry{*entry}, in); err != nil {
				return err
			}
			d.runOldKeyIntent(*entry, in, 0)
			return nil
		}
		// The trigger id comes from the event, so a redelivery after a
		// restart names the same rotation and changes nothing.
		_, err = d.Trigger(ctx, trigger.Request{
			Secret: entry.Managed.Name, Cause: events.CauseCompromise, Actor: in.Trigger.Actor, Reason: in.Trigger.Reason,
			Source: events.SourceLakiEvent, ID: in.Trigger.ID,
		})
		return err
	case laki.EventAPIKeyRevoked:
		var data lakiconnect.APIKeyRevokedData
		if err := json.Unmarshal(e.Data, &data); err != nil || data.KeyID == "" {
			return fmt.Errorf("event %s: api_key.revoked without a key_id", e.ID)
		}
		entry, current, err := d.secretHoldingKey(ctx, e.Environment, e.MasterMerchantID, data.KeyID)
		if err != nil || entry == nil {
			return err
		}
		if current {
			d.alert(ctx, e, entry.Managed.Name, data.KeyID, "current_key_revoked",
				fmt.Sprintf("the key in AWSCURRENT of %s was revoked (%s): its consumers are failing; rotate it now", entry.Managed.Name, data.Reason))
		}
		return nil
	case laki.EventAuthFailureSpike:
		var data lakiconnect.AuthFailureSpikeData
		if err := json.Unmarshal(e.Data, &data); err != nil {
			return fmt.Errorf("event %s: malformed security.auth_failure_spike", e.ID)
		}
		keyID, secretName, msg := "", "", ""
		if data.KeyID != nil {
			keyID = *data.KeyID
		}
		refused := fmt.Sprintf("LakiConnect reports %d requests refused with %d (%s) in %ds", data.Count, data.StatusCode, statusWords(data.StatusCode), data.WindowSeconds)
		var entry *inventory.Entry
		var current bool
		var err error
		if keyID != "" {
			entry, current, err = d.secretHoldingKey(ctx, e.Environment, e.MasterMerchantID, keyID)
		}
		switch {
		case keyID == "":
			msg = fmt.Sprintf("%s with a key it does not know (prefix %s), for merchant %s in %s. Someone may be guessing keys, or a client has a mistyped key.", refused, data.KeyPrefix, e.MasterMerchantID, e.Environment)
		case err != nil || entry == nil:
			msg = fmt.Sprintf("%s with key %s, which no managed secret holds (merchant %s in %s). Find who uses it; the rotator cannot replace it.", refused, keyID, e.MasterMerchantID, e.Environment)
		case current:
			secretName = entry.Managed.Name
			msg = fmt.Sprintf("%s with key %s, the current key of %s. The key may be revoked, leaked and abused, or short of scopes a consumer needs.", refused, keyID, secretName)
		default:
			secretName = entry.Managed.Name
			msg = fmt.Sprintf("%s with key %s, the retired (previous) key of %s. A consumer still uses the old credential, or the old key leaked and is being tried.", refused, keyID, secretName)
		}
		d.alert(ctx, e, secretName, keyID, "auth_failure_spike", msg)
		return nil
	default:
		d.log.Info("security event ignored", "type", e.Type, "event_id", e.ID)
		return nil
	}
}

// RecordSecurityEvent is the receiver's durable step, run before it answers
// 2xx: an api_key.exposed of a managed key becomes a compromise intent kept
// on the secret (see recordIntent), so that the rotation (or the end of an
// exposed old key) is carried out across restarts and failover. A
// redelivery of an event already acted on is a duplicate: no alert, no
// message. The lookup of the key needs no LakiConnect call when it is down:
// the stored versions name it.
func (d *Daemon) RecordSecurityEvent(ctx context.Context, e lakiconnect.Event) (bool, error) {
	if e.Type != laki.EventAPIKeyExposed {
		return false, nil
	}
	var data lakiconnect.APIKeyExposedData
	if err := json.Unmarshal(e.Data, &data); err != nil || data.KeyID == "" {
		return false, nil // the handler reports it
	}
	entry, current, err := d.secretHoldingKey(ctx, e.Environment, e.MasterMerchantID, data.KeyID)
	if err == nil {
		d.rememberLookup(e.ID, entry, current)
	}
	if err != nil {
		return false, fmt.Errorf("event %s: %w", e.ID, err)
	}
	if entry == nil {
		return false, nil
	}
	if actedOn(*entry, "evt:"+e.ID) {
		return true, nil
	}
	in := exposedIntent(e, data, d.clock.Now())
	if !current {
		in.OldKey = data.KeyID
	}
	return false, d.recordIntent(ctx, []inventory.Entry{*entry}, in)
}

// lookupOnce is secretHoldingKey for the handler, reusing what
// RecordSecurityEvent found for the same event moments before (one store
// read per event, not two).
func (d *Daemon) lookupOnce(ctx context.Context, e lakiconnect.Event, keyID string) (*inventory.Entry, bool, error) {
	d.mu.Lock()
	l, ok := d.lookups[e.ID]
	delete(d.lookups, e.ID)
	d.mu.Unlock()
	if ok {
		if l.name == "" {
			return nil, false, nil
		}
		if entry, found := d.catalog.Get(l.name); found {
			return &entry, l.current, nil
		}
	}
	return d.secretHoldingKey(ctx, e.Environment, e.MasterMerchantID, keyID)
}

type keyLookup struct {
	name    string
	current bool
}

func (d *Daemon) rememberLookup(eventID string, entry *inventory.Entry, current bool) {
	l := keyLookup{current: current}
	if entry != nil {
		l.name = entry.Managed.Name
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.lookups) > 1000 { // bounded: entries are taken by the handler at once
		clear(d.lookups)
	}
	d.lookups[eventID] = l
}

// actedOn reports whether the secret shows the event's action done: its
// rotation written, or its intent marked done.
func actedOn(e inventory.Entry, id string) bool {
	return doneFrom(e.Stored.Tags).ID == id || rotator.TriggerSettled(e.Managed, e.Stored, id)
}

func exposedIntent(e lakiconnect.Event, data lakiconnect.APIKeyExposedData, now time.Time) intent {
	return intent{Trigger: rotator.Trigger{
		Kind: events.CauseCompromise, ID: "evt:" + e.ID, Source: events.SourceLakiEvent,
		Actor: "lakiconnect:" + e.ID, Reason: fmt.Sprintf("key %s exposed (%s)", data.KeyID, data.FoundIn),
		At: now.UTC().Truncate(time.Millisecond),
	}}
}

// runOldKeyIntent ends an exposed old key, retrying until done (with the
// same backoff and escalation as emergency rotations), then marks the
// intent done.
func (d *Daemon) runOldKeyIntent(entry inventory.Entry, in intent, n int) {
	d.goBackground(func(ctx context.Context) {
		if n > 0 {
			select {
			case <-d.quit:
				return
			case <-d.clock.After(min(emergencyRetryBase<<min(n-1, 10), emergencyRetryMax)):
			}
		}
		err := d.revokeExposedOldKey(ctx, entry, in)
		if err == nil {
			d.markIntentDone(ctx, entry.Managed, in.Trigger.ID)
			return
		}
		d.log.Error("ending an exposed old key failed; retrying", "secret", entry.Managed.Name, "key_id", in.OldKey, "err", err)
		d.escalate(ctx, rotator.Job{Secret: entry.Managed, Trigger: in.Trigger}, err)
		select {
		case <-d.quit:
		default:
			d.runOldKeyIntent(entry, in, n+1)
		}
	})
}

// resumeOldKeyIntent carries on, at start-up, an exposed old key's end.
func (d *Daemon) resumeOldKeyIntent(e inventory.Entry, in intent) { d.runOldKeyIntent(e, in, 0) }

func (d *Daemon) alert(ctx context.Context, e lakiconnect.Event, secretName, keyID, reason, msg string) {
	d.bus.Emit(ctx, events.Event{
		Time: d.clock.Now(), Step: events.StepAlert, Outcome: events.OutcomeWarning, Severity: events.SeverityCritical,
		Secret: secretName, Environment: string(e.Environment), MasterMerchantID: e.MasterMerchantID,
		Source: events.SourceLakiEvent, Actor: "lakiconnect:" + e.ID, KeyID: keyID, Reason: msg,
		Details: map[string]string{"reason": reason, "event_id": e.ID, "event_type": e.Type},
	})
}

func statusWords(status int) string {
	switch status {
	case 401:
		return "unauthorized"
	case 403:
		return "forbidden"
	}
	return "refused"
}

// secretHoldingKey finds the managed secret whose credential is the key,
// and whether it is that secret's current one: first by the metadata the
// rotator puts on every key it creates (one LakiConnect call), then, for
// keys made by hand before the rotator took over, by reading the current
// and previous values of each candidate secret.
func (d *Daemon) secretHoldingKey(ctx context.Context, env laki.Environment, merchant, keyID string) (*inventory.Entry, bool, error) {
	e := d.envs[env]
	if e == nil {
		return nil, false, fmt.Errorf("environment %s is not configured", env)
	}
	// The metadata lookup is one LakiConnect call; while LakiConnect is
	// down, it gives up quickly and the stored versions answer instead.
	mctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if iss, err := e.Issuers.Issuer(mctx, env, merchant); err == nil {
		if k, err := iss.GetAPIKey(mctx, keyID); err == nil {
			if name := k.Metadata[rotator.MetaSecret]; name != "" {
				if entry, ok := d.catalog.Get(name); ok {
					cur, err := d.currentKeyID(ctx, entry)
					if err != nil {
						return nil, false, err
					}
					return &entry, cur == keyID, nil
				}
			}
		}
	}
	candidates := d.catalog.Select(func(x inventory.Entry) bool {
		return !x.Missing && x.Managed.Environment == env && x.Managed.MasterMerchantID == merchant &&
			(x.Managed.Kind == inventory.KindAPIKey || x.Managed.Kind == inventory.KindManagementKey)
	})
	for _, entry := range candidates {
		if id, err := d.currentKeyID(ctx, entry); err == nil && id == keyID {
			return &entry, true, nil
		}
	}
	for _, entry := range candidates {
		prev, ok := entry.Stored.VersionWithStage(secretstore.StagePrevious)
		if !ok {
			continue
		}
		v, err := e.Store.Get(ctx, entry.Managed.Name, secretstore.ByID(prev.ID))
		if err != nil {
			continue
		}
		if c, err := secretstore.DecodeCredential(entry.Managed.Name, v.Value); err == nil && c.KeyID == keyID {
			return &entry, false, nil
		}
	}
	return nil, false, nil
}

// revokeExposedOldKey ends an exposed key that is no longer current at once
// and says so; the idempotency key comes from the event.
func (d *Daemon) revokeExposedOldKey(ctx context.Context, entry inventory.Entry, in intent) error {
	ms := entry.Managed
	iss, err := d.envs[ms.Environment].Issuers.Issuer(ctx, ms.Environment, ms.MasterMerchantID)
	if err != nil {
		return err
	}
	eventID := strings.TrimPrefix(in.Trigger.ID, "evt:")
	_, err = iss.RevokeAPIKey(ctx, "revoke-exposed-"+eventID, in.OldKey)
	if code, _ := apiCode(err); code == 404 {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("revoking exposed old key %s of %s: %w", in.OldKey, ms.Name, err)
	}
	d.bus.Emit(ctx, events.Event{
		Time: d.clock.Now(), Step: events.StepAlert, Outcome: events.OutcomeWarning, Severity: events.SeverityCritical,
		Secret: ms.Name, Environment: string(ms.Environment), MasterMerchantID: ms.MasterMerchantID,
		Source: events.SourceLakiEvent, KeyID: in.OldKey, Reason: fmt.Sprintf("%s; it was %s's previous key, still in its grace: revoked now. The current key is not affected.", in.Trigger.Reason, ms.Name),
		TriggerID: in.Trigger.ID, Cause: in.Trigger.Kind, Actor: in.Trigger.Actor,
		Details: map[string]string{"reason": "exposed_old_key_revoked", "event_id": eventID, "event_type": laki.EventAPIKeyExposed},
	})
	return nil
}

func apiCode(err error) (int, string) {
	var ae *lakiconnect.APIError
	if errors.As(err, &ae) {
		return ae.StatusCode, ae.Code
	}
	return 0, ""
}

func (d *Daemon) currentKeyID(ctx context.Context, entry inventory.Entry) (string, error) {
	v, err := d.envs[entry.Managed.Environment].Store.Get(ctx, entry.Managed.Name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil {
		return "", err
	}
	c, err := secretstore.DecodeCredential(entry.Managed.Name, v.Value)
	if err != nil {
		return "", err
	}
	return c.KeyID, nil
}
