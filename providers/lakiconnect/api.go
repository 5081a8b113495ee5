package lakiconnect

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
)

// WhoAmI describes the calling key (GET /whoami).
func (c *Client) WhoAmI(ctx context.Context) (laki.WhoAmI, error) {
	var out laki.WhoAmI
	err := c.do(ctx, call{method: http.MethodGet, route: "/whoami", path: "/whoami"}, &out)
	return out, err
}

// WhoAmIWith describes another key than the client's own (GET /whoami
// called with key): how a new key is proved before it is promoted.
func (c *Client) WhoAmIWith(ctx context.Context, key secret.Value) (laki.WhoAmI, error) {
	return c.WithAPIKey(key).WhoAmI(ctx)
}

// CreateAPIKey creates a key (POST /api_keys). The idempotency key is
// required: a retry with the same key and request returns the same key and
// secret instead of a second one. The secret is in the answer's Secret only.
func (c *Client) CreateAPIKey(ctx context.Context, idempotencyKey string, req laki.CreateAPIKeyRequest) (laki.APIKeyWithSecret, error) {
	var out laki.APIKeyWithSecret
	if err := checkIdempotencyKey(idempotencyKey, true); err != nil {
		return out, err
	}
	if req.ExpiresAt != nil {
		t := req.ExpiresAt.UTC()
		req.ExpiresAt = &t
	}
	err := c.do(ctx, call{
		method: http.MethodPost, route: "/api_keys", path: "/api_keys",
		body: req, idemKey: idempotencyKey, replayed: &out.Replayed,
	}, &out)
	return out, err
}

// GetAPIKey returns one key without its secret (GET /api_keys/{key_id}).
func (c *Client) GetAPIKey(ctx context.Context, keyID string) (laki.APIKey, error) {
	var out laki.APIKey
	if err := checkID("key id", keyID); err != nil {
		return out, err
	}
	err := c.do(ctx, call{method: http.MethodGet, route: "/api_keys/{key_id}", path: "/api_keys/" + url.PathEscape(keyID)}, &out)
	return out, err
}

// ListAPIKeys walks every page of GET /api_keys, following starting_after.
// An error is yielded once, as the last element.
func (c *Client) ListAPIKeys(ctx context.Context, opts laki.ListAPIKeysOptions) iter.Seq2[laki.APIKey, error] {
	q := url.Values{}
	if opts.Status != "" {
		q.Set("status", string(opts.Status))
	}
	return paginate[laki.APIKey](ctx, c, "/api_keys", q, opts.PageSize, func(k laki.APIKey) string { return k.ID })
}

// ExpireAPIKey schedules the key's end (POST /api_keys/{key_id}/expire); a nil
// expiresAt means now. With an empty idempotencyKey the header is omitted and
// the request is never retried.
func (c *Client) ExpireAPIKey(ctx context.Context, idempotencyKey, keyID string, expiresAt *time.Time) (laki.APIKey, error) {
	var out laki.APIKey
	if err := errors.Join(checkIdempotencyKey(idempotencyKey, false), checkID("key id", keyID)); err != nil {
		return out, err
	}
	err := c.do(ctx, call{
		method: http.MethodPost, route: "/api_keys/{key_id}/expire",
		path: "/api_keys/" + url.PathEscape(keyID) + "/expire",
		body: expireBody(expiresAt), idemKey: idempotencyKey,
	}, &out)
	return out, err
}

// RevokeAPIKey revokes the key at once (POST /api_keys/{key_id}/revoke). With
// an empty idempotencyKey the header is omitted and the request is never retried.
func (c *Client) RevokeAPIKey(ctx context.Context, idempotencyKey, keyID string) (laki.APIKey, error) {
	var out laki.APIKey
	if err := errors.Join(checkIdempotencyKey(idempotencyKey, false), checkID("key id", keyID)); err != nil {
		return out, err
	}
	err := c.do(ctx, call{
		method: http.MethodPost, route: "/api_keys/{key_id}/revoke",
		path:    "/api_keys/" + url.PathEscape(keyID) + "/revoke",
		idemKey: idempotencyKey,
	}, &out)
	return out, err
}

// ListWebhookEndpoints walks every page of GET /webhook_endpoints; pageSize 0 means 100.
func (c *Client) ListWebhookEndpoints(ctx context.Context, pageSize int) iter.Seq2[laki.WebhookEndpoint, error] {
	return paginate[laki.WebhookEndpoint](ctx, c, "/webhook_endpoints", url.Values{}, pageSize, func(e laki.WebhookEndpoint) string { return e.ID })
}

// APIKeys returns every key the calling key can see, all pages.
func (c *Client) APIKeys(ctx context.Context) ([]laki.APIKey, error) {
	return collect(c.ListAPIKeys(ctx, laki.ListAPIKeysOptions{}))
}

// WebhookEndpoints returns every webhook endpoint of the calling key's
// master merchant, all pages.
func (c *Client) WebhookEndpoints(ctx context.Context) ([]laki.WebhookEndpoint, error) {
	return collect(c.ListWebhookEndpoints(ctx, 0))
}

func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// GetWebhookEndpoint returns one endpoint with its secrets' metadata.
func (c *Client) GetWebhookEndpoint(ctx context.Context, endpointID string) (laki.WebhookEndpoint, error) {
	var out laki.WebhookEndpoint
	if err := checkID("endpoint id", endpointID); err != nil {
		return out, err
	}
	err := c.do(ctx, call{
		method: http.MethodGet, route: "/webhook_endpoints/{endpoint_id}",
		path: "/webhook_endpoints/" + url.PathEscape(endpointID),
	}, &out)
	return out, err
}

// CreateWebhookSecret adds a signing secret to the endpoint (POST
// /webhook_endpoints/{endpoint_id}/secrets). The idempotency key is required.
func (c *Client) CreateWebhookSecret(ctx context.Context, idempotencyKey, endpointID string) (laki.WebhookSecretWithValue, error) {
	var out laki.WebhookSecretWithValue
	if err := errors.Join(checkIdempotencyKey(idempotencyKey, true), checkID("endpoint id", endpointID)); err != nil {
		return out, err
	}
	err := c.do(ctx, call{
		method: http.MethodPost, route: "/webhook_endpoints/{endpoint_id}/secrets",
		path:    "/webhook_endpoints/" + url.PathEscape(endpointID) + "/secrets",
		idemKey: idempotencyKey, replayed: &out.Replayed,
	}, &out)
	return out, err
}

// ExpireWebhookSecret stops signing with the secret at expiresAt (nil: now,
// which revokes it) and returns the endpoint after the change. With an empty
// idempotencyKey the header is omitted and the request is never retried.
func (c *Client) ExpireWebhookSecret(ctx context.Context, idempotencyKey, endpointID, secretID string, expiresAt *time.Time) (laki.WebhookEndpoint, error) {
	var out laki.WebhookEndpoint
	if err := errors.Join(checkIdempotencyKey(idempotencyKey, false), checkID("endpoint id", endpointID), checkID("secret id", secretID)); err != nil {
		return out, err
	}
	err := c.do(ctx, call{
		method: http.MethodPost, route: "/webhook_endpoints/{endpoint_id}/secrets/{secret_id}/expire",
		path: "/webhook_endpoints/" + url.PathEscape(endpointID) + "/secrets/" + url.PathEscape(secretID) + "/expire",
		body: expireBody(expiresAt), idemKey: idempotencyKey,
	}, &out)
	return out, err
}

// TestWebhookSignature asks for a signed test.ping sample (POST
// /webhook_endpoints/{endpoint_id}/test_signature); verify it with webhooksig.
// With an empty idempotencyKey the header is omitted and the request is never retried.
func (c *Client) TestWebhookSignature(ctx context.Context, idempotencyKey, endpointID string) (laki.TestSignature, error) {
	var out laki.TestSignature
	if err := errors.Join(checkIdempotencyKey(idempotencyKey, false), checkID("endpoint id", endpointID)); err != nil {
		return out, err
	}
	err := c.do(ctx, call{
		method: http.MethodPost, route: "/webhook_endpoints/{endpoint_id}/test_signature",
		path:    "/webhook_endpoints/" + url.PathEscape(endpointID) + "/test_signature",
		idemKey: idempotencyKey,
	}, &out)
	return out, err
}

// ListAuthFailures returns the 401/403 counts in [since, until) (GET
// /security/auth_failures); a zero until is omitted (up to now).
func (c *Client) ListAuthFailures(ctx context.Context, since, until time.Time) ([]laki.AuthFailureCount, error) {
	if since.IsZero() {
		return nil, errors.New("lakiconnect: ListAuthFailures: since is required; nothing was sent")
	}
	if !until.IsZero() && until.Before(since) {
		return nil, fmt.Errorf("lakiconnect: ListAuthFailures: until %s is before since %s; nothing was sent",
			until.UTC().Format(time.RFC3339), since.UTC().Format(time.RFC3339))
	}
	q := url.Values{}
	q.Set("since", since.UTC().Format(time.RFC3339Nano))
	if !until.IsZero() {
		q.Set("until", until.UTC().Format(time.RFC3339Nano))
	}
	var out struct {
		Data []laki.AuthFailureCount `json:"data"`
	}
	err := c.do(ctx, call{method: http.MethodGet, route: "/security/auth_failures", path: "/security/auth_failures", query: q}, &out)
	if err != nil {
		return nil, err
	}
	return out.Data, nil
}

func expireBody(expiresAt *time.Time) ExpireRequest {
	if expiresAt == nil {
		return ExpireRequest{}
	}
	t := expiresAt.UTC()
	return ExpireRequest{ExpiresAt: &t}
}

// paginate walks a list endpoint page by page until has_more is false, the
// consumer stops, or an error (yielded once, last).
func paginate[T any](ctx context.Context, c *Client, route string, q url.Values, pageSize int, id func(T) string) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if pageSize == 0 {
			pageSize = laki.MaxPageLimit
		}
		if pageSize < 1 || pageSize > laki.MaxPageLimit {
			yield(zero, fmt.Errorf("lakiconnect: GET %s: page size %d outside 1..%d; nothing was sent", route, pageSize, laki.MaxPageLimit))
			return
		}
		after := ""
		for page := 1; ; page++ {
			pq := url.Values{}
			for k, v := range q {
				pq[k] = v
			}
			pq.Set("limit", strconv.Itoa(pageSize))
			if after != "" {
				pq.Set("starting_after", after)
			}
			var list List[T]
			if err := c.do(ctx, call{method: http.MethodGet, route: route, path: route, query: pq}, &list); err != nil {
				yield(zero, fmt.Errorf("lakiconnect: GET %s page %d: %w", route, page, err))
				return
			}
			for _, item := range list.Data {
				if !yield(item, nil) {
					return
				}
			}
			if !list.HasMore {
				return
			}
			if len(list.Data) == 0 {
				yield(zero, fmt.Errorf("lakiconnect: GET %s page %d: has_more is true but the page is empty", route, page))
				return
			}
			next := id(list.Data[len(list.Data)-1])
			if next == "" || next == after {
				yield(zero, fmt.Errorf("lakiconnect: GET %s page %d: cursor did not advance", route, page))
				return
			}
			after = next
		}
	}
}
