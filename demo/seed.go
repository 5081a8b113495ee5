// What the demo seeds: its merchant, management keys, webhook endpoints and
// the first credential of every demo secret.

package demo

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakisim"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// A demo secret and what it stands for.
type seedSecret struct {
	Name, Policy string
	Env          laki.Environment
	Kind         inventory.Kind
	Owners       string
	Scopes       []laki.Scope
	endpointURL  string
}

var (
	checkoutScopes  = []laki.Scope{laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeCustomersRead}
	refundsScopes   = []laki.Scope{laki.ScopeRefundsRead, laki.ScopeRefundsWrite, laki.ScopePaymentsRead}
	reportingScopes = []laki.Scope{laki.ScopeReportsRead}
	// managementScopes is what rotation needs: every scope the rotator
	// grants, and the rights to manage keys and webhook secrets.
	managementScopes = []laki.Scope{
		laki.ScopePaymentsRead, laki.ScopePaymentsWrite, laki.ScopeRefundsRead, laki.ScopeRefundsWrite,
		laki.ScopeCustomersRead, laki.ScopeReportsRead, laki.ScopeWebhooksRead, laki.ScopeWebhooksWrite,
		laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite,
	}
)

func seeds() []seedSecret {
	return []seedSecret{
		{Name: "demo/sandbox/checkout", Policy: "demo-checkout", Env: laki.Sandbox, Kind: inventory.KindAPIKey, Owners: "alice payments-team", Scopes: checkoutScopes},
		{Name: "demo/sandbox/reporting", Policy: "demo-reporting", Env: laki.Sandbox, Kind: inventory.KindAPIKey, Owners: "bob", Scopes: reportingScopes},
		{Name: "demo/sandbox/orders-webhook", Policy: "demo-webhooks", Env: laki.Sandbox, Kind: inventory.KindWebhookSecret, Owners: "alice", endpointURL: "https://shop.example/webhooks/lakiconnect"},
		{Name: "demo/production/checkout", Policy: "demo-checkout", Env: laki.Production, Kind: inventory.KindAPIKey, Owners: "alice payments-team", Scopes: checkoutScopes},
		{Name: "demo/production/refunds", Policy: "demo-refunds", Env: laki.Production, Kind: inventory.KindAPIKey, Owners: "carol", Scopes: refundsScopes},
	}
}

type seeded struct {
	merchant         string
	securityEndpoint string
	store            *localstore.Store
}

// seed creates the merchant, the management keys, the webhook endpoints and
// the first credential of every demo secret, and stores them.
func seed(ctx context.Context, dir string, sim *lakisim.Simulator, apiURL string, clk clock.Clock) (seeded, error) {
	now := clk.Now().UTC()
	mm := sim.AddMasterMerchant("")
	st, err := localstore.Open(filepath.Join(dir, "store.json"), localstore.WithClock(clk))
	if err != nil {
		return seeded{}, fmt.Errorf("demo: local store: %w", err)
	}
	put := func(name string, tags map[string]string, c secretstore.Credential) error {
		v, err := c.Encode()
		if err != nil {
			return fmt.Errorf("demo: %s: %w", name, err)
		}
		_, err = st.Create(ctx, name, "lakirotator demo secret", tags, &v)
		return err
	}
	for _, env := range []laki.Environment{laki.Sandbox, laki.Production} {
		k, err := sim.CreateKey(env, mm, "lakirotator management key", managementScopes)
		if err != nil {
			return seeded{}, fmt.Errorf("demo: management key: %w", err)
		}
		if err := put("demo/"+string(env)+"/management-key", nil, secretstore.Credential{
			Type: secretstore.TypeAPIKey, Environment: string(env), MasterMerchantID: mm, KeyID: k.ID,
			Secret: k.Secret, Scopes: laki.ScopeNames(k.Scopes), CreatedAt: now,
		}); err != nil {
			return seeded{}, err
		}
	}
	// The production security webhook points at the daemon's own receiver.
	secEP, secSecret, err := sim.AddWebhookEndpoint(laki.Production, mm,
		apiURL+config.SecurityWebhookPath(laki.Production, mm), []string{laki.EventAPIKeyExposed, laki.EventAPIKeyRevoked, laki.EventAuthFailureSpike})
	if err != nil {
		return seeded{}, fmt.Errorf("demo: security webhook: %w", err)
	}
	if err := put("demo/production/security-webhook", nil, secretstore.Credential{
		Type: secretstore.TypeWebhookSecret, Environment: string(laki.Production), MasterMerchantID: mm,
		EndpointID: secEP.ID, SecretID: secSecret.ID, Secret: secSecret.Secret, CreatedAt: now,
	}); err != nil {
		return seeded{}, err
	}
	for _, s := range seeds() {
		tags := map[string]string{
			inventory.TagManaged: "true", inventory.TagKind: string(s.Kind), inventory.TagEnvironment: string(s.Env),
			inventory.TagMasterMerchant: mm, inventory.TagPolicy: s.Policy, inventory.TagOwners: s.Owners,
		}
		c := secretstore.Credential{Environment: string(s.Env), MasterMerchantID: mm, CreatedAt: now}
		switch s.Kind {
		case inventory.KindWebhookSecret:
			ep, ws, err := sim.AddWebhookEndpoint(s.Env, mm, s.endpointURL, []string{"payment.succeeded"})
			if err != nil {
				return seeded{}, fmt.Errorf("demo: %s: %w", s.Name, err)
			}
			tags[inventory.TagEndpointID] = ep.ID
			c.Type, c.EndpointID, c.SecretID, c.Secret = secretstore.TypeWebhookSecret, ep.ID, ws.ID, ws.Secret
		default:
			k, err := sim.CreateKey(s.Env, mm, s.Name, s.Scopes)
			if err != nil {
				return seeded{}, fmt.Errorf("demo: %s: %w", s.Name, err)
			}
			c.Type, c.KeyID, c.Secret, c.Scopes = secretstore.TypeAPIKey, k.ID, k.Secret, laki.ScopeNames(k.Scopes)
		}
		if err := put(s.Name, tags, c); err != nil {
			return seeded{}, err
		}
	}
	return seeded{merchant: mm, securityEndpoint: secEP.ID, store: st}, nil
}
