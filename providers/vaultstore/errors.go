package vaultstore

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// PolicyFile is where the project keeps the Vault policy the store needs.
const PolicyFile = "deploy/vault/lakirotator.hcl"

// fail turns a client error on path into a *secretstore.Error of the right
// kind. Vault's messages name paths and reasons, never request data, so
// they are kept; a 403 says which capability on which path the token lacks.
func (s *Store) fail(op, name, path, capability string, err error) error {
	var se *secretstore.Error
	if errors.As(err, &se) {
		return err
	}
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return &secretstore.Error{Op: op, Secret: name, Err: fmt.Errorf("%s %s: %w", capability, path, err)}
	}
	msg := strings.Join(re.Errors, "; ")
	var kind error
	switch {
	case re.StatusCode == http.StatusForbidden:
		return &secretstore.Error{Op: op, Secret: name, Kind: secretstore.ErrAccessDenied,
			Err: fmt.Errorf("vault refused %s on %s (403 %s): the token's policy must grant %q on %q (see %s)",
				capability, path, msg, capability, s.ns+path, PolicyFile)}
	case re.StatusCode == http.StatusNotFound:
		kind = secretstore.ErrNotFound
	case re.StatusCode == http.StatusTooManyRequests:
		kind = secretstore.ErrThrottled
	case re.StatusCode == http.StatusBadRequest:
		kind = secretstore.ErrInvalidRequest
	}
	return &secretstore.Error{Op: op, Secret: name, Kind: kind, Err: fmt.Errorf("%s %s: status %d: %s", capability, path, re.StatusCode, msg)}
}
