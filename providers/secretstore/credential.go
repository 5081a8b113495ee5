package secretstore

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// CredentialFormatVersion is the version of the stored value format. Readers
// refuse versions they do not know.
const CredentialFormatVersion = 1

// CredentialType says what a stored value holds: its format, not what the
// secret is for (inventory.Kind, which maps to it: a management key stores
// an API key).
type CredentialType string

const (
	TypeAPIKey        CredentialType = "lakiconnect_api_key"
	TypeWebhookSecret CredentialType = "lakiconnect_webhook_secret"
)

// Credential is what every version of a managed secret holds, as JSON.
// Consumers read AWSCURRENT and find everything they need in it.
type Credential struct {
	Type             CredentialType
	Environment      string
	MasterMerchantID string
	// KeyID is set for API keys.
	KeyID string
	// EndpointID and SecretID are set for webhook signing secrets.
	EndpointID string
	SecretID   string
	Secret     secret.Value
	Scopes     []string
	CreatedAt  time.Time
}

// storedCredential is the JSON shape; the only place a secret is written plain.
type storedCredential struct {
	FormatVersion    int            `json:"format_version"`
	Type             CredentialType `json:"type"`
	Environment      string         `json:"environment"`
	MasterMerchantID string         `json:"master_merchant_id"`
	KeyID            string         `json:"key_id,omitempty"`
	EndpointID       string         `json:"endpoint_id,omitempty"`
	SecretID         string         `json:"secret_id,omitempty"`
	Secret           string         `json:"secret"`
	Scopes           []string       `json:"scopes,omitempty"`
	CreatedAt        time.Time      `json:"created_at"`
}

// ID is the credential's id at LakiConnect: the key id of an API key, the
// signing secret's id of a webhook secret.
func (c Credential) ID() string {
	if c.Type == TypeWebhookSecret {
		return c.SecretID
	}
	return c.KeyID
}

// Encode renders the credential as the stored JSON, itself a secret.
func (c Credential) Encode() (secret.Value, error) {
	if err := c.validate(); err != nil {
		return secret.Value{}, err
	}
	b, err := json.Marshal(storedCredential{
		FormatVersion: CredentialFormatVersion, Type: c.Type, Environment: c.Environment,
		MasterMerchantID: c.MasterMerchantID, KeyID: c.KeyID, EndpointID: c.EndpointID,
		SecretID: c.SecretID, Secret: c.Secret.Reveal(), Scopes: c.Scopes, CreatedAt: c.CreatedAt.UTC(),
	})
	if err != nil {
		return secret.Value{}, fmt.Errorf("encode credential: %w", err)
	}
	return secret.New(string(b)), nil
}

// DecodeCredential parses a stored value. Errors name the secret and the
// field, wrap ErrMalformedValue, and never quote the value.
func DecodeCredential(secretName string, v secret.Value) (Credential, error) {
	var s storedCredential
	if err := json.Unmarshal([]byte(v.Reveal()), &s); err != nil {
		// json errors can quote input; keep only the position.
		detail := "not a JSON object"
		if se, ok := err.(*json.SyntaxError); ok {
			detail = fmt.Sprintf("invalid JSON at byte %d", se.Offset)
		} else if te, ok := err.(*json.UnmarshalTypeError); ok {
			detail = fmt.Sprintf("field %q: expected %s", te.Field, te.Type)
		}
		return Credential{}, &Error{Op: "DecodeCredential", Secret: secretName, Kind: ErrMalformedValue, Err: fmt.Errorf("%s", detail)}
	}
	if s.FormatVersion != CredentialFormatVersion {
		return Credential{}, &Error{Op: "DecodeCredential", Secret: secretName, Kind: ErrMalformedValue,
			Err: fmt.Errorf("field \"format_version\": %d is not a known format (want %d)", s.FormatVersion, CredentialFormatVersion)}
	}
	c := Credential{
		Type: s.Type, Environment: s.Environment, MasterMerchantID: s.MasterMerchantID,
		KeyID: s.KeyID, EndpointID: s.EndpointID, SecretID: s.SecretID,
		Secret: secret.New(s.Secret), Scopes: s.Scopes, CreatedAt: s.CreatedAt,
	}
	if err := c.validate(); err != nil {
		return Credential{}, &Error{Op: "DecodeCredential", Secret: secretName, Kind: ErrMalformedValue, Err: err}
	}
	return c, nil
}

func (c Credential) validate() error {
	missing := func(f string) error { return fmt.Errorf("field %q is missing", f) }
	switch c.Type {
	case TypeAPIKey:
		if c.KeyID == "" {
			return missing("key_id")
		}
	case TypeWebhookSecret:
		if c.EndpointID == "" {
			return missing("endpoint_id")
		}
		if c.SecretID == "" {
			return missing("secret_id")
		}
	case "":
		return missing("type")
	default:
		return fmt.Errorf("field \"type\": %q is not %q or %q", c.Type, TypeAPIKey, TypeWebhookSecret)
	}
	if c.Environment != "sandbox" && c.Environment != "production" {
		return fmt.Errorf("field \"environment\": %q is not sandbox or production", c.Environment)
	}
	if c.MasterMerchantID == "" {
		return missing("master_merchant_id")
	}
	if c.Secret.IsZero() {
		return missing("secret")
	}
	if c.CreatedAt.IsZero() {
		return missing("created_at")
	}
	return nil
}
