package laki

// Environment is a LakiConnect environment. Keys of one never work in the other.
type Environment string

const (
	Sandbox    Environment = "sandbox"
	Production Environment = "production"
)

// Valid reports whether e is one of LakiConnect's environments.
func (e Environment) Valid() bool { return e == Sandbox || e == Production }

// SecretPrefix is the prefix of API key secrets in this environment.
func (e Environment) SecretPrefix() string {
	if e == Production {
		return LiveKeySecretPrefix
	}
	return TestKeySecretPrefix
}
