package config

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
)

// TokenSet holds the control API's bearer tokens as SHA-256 hashes only.
type TokenSet struct {
	names  []string
	hashes [][sha256.Size]byte
}

// NewTokenSet resolves the configured tokens: sha256 entries are used as
// they are, referenced tokens are fetched and hashed at once, so the plain
// token is not kept.
func NewTokenSet(ctx context.Context, tokens []TokenConfig, r Resolver) (*TokenSet, error) {
	ts := &TokenSet{}
	for i, t := range tokens {
		var h [sha256.Size]byte
		if t.SHA256 != "" {
			b, err := hex.DecodeString(t.SHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("http.tokens[%d] (%s): sha256 is not 64 hex digits", i, t.Name)
			}
			copy(h[:], b)
		} else {
			if r == nil {
				return nil, fmt.Errorf("http.tokens[%d] (%s): a token reference needs a resolver", i, t.Name)
			}
			v, err := r.Resolve(ctx, t.Token)
			if err != nil {
				return nil, fmt.Errorf("http.tokens[%d] (%s): %w", i, t.Name, err)
			}
			h = sha256.Sum256([]byte(v.Reveal()))
		}
		ts.names = append(ts.names, t.Name)
		ts.hashes = append(ts.hashes, h)
	}
	return ts, nil
}

// Len is the number of tokens.
func (t *TokenSet) Len() int { return len(t.names) }

// Match returns the name of the token presented, comparing SHA-256 hashes
// in constant time and always against every token, so timing tells nothing
// about which token (or how much of one) matched.
func (t *TokenSet) Match(presented string) (name string, ok bool) {
	if t == nil || presented == "" {
		return "", false
	}
	h := sha256.Sum256([]byte(presented))
	for i := range t.hashes {
		if subtle.ConstantTimeCompare(h[:], t.hashes[i][:]) == 1 && !ok {
			name, ok = t.names[i], true
		}
	}
	return name, ok
}

// HashToken returns the hex SHA-256 of a token, the form http.tokens[].sha256 takes.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}
