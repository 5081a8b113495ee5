package inventory_test

import (
	"testing"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// A management key is a kind of its own but stores an API key: the engine
// refuses a stored value whose type does not match the declared kind.
func TestKindCredentialType(t *testing.T) {
	for kind, want := range map[inventory.Kind]secretstore.CredentialType{
		inventory.KindAPIKey:        secretstore.TypeAPIKey,
		inventory.KindManagementKey: secretstore.TypeAPIKey,
		inventory.KindWebhookSecret: secretstore.TypeWebhookSecret,
	} {
		if got := kind.CredentialType(); got != want {
			t.Errorf("%s stores %s, want %s", kind, got, want)
		}
	}
}
