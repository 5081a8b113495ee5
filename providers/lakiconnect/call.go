// One call to the API: its arguments checked, the per-key wait, the
// attempts with retries and backoff, the error answers decoded.

package lakiconnect

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// call is one API operation.
type call struct {
	method string
	route  string // template, for logs and OnRequest
	path   string // escaped path below the base URL
	query  url.Values
	body   any // nil: no body
	// idemKey is the Idempotency-Key; empty means none (and then a POST is never retried).
	idemKey string
	// replayed, when set, receives whether the successful answer carried
	// Idempotent-Replayed: true.
	replayed *bool
}

func (c *call) retryable() bool {
	return c.method == http.MethodGet || c.idemKey != ""
}

func checkIdempotencyKey(k string, required bool) error {
	if k == "" {
		if required {
			return errors.New("lakiconnect: an idempotency key is required for this request; nothing was sent")
		}
		return nil
	}
	if len(k) > maxIdempotencyKeyLength {
		return fmt.Errorf("lakiconnect: idempotency key is %d bytes, longer than %d; nothing was sent", len(k), maxIdempotencyKeyLength)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return fmt.Errorf("lakiconnect: idempotency key has a non-printable or non-ASCII byte at offset %d; nothing was sent", i)
		}
	}
	return nil
}

func checkID(field, id string) error {
	if id == "" {
		return fmt.Errorf("lakiconnect: %s is empty; nothing was sent", field)
	}
	return nil
}

// do runs a call with retries and decodes a 2xx body into out (when non-nil).
func (c *Client) do(ctx context.Context, cl call, out any) error {
	key, err := c.callKey(ctx)
	if err == nil {
		err = checkKey(key)
	}
	if err != nil {
		return fmt.Errorf("lakiconnect: %s %s: %w; nothing was sent", cl.method, cl.route, err)
	}
	var payload []byte
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("lakiconnect: %s %s: encoding request: %w", cl.method, cl.route, err)
		}
		payload = b
	}
	attempts := 1
	if cl.retryable() {
		attempts += c.maxRetries
	}
	var lastErr error
	for n := 0; n < attempts; n++ {
		if err := ctx.Err(); err != nil {
			return c.giveUp(cl, n, lastErr, err)
		}
		if err := c.pace.wait(ctx); err != nil {
			return c.giveUp(cl, n, lastErr, err)
		}
		err := c.attempt(ctx, cl, key, payload, out, n+1)
		if err == nil {
			return nil
		}
		lastErr = err
		wait, retry := c.retryDelay(ctx, err, n)
		if !retry || n+1 >= attempts {
			break
		}
		c.log.WarnContext(ctx, "lakiconnect: retrying",
			"method", cl.method, "route", cl.route, "attempt", n+1, "wait", wait, "error", err)
		if err := c.sleep(ctx, wait); err != nil {
			return c.giveUp(cl, n+1, lastErr, err)
		}
	}
	if attempts > 1 && isRetryableErr(ctx, lastErr) {
		return fmt.Errorf("lakiconnect: %s %s: giving up after %d attempts: %w", cl.method, cl.route, attempts, lastErr)
	}
	return lastErr
}

func (c *Client) giveUp(cl call, tried int, lastErr, ctxErr error) error {
	if lastErr == nil {
		return fmt.Errorf("lakiconnect: %s %s: %w", cl.method, cl.route, ctxErr)
	}
	return fmt.Errorf("lakiconnect: %s %s: stopped after %d attempt(s) (%w); last error: %w", cl.method, cl.route, tried, ctxErr, lastErr)
}

// isRetryableErr says whether err is worth another attempt: 429, 5xx, or a
// transport failure (refused or dropped connection, per-attempt timeout) while
// the caller's context is still live.
func isRetryableErr(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode >= 500
	}
	var te *transportError
	return errors.As(err, &te)
}

func (c *Client) retryDelay(ctx context.Context, err error, n int) (time.Duration, bool) {
	if !isRetryableErr(ctx, err) {
		return 0, false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests && apiErr.RetryAfter > 0 {
		return min(apiErr.RetryAfter, maxRetryAfter), true
	}
	return backoff(n), true
}

// backoff is full jitter over a capped exponential: uniform in [0, min(cap, base*2^n)].
func backoff(n int) time.Duration {
	ceiling := backoffCap
	if n < 16 {
		ceiling = min(backoffCap, backoffBase<<n)
	}
	return rand.N(ceiling + 1)
}

// transportError is a failure with no HTTP answer (or an unreadable one).
type transportError struct {
	method, route string
	err           error
}

func (e *transportError) Error() string {
	return fmt.Sprintf("lakiconnect: %s %s: %v", e.method, e.route, e.err)
}
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) attempt(ctx context.Context, cl call, key secret.Value, payload []byte, out any, n int) (err error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	status := 0
	var reqID string
	replayed := false
	defer func() {
		if c.onRequest != nil {
			c.onRequest(cl.method, cl.route, status, err)
		}
		c.log.DebugContext(ctx, "lakiconnect: request",
			"method", cl.method, "route", cl.route, "attempt", n, "status", status,
			"request_id", reqID, "idempotent_replayed", replayed,
			"duration", time.Since(start), "error", err)
	}()

	// cl.path is already escaped segment by segment (ids go through url.PathEscape).
	u := *c.base
	u.RawPath = c.base.EscapedPath() + cl.path
	if u.Path, err = url.PathUnescape(u.RawPath); err != nil {
		return fmt.Errorf("lakiconnect: %s %s: bad path: %w", cl.method, cl.route, err)
	}
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u.String(), body)
	if err != nil {
		return fmt.Errorf("lakiconnect: %s %s: building request: %w", cl.method, cl.route, err)
	}
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.idemKey != "" {
		req.Header.Set(IdempotencyKeyHeader, cl.idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return &transportError{method: cl.method, route: cl.route, err: unwrapURLError(err)}
	}
	defer resp.Body.Close()
	status = resp.StatusCode
	reqID = resp.Header.Get(RequestIDHeader)
	replayed = resp.Header.Get(IdempotentReplayedHeader) == "true"
	raw, err := readLimited(resp.Body)
	if err != nil {
		return &transportError{method: cl.method, route: cl.route, err: fmt.Errorf("reading %d response: %w", status, err)}
	}
	if status < 200 || status > 299 {
		return decodeAPIError(resp, raw)
	}
	if cl.replayed != nil {
		*cl.replayed = replayed
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// The JSON error names a type or offset, never the response text.
		return fmt.Errorf("lakiconnect: %s %s: decoding %d response [request %s]: %w", cl.method, cl.route, status, reqID, err)
	}
	return nil
}

// unwrapURLError drops *url.Error's "Get <url>:" prefix (we say method and
// route ourselves) but keeps the cause for errors.Is.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func readLimited(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxResponseBytes {
		return nil, fmt.Errorf("response body exceeds %d bytes", MaxResponseBytes)
	}
	return raw, nil
}

func decodeAPIError(resp *http.Response, raw []byte) error {
	e := &APIError{StatusCode: resp.StatusCode, RequestID: resp.Header.Get(RequestIDHeader)}
	var eb ErrorBody
	if err := json.Unmarshal(raw, &eb); err == nil && (eb.Error.Type != "" || eb.Error.Code != "" || eb.Error.Message != "") {
		e.Type, e.Code, e.Message = eb.Error.Type, eb.Error.Code, eb.Error.Message
		if eb.Error.Param != nil {
			e.Param = *eb.Error.Param
		}
	} else {
		// Not the API's error schema (a proxy, a load balancer): keep the
		// status, never the body, which could echo anything.
		e.Message = fmt.Sprintf("%s (response is not a LakiConnect error body: %d bytes of %q)",
			http.StatusText(resp.StatusCode), len(raw), resp.Header.Get("Content-Type"))
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	}
	return e
}

// parseRetryAfter reads delta-seconds, the form the API sends; anything else
// gives zero and the client falls back to its own backoff.
func parseRetryAfter(v string) time.Duration {
	secs, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || secs < 0 {
		return 0
	}
	if secs > int(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(secs) * time.Second
}
