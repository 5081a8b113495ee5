package lakisim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomAlnum returns n characters from crypto/rand, without modulo bias.
func randomAlnum(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, 2*n)
	for len(out) < n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails (Go 1.24+)
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: the rest would favour the first letters
				continue
			}
			out = append(out, alnum[int(b)%len(alnum)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

func newWebhookSecretValue() secret.Value {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return secret.New(laki.WebhookSecretPrefix + base64.StdEncoding.EncodeToString(b))
}

func checkScopes(scopes []laki.Scope) error {
	if len(scopes) == 0 {
		return fmt.Errorf("scopes must hold at least one scope")
	}
	seen := map[laki.Scope]bool{}
	for i, sc := range scopes {
		if !sc.Valid() {
			return fmt.Errorf("scopes[%d]: unknown scope %q", i, sc)
		}
		if seen[sc] {
			return fmt.Errorf("scopes[%d]: scope %q given twice", i, sc)
		}
		seen[sc] = true
	}
	return nil
}

func timePtr(t time.Time) *time.Time { return &t }

func (k *apiKey) view() laki.APIKey {
	v := laki.APIKey{
		ID:               k.id,
		Object:           "api_key",
		Name:             k.name,
		Environment:      k.env,
		MasterMerchantID: k.merchant,
		Scopes:           slices.Clone(k.scopes),
		Status:           k.status,
		CreatedAt:        k.createdAt,
		ExpiresAt:        k.expiresAt,
		RevokedAt:        k.revokedAt,
		LastUsedAt:       k.lastUsedAt,
		CreatedBy:        k.createdBy,
		SecretLast4:      k.secret.Last4(),
	}
	if len(k.metadata) > 0 {
		v.Metadata = map[string]string{}
		for a, b := range k.metadata {
			v.Metadata[a] = b
		}
	}
	return v
}

func (k *apiKey) has(sc laki.Scope) bool { return slices.Contains(k.scopes, sc) }

func (ep *endpoint) addSecret(now time.Time) *webhookSecret {
	ws := &webhookSecret{
		id:        laki.WebhookSecretIDPrefix + randomAlnum(laki.ResourceIDLength),
		value:     newWebhookSecretValue(),
		status:    laki.StatusActive,
		createdAt: now,
	}
	ep.secrets = append(ep.secrets, ws)
	return ws
}

func (ep *endpoint) liveSecrets() int {
	n := 0
	for _, ws := range ep.secrets {
		if ws.status != laki.StatusRevoked {
			n++
		}
	}
	return n
}

// signingSecrets are the secrets that sign now: active, or expiring and not
// yet past expires_at, in creation order.
func (ep *endpoint) signingSecrets(now time.Time) []secret.Value {
	var out []secret.Value
	for _, ws := range ep.secrets {
		switch {
		case ws.status == laki.StatusActive:
		case ws.status == laki.StatusExpiring && ws.expiresAt != nil && now.Before(*ws.expiresAt):
		default:
			continue
		}
		out = append(out, ws.value)
	}
	return out
}

func (ep *endpoint) enabled(eventType string) bool {
	return slices.Contains(ep.enabledEvents, "*") || slices.Contains(ep.enabledEvents, eventType)
}

func (ep *endpoint) view() laki.WebhookEndpoint {
	v := laki.WebhookEndpoint{
		ID:               ep.id,
		Object:           "webhook_endpoint",
		URL:              ep.url,
		Environment:      ep.env,
		MasterMerchantID: ep.merchant,
		EnabledEvents:    slices.Clone(ep.enabledEvents),
		Status:           "enabled",
		Secrets:          []laki.WebhookSecretInfo{},
	}
	for _, ws := range ep.secrets {
		v.Secrets = append(v.Secrets, ws.info())
	}
	return v
}

func (ws *webhookSecret) info() laki.WebhookSecretInfo {
	return laki.WebhookSecretInfo{
		ID:          ws.id,
		Status:      ws.status,
		CreatedAt:   ws.createdAt,
		ExpiresAt:   ws.expiresAt,
		SecretLast4: ws.value.Last4(),
	}
}

func (ws *webhookSecret) withValue(endpointID string) laki.WebhookSecretWithValue {
	return laki.WebhookSecretWithValue{WebhookSecretInfo: ws.info(), EndpointID: endpointID, Secret: ws.value}
}

func (s *Simulator) liveKeyCountLocked(env laki.Environment, merchant string) int {
	n := 0
	for _, k := range s.keys {
		if k.env == env && k.merchant == merchant && k.status != laki.StatusRevoked {
			n++
		}
	}
	return n
}

func (s *Simulator) sortedKeysLocked(env laki.Environment, merchant string) []*apiKey {
	var out []*apiKey
	for _, k := range s.keys {
		if k.env == env && k.merchant == merchant {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b *apiKey) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

func (s *Simulator) sortedEndpointsLocked(env laki.Environment, merchant string) []*endpoint {
	var out []*endpoint
	for _, ep := range s.endpoints {
		if ep.env == env && ep.merchant == merchant {
			out = append(out, ep)
		}
	}
	slices.SortFunc(out, func(a, b *endpoint) int {
		if c := a.createdAt.Compare(b.createdAt); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	return out
}

// refreshLocked applies what the clock has made true since the last look:
// keys and webhook secrets past expires_at are revoked (with their events),
// keys within 7 days of expires_at get api_key.expiring_soon once, and old
// idempotency records are dropped.
func (s *Simulator) refreshLocked(now time.Time) {
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids) // events in a stable order
	for _, id := range ids {
		k := s.keys[id]
		if k.status == laki.StatusRevoked || k.expiresAt == nil {
			continue
		}
		if !now.Before(*k.expiresAt) {
			s.revokeAtLocked(k, *k.expiresAt, "expired", now)
			continue
		}
		if !k.expiringSoonSent && !now.Before(k.expiresAt.Add(-laki.MaxExpireDelay)) {
			k.expiringSoonSent = true
			s.emitLocked(k.env, k.merchant, laki.EventAPIKeyExpiringSoon, lakiconnect.APIKeyExpiringSoonData{KeyID: k.id, ExpiresAt: *k.expiresAt}, now)
		}
	}
	for _, ep := range s.endpoints {
		for _, ws := range ep.secrets {
			if ws.status == laki.StatusExpiring && ws.expiresAt != nil && !now.Before(*ws.expiresAt) {
				ws.status = laki.StatusRevoked
			}
		}
	}
	for k, e := range s.idem {
		if now.Sub(e.at) >= laki.IdempotencyWindow {
			delete(s.idem, k)
		}
	}
}

func (s *Simulator) revokeLocked(k *apiKey, now time.Time, reason string) {
	s.revokeAtLocked(k, now, reason, now)
}

func (s *Simulator) revokeAtLocked(k *apiKey, at time.Time, reason string, now time.Time) {
	k.status = laki.StatusRevoked
	k.revokedAt = timePtr(at)
	if reason == "expired" {
		k.expiresAt = timePtr(at)
	}
	s.log.Info("lakisim: key revoked", "key_id", k.id, "environment", k.env, "reason", reason)
	s.emitLocked(k.env, k.merchant, laki.EventAPIKeyRevoked, lakiconnect.APIKeyRevokedData{KeyID: k.id, Reason: reason}, now)
}

// emitLocked records an event and starts its deliveries to every endpoint
// of the merchant and environment that takes its type.
func (s *Simulator) emitLocked(env laki.Environment, merchant, eventType string, data any, now time.Time) lakiconnect.Event {
	raw, err := json.Marshal(data)
	if err != nil {
		// The data types are the package's own plain structs.
		panic(fmt.Sprintf("lakisim: marshal %s data: %v", eventType, err))
	}
	id := laki.EventIDPrefix + randomAlnum(laki.ResourceIDLength)
	ev := lakiconnect.Event{
		ID:               id,
		Object:           "event",
		Type:             eventType,
		Created:          now.Unix(),
		MasterMerchantID: merchant,
		Environment:      env,
		IdempotencyKey:   "idem_" + id,
		Data:             raw,
	}
	s.events = append(s.events, ev)
	body, _ := json.Marshal(ev)
	if s.closed {
		return ev
	}
	for _, ep := range s.sortedEndpointsLocked(env, merchant) {
		if !ep.enabled(eventType) {
			continue
		}
		s.wg.Add(1)
		go s.deliver(ev, body, ep.id, ep.url)
	}
	return ev
}
