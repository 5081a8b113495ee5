package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/lakirotator/lakirotator/internal/endpoint"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/trigger"
)

// Client talks to a running daemon's API (the CLI's verbs use it).
type Client struct {
	base  *url.URL
	token secret.Value
	http  *http.Client
}

// NewClient returns a client for the daemon at baseURL (https://, or http://
// to a loopback address only).
func NewClient(baseURL string, token secret.Value, tlsConfig *tls.Config) (*Client, error) {
	u, err := endpoint.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("daemon URL %q: %w", baseURL, err)
	}
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig = tlsConfig.Clone()
	if tlsConfig.MinVersion < tls.VersionTLS12 {
		tlsConfig.MinVersion = tls.VersionTLS12
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsConfig
	return &Client{base: u, token: token, http: &http.Client{Transport: tr, Timeout: 30 * time.Second, CheckRedirect: sameOrigin}}, nil
}

// sameOrigin refuses a redirect that changes scheme or host (port
// included): the bearer token would follow it, in the clear after an
// https→http redirect. Go's client strips Authorization only when the host
// name changes, not the scheme or the port.
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		return fmt.Errorf("refusing the daemon's redirect from %s://%s to %s://%s: a redirect may not change scheme or host, so the API token is not sent there",
			from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// Trigger asks the daemon for rotations.
func (c *Client) Trigger(ctx context.Context, req TriggerRequest) (TriggerStatus, error) {
	var st TriggerStatus
	err := c.do(ctx, http.MethodPost, "/v1/triggers", req, &st)
	return st, err
}

// TriggerStatus reads a trigger's progress.
func (c *Client) TriggerStatus(ctx context.Context, id string) (TriggerStatus, error) {
	var st TriggerStatus
	err := c.do(ctx, http.MethodGet, "/v1/triggers/"+url.PathEscape(id), nil, &st)
	return st, err
}

// Inventory lists the managed secrets.
func (c *Client) Inventory(ctx context.Context) (Inventory, error) {
	var inv Inventory
	err := c.do(ctx, http.MethodGet, "/v1/inventory", nil, &inv)
	return inv, err
}

// Wait polls a trigger until it has finished, calling progress on each change.
func (c *Client) Wait(ctx context.Context, id string, every time.Duration, progress func(TriggerStatus)) (TriggerStatus, error) {
	return trigger.Follow(ctx, every, func(ctx context.Context) (TriggerStatus, error) { return c.TriggerStatus(ctx, id) }, progress)
}

// APIError is an error answer from the daemon.
type APIError struct {
	StatusCode int
	Message    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("daemon answered %d: %s", e.StatusCode, e.Message)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.JoinPath(path).String(), body)
	if err != nil {
		return err
	}
	if !c.token.IsZero() {
		req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = http.StatusText(resp.StatusCode)
		}
		return &APIError{StatusCode: resp.StatusCode, Message: eb.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: answer is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}
