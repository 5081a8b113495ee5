package policies

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Set is the loaded policies, by name.
type Set struct {
	byName map[string]Policy
}

// Get returns the policy with the name.
func (s *Set) Get(name string) (Policy, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// Names returns the policy names, sorted.
func (s *Set) Names() []string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// All returns the policies sorted by name.
func (s *Set) All() []Policy {
	out := make([]Policy, 0, len(s.byName))
	for _, n := range s.Names() {
		out = append(out, s.byName[n])
	}
	return out
}

// NewSet builds a set from policies made in code (tests, defaults). It checks
// only that names are unique and non-empty; files go through Load.
func NewSet(ps ...Policy) (*Set, error) {
	s := &Set{byName: make(map[string]Policy, len(ps))}
	for _, p := range ps {
		if p.Name == "" {
			return nil, errors.New("policies: a policy has no name")
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("policies: policy %q is defined twice", p.Name)
		}
		s.byName[p.Name] = p
	}
	return s, nil
}

// RotationScopes is what the management key of env needs: api_keys:read and
// api_keys:write to list, create and expire keys (and read auth failures),
// webhooks:read and webhooks:write when webhook secrets are managed there,
// and every scope it must grant to keys it creates (LakiConnect refuses to
// grant a scope the caller lacks).
func (s *Set) RotationScopes(env laki.Environment) []laki.Scope {
	need := []laki.Scope{laki.ScopeAPIKeysRead, laki.ScopeAPIKeysWrite}
	for _, p := range s.byName {
		if !p.AllowsEnvironment(env) {
			continue
		}
		switch p.Kind {
		case inventory.KindWebhookSecret:
			need = append(need, laki.ScopeWebhooksRead, laki.ScopeWebhooksWrite)
		case inventory.KindAPIKey:
			need = append(need, p.Scopes...)
		}
	}
	return sortScopes(need)
}

// ForEnvironment returns the named policy as it applies in env. For a
// management key that is its scopes narrowed to RotationScopes(env): one
// management policy serves both environments, but a sandbox management key
// must not hold what only production rotation needs. Other kinds are
// returned unchanged. The engine builds create requests from this policy.
func (s *Set) ForEnvironment(name string, env laki.Environment) (Policy, bool) {
	p, ok := s.byName[name]
	if !ok || p.Kind != inventory.KindManagementKey {
		return p, ok
	}
	need := s.RotationScopes(env)
	var scopes []laki.Scope
	for _, sc := range p.Scopes {
		if slices.Contains(need, sc) {
			scopes = append(scopes, sc)
		}
	}
	p.Scopes = scopes
	return p, true
}
