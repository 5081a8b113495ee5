package config

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// CheckURL accepts https:// URLs, and http:// only to a loopback host
// (tests, the local demo). Its errors never quote the URL, so it is safe on
// URLs that are themselves secrets (a Slack incoming webhook).
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.User != nil {
		return errors.New("URL must not hold credentials (user:password@); use a secret reference")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("URL needs a host, as in https://host/path")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !IsLoopbackHost(u.Hostname()) {
			return errors.New("http:// is allowed only to loopback (localhost, 127.0.0.1, ::1); use https://")
		}
	default:
		return errors.New("URL must start with https:// (or http:// to loopback)")
	}
	if u.Fragment != "" {
		return errors.New("URL must not have a #fragment")
	}
	return nil
}

// IsLoopbackHost reports whether host is localhost or a loopback IP.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
