package config

import (
	"errors"

	"github.com/lakirotator/lakirotator/internal/endpoint"
)

// CheckURL accepts https:// URLs, and http:// only to a loopback host
// (tests, the local demo). Its errors never quote the URL, so it is safe on
// URLs that are themselves secrets (a Slack incoming webhook).
func CheckURL(raw string) error {
	u, err := endpoint.Parse(raw)
	if err != nil {
		return err
	}
	if u.User != nil {
		return errors.New("URL must not hold credentials (user:password@); use a secret reference")
	}
	if u.Fragment != "" {
		return errors.New("URL must not have a #fragment")
	}
	return nil
}
