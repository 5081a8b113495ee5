// Package scan is the policy scan behind `policy check` and the daemon's
// scheduled scan: it reads every API key and webhook endpoint at LakiConnect
// (per master merchant and environment) and every managed secret, builds the
// facts of each credential, and runs the policy checks over them.
package scan

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Client lists what LakiConnect holds for one master merchant in one
// environment: the calling (management) key's view. The LakiConnect client
// is one.
type Client interface {
	WhoAmI(ctx context.Context) (laki.WhoAmI, error)
	APIKeys(ctx context.Context) ([]laki.APIKey, error)
	WebhookEndpoints(ctx context.Context) ([]laki.WebhookEndpoint, error)
}

// Merchant is one master merchant to read, with the client that reads it
// (through the base URL of its environment).
type Merchant struct {
	laki.Merchant
	Client Client
}

// Managed is one managed secret as the scan sees it: its declaration and the
// ids its stored versions hold (never the values).
type Managed struct {
	Secret           string
	Kind             inventory.Kind
	Environment      laki.Environment // declared (tag or config)
	MasterMerchantID string
	Policy           string
	// KeyID is the API key id in AWSCURRENT (api_key, management_key).
	KeyID string
	// EndpointID and SecretID name the webhook signing secret in AWSCURRENT.
	EndpointID string
	SecretID   string
	// PreviousIDs are the key or webhook secret ids of other stored
	// versions (AWSPREVIOUS, AWSPENDING): referenced, so not unmanaged, but
	// not judged as current.
	PreviousIDs []string
	// StoredEnvironment is "environment" in the stored value; "" if unread.
	StoredEnvironment laki.Environment
	// BaseURLEnvironment is the environment of the base URL the secret's
	// consumers are configured with; "" if unknown.
	BaseURLEnvironment laki.Environment
	// Builtin judges the secret when Policy is empty: the rotator's own
	// management key and security webhook secret, which the config may
	// leave without a policy (the rotator then does not rotate them on a
	// schedule, but they are its own, not unmanaged).
	Builtin *policies.Policy
}

// FromInventory builds a Managed from a managed secret's declaration; the
// caller fills in the ids its stored versions hold.
func FromInventory(m inventory.ManagedSecret) Managed {
	return Managed{
		Secret: m.Name, Kind: m.Kind, Environment: m.Environment,
		MasterMerchantID: m.MasterMerchantID, Policy: m.Policy, EndpointID: m.EndpointID,
	}
}

// WithCurrent fills in what the secret's AWSCURRENT value says: the key or
// webhook secret id and the stored environment. The value's secret itself is
// not kept.
func (m Managed) WithCurrent(c secretstore.Credential) Managed {
	m.StoredEnvironment = laki.Environment(c.Environment)
	switch c.Type {
	case secretstore.TypeWebhookSecret:
		m.EndpointID, m.SecretID = c.EndpointID, c.SecretID
	default:
		m.KeyID = c.KeyID
	}
	return m
}

// Scanner evaluates every credential of its merchants against the policies.
type Scanner struct {
	Policies  *policies.Set
	Merchants []Merchant
}

type foundKey struct {
	key      laki.APIKey
	merchant Merchant
}

type foundEndpoint struct {
	ep       laki.WebhookEndpoint
	merchant Merchant
}

// Scan reads every merchant and returns all violations, sorted most severe
// first. If any merchant cannot be read, Scan fails: a partial listing would
// report keys as missing that are merely unread.
func (s *Scanner) Scan(ctx context.Context, managed []Managed, now time.Time) ([]policies.Violation, error) {
	keys := map[string]foundKey{}
	endpoints := map[string]foundEndpoint{}
	var keyOrder, epOrder []string
	mgmtKeys := map[string]bool{}
	var errs []error
	for _, t := range s.Merchants {
		who, err := t.Client.WhoAmI(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy scan of %s: whoami: %w", t, err))
			continue
		}
		mgmtKeys[who.KeyID] = true
		ks, err := t.Client.APIKeys(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy scan of %s: list api keys: %w", t, err))
			continue
		}
		for _, k := range ks {
			if _, dup := keys[k.ID]; !dup {
				keyOrder = append(keyOrder, k.ID)
			}
			keys[k.ID] = foundKey{k, t}
		}
		eps, err := t.Client.WebhookEndpoints(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("policy scan of %s: list webhook endpoints: %w", t, err))
			continue
		}
		for _, e := range eps {
			if _, dup := endpoints[e.ID]; !dup {
				epOrder = append(epOrder, e.ID)
			}
			endpoints[e.ID] = foundEndpoint{e, t}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	var out []policies.Violation
	referencedKeys := map[string]bool{}
	referencedEndpoints := map[string]bool{}
	for _, m := range managed {
		f := policies.Facts{
			Secret: m.Secret, Kind: m.Kind, Managed: true, Current: true, PolicyName: m.Policy,
			DeclaredEnvironment: m.Environment, StoredEnvironment: m.StoredEnvironment,
			BaseURLEnvironment: m.BaseURLEnvironment, DeclaredMerchantID: m.MasterMerchantID,
		}
		if p, ok := s.Policies.ForEnvironment(m.Policy, m.Environment); ok {
			f.Policy = &p
		} else if m.Policy == "" && m.Builtin != nil {
			f.Policy, f.PolicyName = m.Builtin, m.Builtin.Name
		}
		for _, id := range m.PreviousIDs {
			referencedKeys[id] = true
		}
		switch m.Kind {
		case inventory.KindWebhookSecret:
			referencedEndpoints[m.EndpointID] = true
			f.EndpointID, f.KeyID = m.EndpointID, m.SecretID
			if fe, ok := endpoints[m.EndpointID]; ok {
				f.EndpointURL = fe.ep.URL
				f.KeyEnvironment, f.KeyMerchantID = fe.ep.Environment, fe.ep.MasterMerchantID
				if ws, ok := storedSecret(fe.ep, m.SecretID); ok {
					f.Found, f.KeyID = true, ws.ID
					f.Status, f.CreatedAt, f.ExpiresAt = ws.Status, ws.CreatedAt, ws.ExpiresAt
				}
			}
		default:
			referencedKeys[m.KeyID] = true
			f.KeyID = m.KeyID
			if fk, ok := keys[m.KeyID]; ok {
				setKeyFacts(&f, fk.key)
				f.ManagementKey = mgmtKeys[m.KeyID]
			}
			for _, id := range m.PreviousIDs {
				if pk, ok := keys[id]; ok {
					f.PreviousKeys = append(f.PreviousKeys, policies.PreviousKey{ID: id, Status: pk.key.Status, ExpiresAt: pk.key.ExpiresAt, LastUsedAt: pk.key.LastUsedAt})
				}
			}
			if m.Kind == inventory.KindManagementKey || f.ManagementKey {
				env := cmp.Or(f.KeyEnvironment, m.Environment)
				f.RotationScopes = s.Policies.RotationScopes(env)
			}
		}
		out = append(out, policies.Evaluate(f, now)...)
	}

	for _, id := range keyOrder {
		fk := keys[id]
		if referencedKeys[id] {
			continue
		}
		f := policies.Facts{Kind: inventory.KindAPIKey, BaseURLEnvironment: fk.merchant.Environment, ManagementKey: mgmtKeys[id]}
		setKeyFacts(&f, fk.key)
		if f.ManagementKey {
			f.Kind = inventory.KindManagementKey
			f.RotationScopes = s.Policies.RotationScopes(fk.merchant.Environment)
		}
		out = append(out, policies.Evaluate(f, now)...)
	}
	for _, id := range epOrder {
		fe := endpoints[id]
		if referencedEndpoints[id] {
			continue
		}
		f := policies.Facts{
			Kind: inventory.KindWebhookSecret, Found: true, EndpointID: id, EndpointURL: fe.ep.URL,
			KeyEnvironment: fe.ep.Environment, KeyMerchantID: fe.ep.MasterMerchantID,
			BaseURLEnvironment: fe.merchant.Environment,
		}
		out = append(out, policies.Evaluate(f, now)...)
	}
	Sort(out)
	return out, nil
}

func setKeyFacts(f *policies.Facts, k laki.APIKey) {
	f.Found, f.KeyID = true, k.ID
	f.KeyEnvironment, f.KeyMerchantID = k.Environment, k.MasterMerchantID
	f.Scopes, f.Status, f.CreatedAt, f.ExpiresAt, f.LastUsedAt = k.Scopes, k.Status, k.CreatedAt, k.ExpiresAt, k.LastUsedAt
	f.Metadata = k.Metadata
	if k.CreatedBy != nil {
		f.CreatedBy = *k.CreatedBy
	}
}

// storedSecret finds the stored webhook secret on its endpoint. Without a
// stored id it takes the newest secret that is not revoked.
func storedSecret(ep laki.WebhookEndpoint, id string) (laki.WebhookSecretInfo, bool) {
	var best laki.WebhookSecretInfo
	found := false
	for _, s := range ep.Secrets {
		if id != "" {
			if s.ID == id {
				return s, true
			}
			continue
		}
		if s.Status != laki.StatusRevoked && (!found || s.CreatedAt.After(best.CreatedAt)) {
			best, found = s, true
		}
	}
	return best, found
}

// Sort orders violations most severe first, then by secret, reason, key and endpoint.
func Sort(vs []policies.Violation) {
	slices.SortStableFunc(vs, func(a, b policies.Violation) int {
		return cmp.Or(
			cmp.Compare(policies.SeverityRank(b.Severity), policies.SeverityRank(a.Severity)),
			cmp.Compare(a.Secret, b.Secret),
			cmp.Compare(a.Reason, b.Reason),
			cmp.Compare(a.KeyID, b.KeyID),
			cmp.Compare(a.EndpointID, b.EndpointID),
		)
	})
}
