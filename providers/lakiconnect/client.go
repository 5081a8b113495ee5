package lakiconnect

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// Defaults and limits of the client.
const (
	DefaultTimeout    = 10 * time.Second
	DefaultMaxRetries = 4
	// MaxResponseBytes bounds every response body the client reads: a full
	// page of 100 keys with the most metadata the API allows is about 1 MiB.
	MaxResponseBytes = 4 << 20
	// backoffBase and backoffCap shape the capped exponential backoff
	// (full jitter: a uniform pick in [0, min(cap, base*2^n))).
	backoffBase = 250 * time.Millisecond
	backoffCap  = 8 * time.Second
	// maxRetryAfter caps a server's Retry-After, so a wrong header cannot park a rotation.
	maxRetryAfter           = 60 * time.Second
	maxIdempotencyKeyLength = 255
	userAgent               = "lakirotator"
)

// Config configures a Client.
type Config struct {
	// BaseURL is the environment's base URL, ending in /v1, e.g.
	// https://sandbox.api.lakiconnect.example/v1. http:// is accepted only for
	// loopback hosts (127.0.0.0/8, ::1, localhost).
	BaseURL string
	// APIKey is the bearer key. It goes into the Authorization header and nowhere else.
	APIKey secret.Value
	// Timeout bounds one attempt (request and reading the body); default 10s.
	Timeout time.Duration
	// MaxRetries is how many times a retryable request is tried again after
	// the first attempt; 0 means DefaultMaxRetries, negative means none.
	MaxRetries int
	// Logger receives debug lines per attempt and warnings per retry; nil discards.
	Logger *slog.Logger
	// Transport replaces the default transport (tests). For https base URLs it
	// must be an *http.Transport: the client clones it, refuses it if it skips
	// certificate verification, allows TLS below 1.2 or brings its own TLS
	// dialer, and forces MinVersion TLS 1.2 on the clone. Any other
	// RoundTripper is accepted only for http:// loopback base URLs.
	Transport http.RoundTripper
	// RootCAs, when set, replaces the system roots (tests trusting an
	// httptest.NewTLSServer certificate).
	RootCAs *x509.CertPool
	// Sleep waits between attempts; nil means a timer that honours ctx. Tests
	// inject one to observe the backoff without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnRequest is called after every attempt with the method, the route
	// template (e.g. "/api_keys/{key_id}", bounded for metric labels), the
	// HTTP status (0 when no response arrived) and the attempt's error.
	OnRequest func(method, path string, status int, err error)
	// RateLimit is the most requests per second the client sends with one
	// key (every attempt counts; LakiConnect allows
	// laki.RateLimitPerKeyPerSecond), and RateBurst their burst (default
	// DefaultRateBurst); 0 sends without waiting.
	RateLimit float64
	RateBurst int
	// Clock is what the rate limit waits on (default the real clock:
	// LakiConnect counts in real time).
	Clock clock.Clock
}

// Client calls LakiConnect's Management API. It is safe for concurrent use.
type Client struct {
	base       *url.URL
	key        secret.Value
	http       *http.Client
	timeout    time.Duration
	maxRetries int
	log        *slog.Logger
	sleep      func(ctx context.Context, d time.Duration) error
	onRequest  func(method, path string, status int, err error)
	limits     *keyLimits
	// keys, when set, gives the key before every call instead of key.
	keys KeySource
}

// NewClient validates cfg and returns a client. Errors name the offending field.
func NewClient(cfg Config) (*Client, error) {
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if err := checkKey(cfg.APIKey); err != nil {
		return nil, err
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("lakiconnect: config Timeout is negative (%s)", cfg.Timeout)
	}
	rt, err := buildTransport(cfg.Transport, cfg.RootCAs, base)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base: base,
		key:  cfg.APIKey,
		http: &http.Client{
			Transport: rt,
			// A redirect could move the bearer key to another origin or to
			// plain http; the API never redirects, so a 3xx is an error.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout:    cfg.Timeout,
		maxRetries: cfg.MaxRetries,
		log:        cfg.Logger,
		sleep:      cfg.Sleep,
		onRequest:  cfg.OnRequest,
		limits:     newKeyLimits(cfg.RateLimit, cfg.RateBurst, cfg.Clock),
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.sleep == nil {
		c.sleep = sleepCtx
	}
	return c, nil
}

// WithAPIKey returns a client with the same settings and connection pool that
// authenticates with key instead (the engine proves a new key with it). An
// unusable key makes every call fail before anything is sent.
func (c *Client) WithAPIKey(key secret.Value) *Client {
	cp := *c
	cp.key, cp.keys = key, nil
	return &cp
}

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
// that reads its key from keys before every call.
func (c *Client) WithKeySource(keys KeySource) *Client {
	cp := *c
	cp.keys = keys
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

func checkKey(k secret.Value) error {
	if k.IsZero() {
		return errors.New("lakiconnect: config APIKey is empty")
	}
	for _, r := range k.Reveal() {
		if r <= ' ' || r >= 0x7f {
			return errors.New("lakiconnect: APIKey contains whitespace, control or non-ASCII characters")
		}
	}
	return nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("lakiconnect: config BaseURL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("lakiconnect: config BaseURL %q: %w", raw, err)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("lakiconnect: config BaseURL %q has no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("lakiconnect: config BaseURL %q must not carry user info, a query or a fragment", u.Redacted())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("lakiconnect: config BaseURL %q: plain http is allowed only to loopback hosts; use https", raw)
		}
	default:
		return nil, fmt.Errorf("lakiconnect: config BaseURL %q: scheme must be https", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// buildTransport returns a transport that speaks TLS 1.2+ with verification
// on, whatever the caller passed.
func buildTransport(given http.RoundTripper, roots *x509.CertPool, base *url.URL) (http.RoundTripper, error) {
	var t *http.Transport
	switch g := given.(type) {
	case nil:
		t = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		//lint:ignore SA1019 the deprecated DialTLS is checked so that it cannot bypass the client's TLS settings
		if g.DialTLSContext != nil || g.DialTLS != nil {
			return nil, errors.New("lakiconnect: config Transport has a custom TLS dialer, which would bypass the client's TLS settings")
		}
		if tc := g.TLSClientConfig; tc != nil {
			if tc.InsecureSkipVerify {
				return nil, errors.New("lakiconnect: config Transport skips TLS certificate verification; refused")
			}
			if tc.MinVersion != 0 && tc.MinVersion < tls.VersionTLS12 {
				return nil, fmt.Errorf("lakiconnect: config Transport allows TLS below 1.2 (MinVersion %s); refused", tls.VersionName(tc.MinVersion))
			}
			if tc.VerifyPeerCertificate != nil || tc.VerifyConnection != nil {
				return nil, errors.New("lakiconnect: config Transport replaces TLS certificate verification; refused")
			}
		}
		t = g.Clone()
	default:
		if base.Scheme != "http" {
			return nil, fmt.Errorf("lakiconnect: config Transport %T cannot be checked for TLS settings; only *http.Transport is accepted for https base URLs", given)
		}
		return given, nil
	}
	tc := t.TLSClientConfig
	if tc == nil {
		tc = &tls.Config{}
	} else {
		tc = tc.Clone()
	}
	tc.InsecureSkipVerify = false
	if tc.MinVersion < tls.VersionTLS12 {
		tc.MinVersion = tls.VersionTLS12
	}
	if roots != nil {
		tc.RootCAs = roots
	}
	t.TLSClientConfig = tc
	t.ForceAttemptHTTP2 = true
	return t, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// call is one API operation.
type call struct {
	method string
	route  string // template, for logs and OnRequest
	path   string // escaped path below the base URL
	query  url.Values
	body   any // nil: no body
	// idemKey is the Idempotency-Key; empty means none (and then a POST is never retried).
	idemKey string
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
		if err := c.limits.wait(ctx, key); err != nil {
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
