package secretstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

func credential(t *testing.T, s string) secret.Value {
	t.Helper()
	v, err := secretstore.Credential{Type: secretstore.TypeWebhookSecret, Environment: "sandbox", MasterMerchantID: "mm_AAAAAAAAAAAAAAAA",
		EndpointID: "we_AAAAAAAAAAAAAAAAAAAAAAAA", SecretID: "whs_" + s, Secret: secret.New("whsec_" + s), CreatedAt: time.Unix(0, 0).UTC()}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func reveal(vs []secret.Value) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Reveal()
	}
	return out
}

// The cache follows the credential's rotation: what it read is kept for its
// ttl, a fresh read or an invalidation goes to the store, and a missing
// optional stage is left out.
func TestCachedSecretsFollowRotation(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	st, err := localstore.Open(filepath.Join(t.TempDir(), "store.json"), localstore.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	first := credential(t, "first")
	if _, err := st.Create(ctx, "hook", "", nil, &first); err != nil {
		t.Fatal(err)
	}
	c := secretstore.NewCachedSecrets(st, "hook", time.Minute, clk, secretstore.StageCurrent, secretstore.StagePending)

	got, err := c.Secrets(ctx, false)
	if err != nil || len(got) != 1 || got[0].Reveal() != "whsec_first" {
		t.Fatalf("current only: %v, %v", reveal(got), err)
	}
	if err := st.PutPending(ctx, "hook", "00000000-0000-4000-8000-000000000002", credential(t, "second")); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Secrets(ctx, false); len(got) != 1 {
		t.Errorf("within the ttl the held secrets are served: %v", reveal(got))
	}
	if got, _ := c.Secrets(ctx, true); len(got) != 2 || got[1].Reveal() != "whsec_second" {
		t.Errorf("a fresh read sees the pending secret: %v", reveal(got))
	}
	desc, err := st.Describe(ctx, "hook")
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := desc.VersionWithStage(secretstore.StageCurrent)
	if err := st.MoveStage(ctx, "hook", secretstore.StageCurrent, "00000000-0000-4000-8000-000000000002", cur.ID); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	if got, _ := c.Secrets(ctx, false); got[0].Reveal() != "whsec_second" {
		t.Errorf("after the ttl the promoted secret is current: %v", reveal(got))
	}

	only := secretstore.NewCachedSecrets(st, "missing", time.Minute, clk, secretstore.StageCurrent)
	if _, err := only.Secrets(ctx, false); !errors.Is(err, secretstore.ErrNotFound) {
		t.Errorf("the first stage must exist: %v", err)
	}
}
