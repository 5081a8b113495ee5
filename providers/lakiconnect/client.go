package lakiconnect

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/endpoint"
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
	// RateLimit is the most requests per second the client sends for one
	// management key (every attempt counts; LakiConnect allows
	// laki.RateLimitPerKeyPerSecond), and RateBurst their burst (default
	// DefaultRateBurst); 0 sends without waiting. WithAPIKey copies share the
	// limit; each client of Merchants has its own.
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
	paceCfg    paceConfig
	pace       *pace
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
		paceCfg:    paceConfig{perSecond: cfg.RateLimit, burst: cfg.RateBurst, clock: cfg.Clock},
	}
	c.pace = c.paceCfg.newPace()
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
	u, err := endpoint.Parse(raw)
	if err != nil {
		// %q of the redacted form: a refused URL may still carry user:password@.
		return nil, fmt.Errorf("lakiconnect: config BaseURL %q: %w", redacted(raw), err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("lakiconnect: config BaseURL %q must not carry user info, a query or a fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// redacted is raw with any password masked, or raw itself when it does not parse.
func redacted(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
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
