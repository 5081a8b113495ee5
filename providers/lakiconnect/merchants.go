package lakiconnect

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
)

// KeySource hands out the key to call with: a merchant's current management
// key, read from where it is stored (and cached there), so that a client
// follows the key's own rotation.
type KeySource interface {
	Key(ctx context.Context) (secret.Value, error)
}

// StaticKey is a KeySource that never changes (tests, one-shot use).
type StaticKey secret.Value

// Key returns the key.
func (k StaticKey) Key(context.Context) (secret.Value, error) { return secret.Value(k), nil }

// WithKeySource returns a client with the same settings and connection pool
// that reads its key from keys before every call, with a rate limit of its
// own (another management key is another budget at LakiConnect).
func (c *Client) WithKeySource(keys KeySource) *Client {
	cp := *c
	cp.keys = keys
	cp.pace = c.paceCfg.newPace()
	return &cp
}

// callKey is the key the next call goes with.
func (c *Client) callKey(ctx context.Context) (secret.Value, error) {
	if c.keys == nil {
		return c.key, nil
	}
	k, err := c.keys.Key(ctx)
	if err != nil {
		return secret.Value{}, fmt.Errorf("reading the key to call with: %w", err)
	}
	return k, nil
}

// Merchants gives the client for a merchant's current management key: the
// environment's client (its URL, transport, retries and rate limit) reading
// the merchant's key before every call. The engine, the scans and the
// readiness checks all call LakiConnect through it.
type Merchants struct {
	clients map[laki.Merchant]*Client
	keys    map[laki.Merchant]KeySource
}

// NewMerchants binds each merchant's key source to its environment's client.
func NewMerchants(byEnvironment map[laki.Environment]*Client, keys map[laki.Merchant]KeySource) (*Merchants, error) {
	m := &Merchants{clients: make(map[laki.Merchant]*Client, len(keys)), keys: keys}
	for who, ks := range keys {
		base, ok := byEnvironment[who.Environment]
		if !ok {
			return nil, fmt.Errorf("lakiconnect: no client for environment %s (master merchant %s)", who.Environment, who.MasterMerchantID)
		}
		m.clients[who] = base.WithKeySource(ks)
	}
	return m, nil
}

// Client returns the client that calls with the merchant's current key.
func (m *Merchants) Client(env laki.Environment, masterMerchantID string) (*Client, error) {
	c, ok := m.clients[laki.Merchant{Environment: env, MasterMerchantID: masterMerchantID}]
	if !ok {
		return nil, fmt.Errorf("no management key configured for %s master merchant %s", env, masterMerchantID)
	}
	return c, nil
}

// All yields every merchant and its client, sorted by environment and id.
func (m *Merchants) All() iter.Seq2[laki.Merchant, *Client] {
	who := make([]laki.Merchant, 0, len(m.clients))
	for w := range m.clients {
		who = append(who, w)
	}
	slices.SortFunc(who, func(a, b laki.Merchant) int {
		return cmp.Or(cmp.Compare(a.Environment, b.Environment), cmp.Compare(a.MasterMerchantID, b.MasterMerchantID))
	})
	return func(yield func(laki.Merchant, *Client) bool) {
		for _, w := range who {
			if !yield(w, m.clients[w]) {
				return
			}
		}
	}
}

// InvalidateManagementKey makes the merchant's next call read its key
// again, when its key source caches (right after the key's own rotation).
func (m *Merchants) InvalidateManagementKey(env laki.Environment, masterMerchantID string) {
	if inv, ok := m.keys[laki.Merchant{Environment: env, MasterMerchantID: masterMerchantID}].(interface{ Invalidate() }); ok {
		inv.Invalidate()
	}
}
