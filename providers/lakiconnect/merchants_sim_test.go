package lakiconnect_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	lc "github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// rotatingKey is a key source whose key a test replaces, as the management
// key's rotation replaces AWSCURRENT.
type rotatingKey struct {
	mu  sync.Mutex
	key secret.Value
	err error
}

func (r *rotatingKey) Key(context.Context) (secret.Value, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.key, r.err
}

func (r *rotatingKey) set(k secret.Value, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.key, r.err = k, err
}

// The merchant's client reads the current key before every call: after the
// key changes, the next call goes with the new one, and an unreadable key
// sends nothing.
func TestMerchantClientFollowsTheCurrentKey(t *testing.T) {
	h := startSim(t)
	ctx := context.Background()
	base := h.sandbox(t)
	next, err := base.CreateAPIKey(ctx, "merchants-next-key", laki.CreateAPIKeyRequest{Name: "next management key", Scopes: laki.AllScopes})
	if err != nil {
		t.Fatal(err)
	}
	keys := &rotatingKey{key: h.fx.SandboxKey}
	ms, err := lc.NewMerchants(map[laki.Environment]*lc.Client{laki.Sandbox: base},
		map[laki.Merchant]lc.KeySource{{Environment: laki.Sandbox, MasterMerchantID: h.fx.MasterMerchantID}: keys})
	if err != nil {
		t.Fatal(err)
	}
	c, err := ms.Client(laki.Sandbox, h.fx.MasterMerchantID)
	if err != nil {
		t.Fatal(err)
	}
	if me, err := c.WhoAmI(ctx); err != nil || me.KeyID != h.fx.SandboxKeyID {
		t.Fatalf("first key: %+v, %v", me, err)
	}
	keys.set(next.Secret, nil)
	if me, err := c.WhoAmI(ctx); err != nil || me.KeyID != next.ID {
		t.Fatalf("after the rotation: %+v, %v", me, err)
	}
	if me, err := c.WhoAmIWith(ctx, h.fx.SandboxKey); err != nil || me.KeyID != h.fx.SandboxKeyID {
		t.Fatalf("proving another key: %+v, %v", me, err)
	}

	calls := len(h.takeCalls())
	keys.set(secret.Value{}, errors.New("store unreachable"))
	_, err = c.WhoAmI(ctx)
	if err == nil || !strings.Contains(err.Error(), "store unreachable") || !strings.Contains(err.Error(), "nothing was sent") {
		t.Fatalf("unreadable key: %v", err)
	}
	if n := len(h.takeCalls()); n != 0 {
		t.Fatalf("%d calls went out without a key (before: %d)", n, calls)
	}

	var all []string
	for m, mc := range ms.All() {
		all = append(all, m.String())
		if mc != c {
			t.Errorf("All gives another client for %s than Client", m)
		}
	}
	if len(all) != 1 || all[0] != "sandbox/"+h.fx.MasterMerchantID {
		t.Errorf("All: %v", all)
	}
	if _, err := ms.Client(laki.Production, h.fx.MasterMerchantID); err == nil {
		t.Fatal("a merchant without a key source has a client")
	}
	if _, err := lc.NewMerchants(nil, map[laki.Merchant]lc.KeySource{{Environment: laki.Production, MasterMerchantID: h.fx.MasterMerchantID}: keys}); err == nil {
		t.Fatal("a merchant of an environment without a client was accepted")
	}
}
