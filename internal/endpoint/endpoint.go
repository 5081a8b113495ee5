// Package endpoint holds the one rule for where the project sends a
// request: https anywhere, plain http only to a loopback host (tests, the
// simulator, the local demo). Every client and the config loader check
// their URLs through it, so the rule cannot drift between them.
package endpoint

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// Why a URL is refused. The texts never quote the URL, which may itself be a
// secret (a Slack incoming webhook); callers wrap them with the name of the
// field, flag or secret, as in fmt.Errorf("vault address %q: %w", ...).
var (
	ErrNotURL    = errors.New("not a valid URL")
	ErrNoHost    = errors.New("URL needs a host, as in https://host/path")
	ErrPlainHTTP = errors.New("http:// is allowed only to loopback (localhost, 127.0.0.1, ::1); use https://")
	ErrScheme    = errors.New("URL must start with https:// (or http:// to loopback)")
)

// Parse parses raw and returns it when it has a host and is https, or http
// to a loopback host. What else a caller forbids (credentials, a query, a
// fragment) it checks on the URL it gets back.
func Parse(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, ErrNotURL
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, ErrNoHost
	}
	switch u.Scheme { // url.Parse lower-cases the scheme
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return nil, ErrPlainHTTP
		}
	default:
		return nil, ErrScheme
	}
	return u, nil
}

// IsLoopbackHost reports whether host (a URL's Hostname, without port or
// brackets) is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
