// The facts of one credential that the checks read, and the helpers that
// name it in a violation.

package policies

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Facts is everything the checks know about one credential: an API key, a
// webhook signing secret, or a webhook endpoint. Zero fields are unknown and
// the checks that need them stay silent.
type Facts struct {
	// Secret is the managed secret's name; "" when no managed secret
	// references the credential.
	Secret string
	Kind   inventory.Kind
	// Managed reports whether a managed secret references the credential
	// (its current version, or an older one still in its grace).
	Managed bool
	// Current reports whether the credential is the one in the secret's
	// AWSCURRENT version (the one consumers use).
	Current bool
	// Policy is the secret's policy; nil when PolicyName is not loaded.
	Policy     *Policy
	PolicyName string

	// Declared*, Stored*, BaseURL* and Key* are the same words (an
	// environment, a master merchant id) as seen from four places; the
	// checks compare them, so they keep distinct names.
	DeclaredEnvironment laki.Environment // the secret's tag or config entry
	StoredEnvironment   laki.Environment // "environment" in the stored value
	BaseURLEnvironment  laki.Environment // environment of the base URL it is used against
	DeclaredMerchantID  string           // the secret's master merchant (tag or config entry)

	// Found reports whether LakiConnect returned the key (or endpoint and
	// signing secret). When false, the fields below are unknown.
	Found          bool
	KeyID          string
	KeyEnvironment laki.Environment // as LakiConnect reports the key
	KeyMerchantID  string           // as LakiConnect reports the key
	Scopes         []laki.Scope
	Status         laki.KeyStatus
	CreatedAt      time.Time
	ExpiresAt      *time.Time
	LastUsedAt     *time.Time
	CreatedBy      string
	Metadata       map[string]string
	EndpointID     string
	EndpointURL    string
	ManagementKey  bool
	// RotationScopes is what the management key needs (Set.RotationScopes);
	// nil falls back to the policy's scopes.
	RotationScopes []laki.Scope
	// PreviousKeys are the secret's older keys at LakiConnect (AWSPREVIOUS
	// in its grace), for CheckOldKeyStillInUse. Their grace started when
	// the current key was created (CreatedAt).
	PreviousKeys []PreviousKey
}

// PreviousKey is what LakiConnect reports of an older key of a secret.
type PreviousKey struct {
	ID         string
	Status     laki.KeyStatus
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
}

func (f Facts) environment() laki.Environment {
	if f.Found && f.KeyEnvironment != "" {
		return f.KeyEnvironment
	}
	if f.DeclaredEnvironment != "" {
		return f.DeclaredEnvironment
	}
	return f.BaseURLEnvironment
}

func (f Facts) merchant() string {
	if f.Found && f.KeyMerchantID != "" {
		return f.KeyMerchantID
	}
	return f.DeclaredMerchantID
}

func (f Facts) violation(r Reason, format string, args ...any) *Violation {
	sev := r.DefaultSeverity()
	if f.Policy != nil {
		sev = f.Policy.SeverityOf(r)
	}
	return &Violation{
		Reason: r, Severity: sev, Secret: f.Secret, Policy: f.PolicyName,
		KeyID: f.KeyID, EndpointID: f.EndpointID,
		Environment: f.environment(), MasterMerchantID: f.merchant(),
		Message: fmt.Sprintf(format, args...),
	}
}

func (f Facts) isKey() bool {
	return f.Kind == inventory.KindAPIKey || f.Kind == inventory.KindManagementKey
}

// subject names the credential in messages.
func (f Facts) subject() string {
	switch {
	case f.Kind == inventory.KindWebhookSecret && f.KeyID != "":
		return fmt.Sprintf("webhook secret %s of endpoint %s", f.KeyID, f.EndpointID)
	case f.Kind == inventory.KindWebhookSecret:
		return "webhook endpoint " + f.EndpointID
	default:
		return "key " + f.KeyID
	}
}

func scopeList(s []laki.Scope) string {
	if len(s) == 0 {
		return "no scopes"
	}
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, ",")
}

// nameTokenEnvironment says which environment one name token claims. A name
// is split on every character that is not a letter or digit, lowercased, and
// judged by its tokens: a sandbox token (sandbox, sbx, test, testing) and no
// production token (prod, production, prd, live) means sandbox; the reverse
// means production; both or neither mean no verdict. Substrings do not
// count ("contest" is not "test", "delivery" is not "live").
func nameTokenEnvironment(token string) laki.Environment {
	switch token {
	case "sandbox", "sbx", "test", "testing":
		return laki.Sandbox
	case "prod", "production", "prd", "live":
		return laki.Production
	}
	return ""
}

// NameEnvironment returns the environment a secret or policy name claims
// (see nameTokenEnvironment), and false when it claims none or both.
func NameEnvironment(name string) (laki.Environment, bool) {
	tokens := strings.FieldsFunc(strings.ToLower(name), func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
	var sbx, prod bool
	for _, t := range tokens {
		switch nameTokenEnvironment(t) {
		case laki.Sandbox:
			sbx = true
		case laki.Production:
			prod = true
		}
	}
	switch {
	case sbx && !prod:
		return laki.Sandbox, true
	case prod && !sbx:
		return laki.Production, true
	}
	return "", false
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
