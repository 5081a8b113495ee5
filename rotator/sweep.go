package rotator

import (
	"context"
	"sort"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// SweptKey is a LakiConnect key the sweep looked at. No secret value.
type SweptKey struct {
	KeyID            string
	Name             string
	Environment      laki.Environment
	MasterMerchantID string
	// Secret is the managed secret named in the key's metadata (rotator-made keys).
	Secret    string
	CreatedAt time.Time
}

// SweepResult lists what the sweep did and saw.
type SweepResult struct {
	// Revoked: rotator-made keys that no stored version references, older than the margin.
	Revoked []SweptKey
	// Young: rotator-made, unreferenced, but within the margin (a rotation may
	// be between its create and its put): left alone.
	Young []SweptKey
	// Foreign: keys that no stored version references and that the rotator
	// did not make (or made for a secret outside this sweep): reported, never touched.
	Foreign []SweptKey
}

// Sweep finds orphan keys of the given managed secrets' master merchants:
// keys LakiConnect lists as not revoked that no stored AWSCURRENT,
// AWSPREVIOUS or AWSPENDING value references. Those the rotator made for one
// of these secrets (metadata created_by_rotator and the secret's name) and
// older than Config.OrphanMargin are revoked and reported; all others are
// only reported. The calling management key is never touched. A store read
// that fails stops the sweep of that merchant: nothing is revoked on partial
// knowledge. Webhook secrets are not swept (an endpoint holds at most two,
// and a rotation ends a stale one itself).
func (e *Engine) Sweep(ctx context.Context, secrets []inventory.ManagedSecret) (SweepResult, error) {
	var res SweepResult
	groups := map[string][]inventory.ManagedSecret{}
	var order []string
	for _, ms := range secrets {
		if ms.Kind == inventory.KindWebhookSecret {
			continue
		}
		if err := ms.Validate(); err != nil {
			return res, &StepError{Secret: ms.Name, Step: "sweep", Err: err, Permanent: true}
		}
		g := string(ms.Environment) + "/" + ms.MasterMerchantID
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], ms)
	}
	sort.Strings(order)
	var firstErr error
	for _, g := range order {
		if err := e.sweepGroup(ctx, groups[g], &res); err != nil && firstErr == nil {
			firstErr = err
			if ctx.Err() != nil {
				return res, err
			}
		}
	}
	return res, firstErr
}

func (e *Engine) sweepGroup(ctx context.Context, secrets []inventory.ManagedSecret, res *SweepResult) error {
	first := secrets[0]
	referenced := map[string]bool{}
	names := map[string]string{} // metadata name -> secret name
	for _, ms := range secrets {
		names[metaName(ms.Name)] = ms.Name
		d, err := e.store.Describe(ctx, ms.Name)
		if err != nil {
			return stepErr(ms.Name, "sweep: describe", err)
		}
		for _, v := range d.Versions {
			if !v.Has(secretstore.StageCurrent) && !v.Has(secretstore.StagePrevious) && !v.Has(secretstore.StagePending) {
				continue
			}
			c, err := e.read(ctx, ms, secretstore.ByID(v.ID), "sweep: read version")
			if err != nil {
				return err
			}
			referenced[c.KeyID] = true
		}
	}
	iss, err := e.issuer(ctx, first)
	if err != nil {
		return stepErr(first.Name, "sweep", err)
	}
	self, err := iss.WhoAmI(ctx)
	if err != nil {
		return stepErr(first.Name, "sweep: whoami", err)
	}
	referenced[self.KeyID] = true
	margin := e.clk.Now().Add(-e.cfg.OrphanMargin)
	for k, err := range iss.ListAPIKeys(ctx, laki.ListAPIKeysOptions{PageSize: laki.MaxPageLimit}) {
		if err != nil {
			return stepErr(first.Name, "sweep: list keys", err)
		}
		if k.Status == laki.StatusRevoked || referenced[k.ID] {
			continue
		}
		sk := SweptKey{KeyID: k.ID, Name: k.Name, Environment: k.Environment, MasterMerchantID: k.MasterMerchantID,
			Secret: k.Metadata[MetaSecret], CreatedAt: k.CreatedAt}
		ev := events.Event{Environment: string(k.Environment), MasterMerchantID: k.MasterMerchantID,
			KeyID: k.ID, KeyLast4: k.SecretLast4, Actor: "rotator", Source: events.SourceSchedule}
		secretName, ours := names[k.Metadata[MetaSecret]]
		if k.Metadata[MetaCreatedBy] != MetaCreatedByValue || !ours {
			res.Foreign = append(res.Foreign, sk)
			ev.Secret = k.Metadata[MetaSecret]
			ev.Details = map[string]string{"action": "report_unreferenced_key", "created_by_rotator": k.Metadata[MetaCreatedBy]}
			e.emit(ctx, ev, events.StepSweep, events.OutcomeSkipped, nil)
			continue
		}
		ev.Secret, ev.VersionID = secretName, k.Metadata[MetaVersion]
		if k.CreatedAt.After(margin) {
			res.Young = append(res.Young, sk)
			continue
		}
		if _, err := iss.RevokeAPIKey(ctx, "sweep-"+k.ID, k.ID); err != nil && !isNotFound(err) {
			err = stepErr(secretName, "sweep: revoke orphan "+k.ID, err)
			e.emit(ctx, ev, events.StepSweep, events.OutcomeFailed, err)
			return err
		}
		res.Revoked = append(res.Revoked, sk)
		ev.Severity = events.SeverityWarning
		ev.Details = map[string]string{"action": "revoke_orphan", "created_at": k.CreatedAt.UTC().Format(time.RFC3339)}
		e.emit(ctx, ev, events.StepSweep, events.OutcomeSucceeded, nil)
		if err := e.hook(secretName, AfterSweepRevoke); err != nil {
			return err
		}
	}
	return nil
}
