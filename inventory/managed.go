// Package inventory describes the secrets the rotator manages: declared in
// the config file, or discovered by their Secrets Manager tags so that
// thousands of secrets need no config entry each.
package inventory

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// Kind is what a managed secret is for (its lakirotator:kind tag). It is
// not secretstore.CredentialType, the format of the stored value: a
// management key is a kind of its own but stores an API key.
type Kind string

const (
	KindAPIKey        Kind = "api_key"
	KindWebhookSecret Kind = "webhook_secret"
	// KindManagementKey is the rotator's own LakiConnect key: rotated last, never locked out.
	KindManagementKey Kind = "management_key"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	return k == KindAPIKey || k == KindWebhookSecret || k == KindManagementKey
}

// CredentialType is the type of credential a secret of this kind stores.
func (k Kind) CredentialType() secretstore.CredentialType {
	if k == KindWebhookSecret {
		return secretstore.TypeWebhookSecret
	}
	return secretstore.TypeAPIKey
}

// The tags that mark a Secrets Manager secret as managed and describe it.
// Terraform's managed-secret module writes them; discovery reads them.
const (
	TagManaged        = "lakirotator:managed" // "true"
	TagKind           = "lakirotator:kind"
	TagEnvironment    = "lakirotator:environment"
	TagMasterMerchant = "lakirotator:master-merchant"
	TagEndpointID     = "lakirotator:endpoint-id"
	TagPolicy         = "lakirotator:policy"
	TagOwners         = "lakirotator:owners" // space- or comma-separated people and teams
)

// ManagedSecret is one secret the rotator owns.
type ManagedSecret struct {
	Name             string
	ARN              string // empty until known from the store
	Kind             Kind
	Environment      laki.Environment
	MasterMerchantID string
	EndpointID       string // webhook secrets only
	Policy           string // policy name
	Owners           []string
}

// Validate checks the fields every managed secret needs, naming the secret.
func (m ManagedSecret) Validate() error {
	var problems []string
	if m.Name == "" {
		problems = append(problems, "name is empty")
	}
	if !m.Kind.Valid() {
		problems = append(problems, fmt.Sprintf("kind %q is not api_key, webhook_secret or management_key", m.Kind))
	}
	if !m.Environment.Valid() {
		problems = append(problems, fmt.Sprintf("environment %q is not sandbox or production", m.Environment))
	}
	if m.MasterMerchantID == "" {
		problems = append(problems, "master merchant id is empty")
	}
	if m.Kind == KindWebhookSecret && m.EndpointID == "" {
		problems = append(problems, "webhook secret without endpoint id")
	}
	if m.Policy == "" {
		problems = append(problems, "policy is empty")
	}
	if len(problems) > 0 {
		return fmt.Errorf("managed secret %q: %s", m.Name, strings.Join(problems, "; "))
	}
	return nil
}

// HasOwner reports whether person (or team) is among the owners.
func (m ManagedSecret) HasOwner(person string) bool {
	for _, o := range m.Owners {
		if strings.EqualFold(o, person) {
			return true
		}
	}
	return false
}

// FromTags builds a managed secret from a discovered secret's tags. It
// returns ok=false for secrets not tagged as managed, and an error naming the
// secret and tag when a managed secret's tags are incomplete.
func FromTags(name, arn string, tags map[string]string) (ManagedSecret, bool, error) {
	if tags[TagManaged] != "true" {
		return ManagedSecret{}, false, nil
	}
	m := ManagedSecret{
		Name: name, ARN: arn,
		Kind:             Kind(tags[TagKind]),
		Environment:      laki.Environment(tags[TagEnvironment]),
		MasterMerchantID: tags[TagMasterMerchant],
		EndpointID:       tags[TagEndpointID],
		Policy:           tags[TagPolicy],
		Owners:           SplitOwners(tags[TagOwners]),
	}
	if err := m.Validate(); err != nil {
		return ManagedSecret{}, true, fmt.Errorf("tags of %w", err)
	}
	return m, true, nil
}

// SplitOwners splits a tag value on commas and spaces, dropping empties and duplicates.
func SplitOwners(v string) []string {
	fields := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
	sort.Strings(fields)
	out := fields[:0]
	for i, f := range fields {
		if i == 0 || f != fields[i-1] {
			out = append(out, f)
		}
	}
	return out
}
