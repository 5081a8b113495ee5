package lakisim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
	"github.com/lakirotator/lakirotator/providers/lakiconnect/webhooksig"
)

type route struct {
	method  string
	pattern []string // "*" matches one path segment, which becomes a param
	scope   laki.Scope
	op      func(*Simulator, *call) response
}

// apiRoutes: each endpoint with the scope its summary in openapi.yaml names.
func apiRoutes() []route {
	return []route{
		{http.MethodGet, []string{"whoami"}, "", (*Simulator).whoAmI},
		{http.MethodGet, []string{"api_keys"}, laki.ScopeAPIKeysRead, (*Simulator).listKeys},
		{http.MethodPost, []string{"api_keys"}, laki.ScopeAPIKeysWrite, (*Simulator).createKey},
		{http.MethodGet, []string{"api_keys", "*"}, laki.ScopeAPIKeysRead, (*Simulator).getKey},
		{http.MethodPost, []string{"api_keys", "*", "expire"}, laki.ScopeAPIKeysWrite, (*Simulator).expireKey},
		{http.MethodPost, []string{"api_keys", "*", "revoke"}, laki.ScopeAPIKeysWrite, (*Simulator).revokeKey},
		{http.MethodGet, []string{"webhook_endpoints"}, laki.ScopeWebhooksRead, (*Simulator).listEndpoints},
		{http.MethodGet, []string{"webhook_endpoints", "*"}, laki.ScopeWebhooksRead, (*Simulator).getEndpoint},
		{http.MethodPost, []string{"webhook_endpoints", "*", "secrets"}, laki.ScopeWebhooksWrite, (*Simulator).createSecret},
		{http.MethodPost, []string{"webhook_endpoints", "*", "secrets", "*", "expire"}, laki.ScopeWebhooksWrite, (*Simulator).expireSecret},
		{http.MethodPost, []string{"webhook_endpoints", "*", "test_signature"}, laki.ScopeWebhooksWrite, (*Simulator).testSignature},
		{http.MethodGet, []string{"security", "auth_failures"}, laki.ScopeAPIKeysRead, (*Simulator).listAuthFailures},
	}
}

// matchRoute finds the route of method and path; methodOK reports that the
// path exists with another method.
func matchRoute(routes []route, method, path string) (rt *route, params []string, methodOK bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range routes {
		p, ok := matchSegments(routes[i].pattern, segs)
		if !ok {
			continue
		}
		if routes[i].method == method {
			return &routes[i], p, false
		}
		methodOK = true
	}
	return nil, nil, methodOK
}

func matchSegments(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range pattern {
		switch {
		case p == "*" && segs[i] != "":
			params = append(params, segs[i])
		case p != segs[i]:
			return nil, false
		}
	}
	return params, true
}

func (s *Simulator) whoAmI(c *call) response {
	return jsonResponse(http.StatusOK, laki.WhoAmI{
		KeyID: c.key.id, Environment: c.key.env, MasterMerchantID: c.key.merchant,
		Scopes: slices.Clone(c.key.scopes), Status: c.key.status, ExpiresAt: c.key.expiresAt,
	})
}

func (s *Simulator) listKeys(c *call) response {
	status := laki.KeyStatus(c.query.Get("status"))
	if c.query.Has("status") && status != laki.StatusActive && status != laki.StatusExpiring && status != laki.StatusRevoked {
		return badRequest("status", "status must be active, expiring or revoked, got %q", status)
	}
	var all []*apiKey
	for _, k := range s.sortedKeysLocked(c.env, c.key.merchant) {
		if status == "" || k.status == status {
			all = append(all, k)
		}
	}
	page, more, bad := paginate(c, all, func(k *apiKey) string { return k.id })
	if bad != nil {
		return *bad
	}
	out := lakiconnect.List[laki.APIKey]{Data: []laki.APIKey{}, HasMore: more}
	for _, k := range page {
		out.Data = append(out.Data, k.view())
	}
	return jsonResponse(http.StatusOK, out)
}

// paginate applies limit and starting_after to items already ordered by
// created_at, id.
func paginate[T any](c *call, items []T, id func(T) string) ([]T, bool, *response) {
	limit := laki.DefaultPageLimit
	if c.query.Has("limit") {
		n, err := strconv.Atoi(c.query.Get("limit"))
		if err != nil || n < 1 || n > laki.MaxPageLimit {
			r := badRequest("limit", "limit must be an integer from 1 to %d, got %q", laki.MaxPageLimit, c.query.Get("limit"))
			return nil, false, &r
		}
		limit = n
	}
	if c.query.Has("starting_after") {
		after := c.query.Get("starting_after")
		i := slices.IndexFunc(items, func(t T) bool { return id(t) == after })
		if i < 0 {
			r := badRequest("starting_after", "starting_after %q is not an object of this list", after)
			return nil, false, &r
		}
		items = items[i+1:]
	}
	if len(items) > limit {
		return items[:limit], true, nil
	}
	return items, false, nil
}

// createKeyResponse is the create answer: the one place a secret is written
// in plain text, which laki.APIKeyWithSecret (redacting) cannot do.
type createKeyResponse struct {
	laki.APIKey
	Secret string `json:"secret"`
}

type createKeyBody struct {
	Name      *string           `json:"name"`
	Scopes    []laki.Scope      `json:"scopes"`
	ExpiresAt *time.Time        `json:"expires_at"`
	Metadata  map[string]string `json:"metadata"`
}

func (s *Simulator) createKey(c *call) response {
	var req createKeyBody
	if err := decodeStrict(c.body, &req); err != nil {
		return badRequest("", "invalid JSON body: %v", err)
	}
	if req.Name == nil {
		return badRequest("name", "name is required")
	}
	if n := utf8.RuneCountInString(*req.Name); n < 1 || n > 100 {
		return badRequest("name", "name must be 1-100 characters, got %d", n)
	}
	if req.Scopes == nil {
		return badRequest("scopes", "scopes is required")
	}
	if err := checkScopes(req.Scopes); err != nil {
		return badRequest("scopes", "%v", err)
	}
	var expiresAt *time.Time
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.UTC()
		if !t.After(c.now) || t.After(c.now.Add(laki.MaxCreateExpiresAhead)) {
			return badRequest("expires_at", "expires_at must be after now and at most 400 days ahead (now is %s)", c.now.Format(time.RFC3339))
		}
		expiresAt = &t
	}
	if len(req.Metadata) > 20 {
		return badRequest("metadata", "metadata may hold at most 20 properties, got %d", len(req.Metadata))
	}
	for k, v := range req.Metadata {
		if utf8.RuneCountInString(v) > 500 {
			return badRequest("metadata["+k+"]", "metadata values may be at most 500 characters")
		}
	}
	for _, sc := range req.Scopes {
		if !c.key.has(sc) {
			return errorResponse(http.StatusForbidden, lakiconnect.ErrTypePermission, lakiconnect.CodeScopeEscalation,
				fmt.Sprintf("a key may grant only scopes it holds; this key lacks %s", sc), "scopes")
		}
	}
	if s.liveKeyCountLocked(c.env, c.key.merchant) >= laki.MaxKeysPerMerchant {
		return conflict(lakiconnect.CodeKeyLimitReached, fmt.Sprintf("at most %d keys that are not revoked per master merchant and environment", laki.MaxKeysPerMerchant))
	}
	var metadata map[string]string
	if len(req.Metadata) > 0 {
		metadata = req.Metadata
	}
	creator := c.key.id
	k := s.newKeyLocked(c.env, c.key.merchant, *req.Name, req.Scopes, expiresAt, &creator, metadata, c.now)
	return jsonResponse(http.StatusCreated, createKeyResponse{APIKey: k.view(), Secret: k.secret.Reveal()})
}

func (s *Simulator) keyOf(c *call) (*apiKey, *response) {
	k, ok := s.keys[c.params[0]]
	if !ok || k.env != c.env || k.merchant != c.key.merchant {
		r := notFound("api key", c.params[0])
		return nil, &r
	}
	return k, nil
}

func (s *Simulator) getKey(c *call) response {
	k, bad := s.keyOf(c)
	if bad != nil {
		return *bad
	}
	return jsonResponse(http.StatusOK, k.view())
}

// expireAt reads an expire body: expires_at within [now, now+7d]; absent,
// null or an empty body mean now.
func expireAt(c *call) (time.Time, *response) {
	var req struct {
		ExpiresAt *time.Time `json:"expires_at"`
	}
	if len(strings.TrimSpace(string(c.body))) > 0 {
		if err := decodeStrict(c.body, &req); err != nil {
			r := badRequest("", "invalid JSON body: %v", err)
			return time.Time{}, &r
		}
	}
	if req.ExpiresAt == nil {
		return c.now, nil
	}
	t := req.ExpiresAt.UTC()
	if t.Before(c.now) || t.After(c.now.Add(laki.MaxExpireDelay)) {
		r := badRequest("expires_at", "expires_at must be between now (%s) and 7 days ahead", c.now.Format(time.RFC3339))
		return time.Time{}, &r
	}
	return t, nil
}

func (s *Simulator) expireKey(c *call) response {
	k, bad := s.keyOf(c)
	if bad != nil {
		return *bad
	}
	at, bad := expireAt(c)
	if bad != nil {
		return *bad
	}
	if k.status == laki.StatusRevoked {
		return conflict(lakiconnect.CodeKeyRevoked, fmt.Sprintf("key %s is already revoked", k.id))
	}
	if !at.After(c.now) {
		s.revokeAtLocked(k, c.now, "expired", c.now)
		return jsonResponse(http.StatusOK, k.view())
	}
	k.status = laki.StatusExpiring
	k.expiresAt = timePtr(at)
	s.refreshLocked(c.now) // expiring_soon for the new date
	return jsonResponse(http.StatusOK, k.view())
}

func (s *Simulator) revokeKey(c *call) response {
	k, bad := s.keyOf(c)
	if bad != nil {
		return *bad
	}
	if k.status != laki.StatusRevoked {
		s.revokeLocked(k, c.now, "revoked_by_api")
	}
	return jsonResponse(http.StatusOK, k.view())
}

func (s *Simulator) listEndpoints(c *call) response {
	page, more, bad := paginate(c, s.sortedEndpointsLocked(c.env, c.key.merchant), func(ep *endpoint) string { return ep.id })
	if bad != nil {
		return *bad
	}
	out := lakiconnect.List[laki.WebhookEndpoint]{Data: []laki.WebhookEndpoint{}, HasMore: more}
	for _, ep := range page {
		out.Data = append(out.Data, ep.view())
	}
	return jsonResponse(http.StatusOK, out)
}

func (s *Simulator) endpointOf(c *call) (*endpoint, *response) {
	ep, ok := s.endpoints[c.params[0]]
	if !ok || ep.env != c.env || ep.merchant != c.key.merchant {
		r := notFound("webhook endpoint", c.params[0])
		return nil, &r
	}
	return ep, nil
}

func (s *Simulator) getEndpoint(c *call) response {
	ep, bad := s.endpointOf(c)
	if bad != nil {
		return *bad
	}
	return jsonResponse(http.StatusOK, ep.view())
}

type createSecretResponse struct {
	laki.WebhookSecretInfo
	EndpointID string `json:"endpoint_id"`
	Secret     string `json:"secret"`
}

func (s *Simulator) createSecret(c *call) response {
	ep, bad := s.endpointOf(c)
	if bad != nil {
		return *bad
	}
	if strings.TrimSpace(string(c.body)) != "" {
		var empty struct{}
		if err := decodeStrict(c.body, &empty); err != nil {
			return badRequest("", "this endpoint takes no body fields: %v", err)
		}
	}
	if ep.liveSecrets() >= laki.MaxLiveSecretsPerEndpoint {
		return conflict(lakiconnect.CodeTooManySecrets, fmt.Sprintf("endpoint %s already has %d secrets that are not revoked; expire one first", ep.id, laki.MaxLiveSecretsPerEndpoint))
	}
	ws := ep.addSecret(c.now)
	return jsonResponse(http.StatusCreated, createSecretResponse{WebhookSecretInfo: ws.info(), EndpointID: ep.id, Secret: ws.value.Reveal()})
}

func (s *Simulator) expireSecret(c *call) response {
	ep, bad := s.endpointOf(c)
	if bad != nil {
		return *bad
	}
	i := slices.IndexFunc(ep.secrets, func(ws *webhookSecret) bool { return ws.id == c.params[1] })
	if i < 0 {
		return notFound("webhook secret", c.params[1])
	}
	ws := ep.secrets[i]
	at, bad := expireAt(c)
	if bad != nil {
		return *bad
	}
	if ws.status == laki.StatusRevoked {
		return conflict(lakiconnect.CodeKeyRevoked, fmt.Sprintf("webhook secret %s is already revoked", ws.id))
	}
	othersActive := 0
	for _, o := range ep.secrets {
		if o != ws && o.status == laki.StatusActive {
			othersActive++
		}
	}
	if othersActive == 0 {
		return conflict(lakiconnect.CodeLastSecret, fmt.Sprintf("webhook secret %s is the endpoint's last secret that is not ending; create another first", ws.id))
	}
	if at.After(c.now) {
		ws.status = laki.StatusExpiring
	} else {
		ws.status = laki.StatusRevoked
	}
	ws.expiresAt = timePtr(at)
	return jsonResponse(http.StatusOK, ep.view())
}

func (s *Simulator) testSignature(c *call) response {
	ep, bad := s.endpointOf(c)
	if bad != nil {
		return *bad
	}
	id := laki.EventIDPrefix + randomAlnum(laki.ResourceIDLength)
	payload, err := json.Marshal(lakiconnect.Event{
		ID: id, Object: "event", Type: laki.EventTestPing, Created: c.now.Unix(),
		MasterMerchantID: ep.merchant, Environment: ep.env, IdempotencyKey: "idem_" + id, Data: json.RawMessage(`{}`),
	})
	if err != nil {
		return errorResponse(http.StatusInternalServerError, lakiconnect.ErrTypeAPI, lakiconnect.CodeInternal, "encoding the sample failed", "")
	}
	return jsonResponse(http.StatusOK, laki.TestSignature{
		Payload:         string(payload),
		SignatureHeader: webhooksig.Sign(c.now, payload, ep.signingSecrets(c.now)...),
	})
}
