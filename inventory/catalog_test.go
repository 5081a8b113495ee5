package inventory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// listed is a store listing: filters are applied as Secrets Manager applies them.
type listed struct {
	secrets   []secretstore.Secret
	describes int
}

func (l *listed) List(_ context.Context, filters []secretstore.TagFilter, fn func(secretstore.Secret) error) error {
	for _, s := range l.secrets {
		keep := true
		for _, f := range filters {
			v, ok := s.Tags[f.Key]
			if !ok || (len(f.Values) > 0 && !contains(f.Values, v)) {
				keep = false
			}
		}
		if keep {
			if err := fn(s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *listed) Describe(_ context.Context, name string) (secretstore.Secret, error) {
	l.describes++
	for _, s := range l.secrets {
		if s.Name == name {
			return s, nil
		}
	}
	return secretstore.Secret{}, &secretstore.Error{Op: "Describe", Secret: name, Kind: secretstore.ErrNotFound}
}

func contains(vs []string, v string) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

func tags(kind, env, policy, owners string) map[string]string {
	return map[string]string{
		inventory.TagManaged: "true", inventory.TagKind: kind, inventory.TagEnvironment: env,
		inventory.TagMasterMerchant: "mm_AAAABBBBCCCCDDDD", inventory.TagPolicy: policy, inventory.TagOwners: owners,
	}
}

func TestCatalogDiscoversByTagsAndReportsBadTags(t *testing.T) {
	sandbox := &listed{secrets: []secretstore.Secret{
		{Name: "checkout/sandbox", ARN: "arn:1", Tags: tags("api_key", "sandbox", "checkout", "alice, payments-team")},
		{Name: "unmanaged", Tags: map[string]string{"team": "x"}},
		{Name: "broken", Tags: tags("api_key", "sandbox", "", "bob")},
		{Name: "wrong-store", Tags: tags("api_key", "production", "checkout", "bob")},
		{Name: "declared/sandbox", ARN: "arn:2", Tags: map[string]string{}},
	}}
	c := &inventory.Catalog{
		Stores:   map[laki.Environment]inventory.Lister{laki.Sandbox: sandbox},
		Discover: true,
		Declared: []inventory.ManagedSecret{
			{Name: "declared/sandbox", Kind: inventory.KindAPIKey, Environment: laki.Sandbox, MasterMerchantID: "mm_AAAABBBBCCCCDDDD", Policy: "reporting", Owners: []string{"carol"}},
			{Name: "not-created-yet", Kind: inventory.KindAPIKey, Environment: laki.Sandbox, MasterMerchantID: "mm_AAAABBBBCCCCDDDD", Policy: "reporting"},
		},
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	require.NoError(t, c.Refresh(context.Background(), now))

	var names []string
	for _, e := range c.All() {
		names = append(names, e.Managed.Name)
	}
	assert.Equal(t, []string{"checkout/sandbox", "declared/sandbox", "not-created-yet"}, names)
	e, ok := c.Get("checkout/sandbox")
	require.True(t, ok)
	assert.Equal(t, []string{"alice", "payments-team"}, e.Managed.Owners)
	assert.Equal(t, "arn:1", e.Managed.ARN)
	missing, _ := c.Get("not-created-yet")
	assert.True(t, missing.Missing)
	assert.Equal(t, 2, sandbox.describes, "one describe per declared secret, none per discovered one")

	problems := c.ProblemSummary()
	assert.Contains(t, problems, `"broken"`)
	assert.Contains(t, problems, "policy is empty")
	assert.Contains(t, problems, `"wrong-store"`)
	assert.Contains(t, problems, `"not-created-yet" is declared in the config but does not exist`)

	owned := c.Select(func(e inventory.Entry) bool { return e.Managed.HasOwner("ALICE") })
	require.Len(t, owned, 1)
	assert.Equal(t, "checkout/sandbox", owned[0].Managed.Name)

	c.Update("checkout/sandbox", secretstore.Secret{Name: "checkout/sandbox", Versions: []secretstore.VersionInfo{{ID: "v2", Stages: []string{"AWSCURRENT"}}}})
	e, _ = c.Get("checkout/sandbox")
	v, ok := e.Stored.VersionWithStage("AWSCURRENT")
	require.True(t, ok)
	assert.Equal(t, "v2", v.ID)
	assert.Equal(t, now, c.RefreshedAt())
}

func TestCatalogKeepsOnlyTheBookkeepingTags(t *testing.T) {
	tg := tags("api_key", "sandbox", "checkout", "alice")
	tg["lakirotator:failed-attempts"] = "2"
	tg["cost-center"] = "payments"
	st := &listed{secrets: []secretstore.Secret{{Name: "checkout/sandbox", Description: "long text", Tags: tg}}}
	c := &inventory.Catalog{Stores: map[laki.Environment]inventory.Lister{laki.Sandbox: st}, Discover: true,
		KeepTags: []string{"lakirotator:failed-attempts", "lakirotator:last-failure"}}
	require.NoError(t, c.Refresh(context.Background(), time.Now()))
	e, ok := c.Get("checkout/sandbox")
	require.True(t, ok)
	assert.Equal(t, map[string]string{"lakirotator:failed-attempts": "2"}, e.Stored.Tags)
	assert.Empty(t, e.Stored.Description)
	assert.Equal(t, []string{"alice"}, e.Managed.Owners, "what the tags said is kept, parsed")
}
