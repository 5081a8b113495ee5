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

// The catalog copies what it keeps of a listing into memory of its own
// (the name inside the ARN when the ARN holds it): every field reads back
// as listed, whatever the ARN looks like, for discovered and declared
// secrets.
func TestCatalogKeepsEveryListedFieldInItsOwnCopy(t *testing.T) {
	changed := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	hook := tags("webhook_secret", "sandbox", "hooks", "alice bob")
	hook[inventory.TagEndpointID] = "we_0123456789abcdefghijklmn"
	versions := []secretstore.VersionInfo{
		{ID: "11111111-2222-3333-4444-555555555555", Stages: []string{"AWSCURRENT"}},
		{ID: "66666666-7777-8888-9999-000000000000", Stages: []string{"AWSPREVIOUS", "lakirotator-x"}, CreatedAt: changed},
	}
	listedSecrets := []secretstore.Secret{
		{Name: "hooks/orders", ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:hooks/orders-AbCdEf", Tags: hook, Versions: versions, LastChangedAt: changed},
		{Name: "keys/checkout", ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:other-name-AbCdEf", Tags: tags("api_key", "sandbox", "checkout", ""), Versions: versions[:1]},
		{Name: "keys/no-arn", Tags: tags("api_key", "sandbox", "checkout", "")},
		{Name: "declared/one", ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:declared/one-XyZ123", Versions: versions[1:]},
	}
	declared := inventory.ManagedSecret{Name: "declared/one", Kind: inventory.KindAPIKey, Environment: laki.Sandbox, MasterMerchantID: "mm_AAAABBBBCCCCDDDD", Policy: "reporting"}
	c := &inventory.Catalog{Stores: map[laki.Environment]inventory.Lister{laki.Sandbox: &listed{secrets: listedSecrets}}, Discover: true,
		Declared: []inventory.ManagedSecret{declared}}
	require.NoError(t, c.Refresh(context.Background(), time.Now()))
	require.Len(t, c.All(), 4)
	for _, s := range listedSecrets {
		e, ok := c.Get(s.Name)
		require.True(t, ok, s.Name)
		assert.Equal(t, s.Name, e.Managed.Name)
		assert.Equal(t, s.Name, e.Stored.Name)
		assert.Equal(t, s.ARN, e.Managed.ARN)
		assert.Equal(t, s.ARN, e.Stored.ARN)
		assert.Equal(t, s.Versions, e.Stored.Versions, s.Name)
		assert.Equal(t, s.LastChangedAt, e.Stored.LastChangedAt)
		if s.Name == declared.Name {
			assert.Equal(t, inventory.KindAPIKey, e.Managed.Kind)
			assert.Equal(t, "reporting", e.Managed.Policy)
			continue
		}
		assert.Equal(t, inventory.Kind(s.Tags[inventory.TagKind]), e.Managed.Kind)
		assert.Equal(t, laki.Sandbox, e.Managed.Environment)
		assert.Equal(t, "mm_AAAABBBBCCCCDDDD", e.Managed.MasterMerchantID)
		assert.Equal(t, s.Tags[inventory.TagPolicy], e.Managed.Policy)
		assert.Equal(t, s.Tags[inventory.TagEndpointID], e.Managed.EndpointID)
	}
	e, _ := c.Get("hooks/orders")
	assert.Equal(t, []string{"alice", "bob"}, e.Managed.Owners)
}

// A refresh keeps what the listing still says and takes what changed: a
// new version, a moved stage, a new tag value, a secret gone.
func TestCatalogRefreshTakesEveryChange(t *testing.T) {
	st := &listed{secrets: []secretstore.Secret{
		{Name: "a", ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf", Tags: tags("api_key", "sandbox", "checkout", "alice"),
			Versions: []secretstore.VersionInfo{{ID: "v1", Stages: []string{"AWSCURRENT"}}}},
		{Name: "b", ARN: "arn:b", Tags: tags("api_key", "sandbox", "checkout", "bob"), Versions: []secretstore.VersionInfo{{ID: "v1", Stages: []string{"AWSCURRENT"}}}},
		{Name: "c", ARN: "arn:c", Tags: tags("api_key", "sandbox", "checkout", "carol")},
	}}
	c := &inventory.Catalog{Stores: map[laki.Environment]inventory.Lister{laki.Sandbox: st}, Discover: true}
	ctx := context.Background()
	require.NoError(t, c.Refresh(ctx, time.Now()))
	st.secrets[0].Versions = []secretstore.VersionInfo{{ID: "v2", Stages: []string{"AWSCURRENT"}}, {ID: "v1", Stages: []string{"AWSPREVIOUS"}}}
	st.secrets[1].Tags = tags("api_key", "sandbox", "reporting", "bob")
	st.secrets = st.secrets[:2]
	require.NoError(t, c.Refresh(ctx, time.Now()))
	a, _ := c.Get("a")
	assert.Equal(t, st.secrets[0].Versions, a.Stored.Versions)
	b, _ := c.Get("b")
	assert.Equal(t, "reporting", b.Managed.Policy)
	_, ok := c.Get("c")
	assert.False(t, ok, "a secret no longer listed is dropped")
	require.NoError(t, c.Refresh(ctx, time.Now()))
	again, _ := c.Get("a")
	assert.Equal(t, a, again, "an unchanged listing reads back the same")
}
