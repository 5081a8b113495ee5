// What the rest of the daemon asks of a loaded config: environments, master
// merchants, the declared secrets and the checks of discovered ones.

package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// File is the name the configuration was loaded from.
func (c *Config) File() string { return c.file }

// Environment returns the configuration of one environment.
func (c *Config) Environment(env laki.Environment) (EnvironmentConfig, bool) {
	e, ok := c.Environments[env]
	if !ok || e == nil {
		return EnvironmentConfig{}, false
	}
	return *e, true
}

// EnvironmentNames lists the configured environments, sorted.
func (c *Config) EnvironmentNames() []laki.Environment {
	var out []laki.Environment
	for name, e := range c.Environments {
		if e != nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// MasterMerchant returns the configuration of one master merchant in one
// environment: where its management key is kept.
func (c *Config) MasterMerchant(env laki.Environment, id string) (MasterMerchantConfig, bool) {
	e, ok := c.Environment(env)
	if !ok {
		return MasterMerchantConfig{}, false
	}
	for _, m := range e.LakiConnect.MasterMerchants {
		if m.ID == id {
			return m, true
		}
	}
	return MasterMerchantConfig{}, false
}

// ManagedSecrets lists the secrets the file declares: the secrets list, then
// every management key and security webhook secret that has a policy
// (production before sandbox, in file order within each).
func (c *Config) ManagedSecrets() []inventory.ManagedSecret {
	var out []inventory.ManagedSecret
	for _, s := range c.Secrets {
		out = append(out, inventory.ManagedSecret{
			Name: s.Name, Kind: s.Kind, Environment: s.Environment,
			MasterMerchantID: s.MasterMerchantID, EndpointID: s.EndpointID,
			Policy: s.Policy, Owners: slices.Clone(s.Owners),
		})
	}
	for _, env := range c.EnvironmentNames() {
		for _, m := range c.Environments[env].LakiConnect.MasterMerchants {
			if m.ManagementKey.Policy != "" {
				out = append(out, inventory.ManagedSecret{
					Name: m.ManagementKey.Secret, Kind: inventory.KindManagementKey, Environment: env,
					MasterMerchantID: m.ID, Policy: m.ManagementKey.Policy, Owners: slices.Clone(m.ManagementKey.Owners),
				})
			}
			if w := m.SecurityWebhook; w != nil && w.Policy != "" {
				out = append(out, inventory.ManagedSecret{
					Name: w.Secret, Kind: inventory.KindWebhookSecret, Environment: env,
					MasterMerchantID: m.ID, EndpointID: w.EndpointID, Policy: w.Policy, Owners: slices.Clone(w.Owners),
				})
			}
		}
	}
	return out
}

// CheckDiscovered says whether a secret found by its tags may be managed
// under this config: its tags are complete (inventory's own check), its
// kind is api_key or webhook_secret (management keys are declared in the
// file), its environment is configured, its master merchant is listed
// there, and the file does not declare the same name (the file's entry
// wins). The error names the secret and what is wrong.
func (c *Config) CheckDiscovered(m inventory.ManagedSecret) error {
	if err := m.Validate(); err != nil {
		return err
	}
	var problems []string
	if m.Kind == inventory.KindManagementKey {
		problems = append(problems, "management keys are declared in the config, not discovered")
	}
	if _, ok := c.Environment(m.Environment); !ok {
		problems = append(problems, fmt.Sprintf("environment %s is not configured", m.Environment))
	} else if _, ok := c.MasterMerchant(m.Environment, m.MasterMerchantID); !ok {
		problems = append(problems, fmt.Sprintf("master merchant %s is not listed for %s", m.MasterMerchantID, m.Environment))
	}
	for _, d := range c.ManagedSecrets() {
		if d.Name == m.Name {
			problems = append(problems, "also declared in the config, whose entry is used")
			break
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("discovered secret %q: %s", m.Name, strings.Join(problems, "; "))
	}
	return nil
}

// DiscoveryTagFilters are the Secrets Manager tag filters discovery lists
// secrets with: always the managed tag, plus the configured filters (sorted
// by key). Nil when discovery is off.
func (c *Config) DiscoveryTagFilters() []secretstore.TagFilter {
	if !c.Discovery.Enabled {
		return nil
	}
	out := []secretstore.TagFilter{{Key: inventory.TagManaged, Values: []string{"true"}}}
	keys := make([]string, 0, len(c.Discovery.TagFilters))
	for k := range c.Discovery.TagFilters {
		if k != inventory.TagManaged {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		out = append(out, secretstore.TagFilter{Key: k, Values: slices.Clone(c.Discovery.TagFilters[k])})
	}
	return out
}

// Receiver returns the receiver with that name.
func (n NotificationsConfig) Receiver(name string) (ReceiverConfig, bool) {
	for _, r := range n.Receivers {
		if r.Name == name {
			return r, true
		}
	}
	return ReceiverConfig{}, false
}
