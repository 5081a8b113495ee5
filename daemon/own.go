package daemon

import (
	"context"
	"errors"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/policies"
	"github.com/lakirotator/lakirotator/policies/scan"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Names of the built-in policies that judge the rotator's own credentials
// when the config gives them none.
const (
	BuiltinManagementKeyPolicy   = "builtin:management-key"
	BuiltinSecurityWebhookPolicy = "builtin:security-webhook"
)

// ownCredentials are the management keys and security webhook secrets the
// config names without a policy. They are not rotated on a schedule, but
// they are the rotator's own: the policy scan judges them by built-in
// least-privilege policies (a management key holds exactly what rotation
// needs in its environment) instead of calling them unmanaged.
func ownCredentials(cfg *config.Config, pols *policies.Set) []scan.Managed {
	var out []scan.Managed
	for _, env := range cfg.EnvironmentNames() {
		ec, _ := cfg.Environment(env)
		for _, m := range ec.LakiConnect.MasterMerchants {
			if m.ManagementKey.Policy == "" {
				out = append(out, scan.Managed{Secret: m.ManagementKey.Secret, Kind: inventory.KindManagementKey, Environment: env,
					MasterMerchantID: m.ID, Builtin: &policies.Policy{Name: BuiltinManagementKeyPolicy, Kind: inventory.KindManagementKey,
						Scopes: pols.RotationScopes(env), Environments: []laki.Environment{env}}})
			}
			if w := m.SecurityWebhook; w != nil && w.Policy == "" {
				out = append(out, scan.Managed{Secret: w.Secret, Kind: inventory.KindWebhookSecret, Environment: env,
					MasterMerchantID: m.ID, EndpointID: w.EndpointID, Builtin: &policies.Policy{Name: BuiltinSecurityWebhookPolicy,
						Kind: inventory.KindWebhookSecret, Environments: []laki.Environment{env}}})
			}
		}
	}
	return out
}

// addOwn adds the rotator's own credentials, as their stores hold them now,
// to what the scan judges.
func (s *Scans) addOwn(ctx context.Context, idx *keyIndex) error {
	live := map[string]bool{}
	defer s.ownFacts.keepKeys(live)
	for _, m := range s.own {
		env := s.d.envs[m.Environment]
		if env == nil {
			continue
		}
		sec, err := env.Store.Describe(ctx, m.Secret)
		if errors.Is(err, secretstore.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		for _, v := range sec.Versions {
			live[factsKey(m.Secret, v.ID)] = true
		}
		if cur, ok := sec.VersionWithStage(secretstore.StageCurrent); ok {
			c, err := s.ownFacts.of(ctx, env.Store, m.Secret, cur.ID)
			switch {
			case err == nil:
				m = m.WithCurrent(c)
			case errors.Is(err, secretstore.ErrMalformedValue):
				idx.unreadable[m.Secret] = err
			default:
				return err
			}
		}
		if prev, ok := sec.VersionWithStage(secretstore.StagePrevious); ok {
			if c, err := s.ownFacts.of(ctx, env.Store, m.Secret, prev.ID); err == nil {
				m.PreviousIDs = append(m.PreviousIDs, c.ID())
			}
		}
		idx.managed = append(idx.managed, m)
	}
	return nil
}

// keepKeys forgets every version not in live.
func (f *credentialFacts) keepKeys(live map[string]bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.m {
		if !live[k] {
			delete(f.m, k)
		}
	}
}
