package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const vaultConfig = `version: 1
store: {kind: vault}
environments:
  production:
    vault:
      address: https://vault.example.com:8200
      ca_file: vault-ca.pem
      namespace: payments
      mount: lakirotator
      paths: [production]
      auth:
        method: approle
        role_id: 0f6e3b1c-5a6d-4d3e-9c1b-2f8a7e6d5c4b
        secret_id: {file: vault-secret-id}
    lakiconnect:
      base_url: https://api.lakiconnect.example/v1
      master_merchants:
        - id: mm_AAAAAAAAAAAAAAAA
          management_key: {secret: production/management}
`

func TestVaultStoreConfig(t *testing.T) {
	cfg, err := Parse("conf/vault.yaml", []byte(vaultConfig))
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Environments["production"].Vault
	if cfg.Store.Kind != StoreVault || v == nil {
		t.Fatalf("store %q, vault %+v", cfg.Store.Kind, v)
	}
	if v.Mount != "lakirotator" || v.Namespace != "payments" || len(v.Paths) != 1 || v.Auth.Method != VaultAuthAppRole {
		t.Errorf("vault block read as %+v", v)
	}
	if v.CAFile != filepath.Join("conf", "vault-ca.pem") || v.Auth.SecretID.File != filepath.Join("conf", "vault-secret-id") {
		t.Errorf("relative paths are not anchored at the config's directory: %q, %q", v.CAFile, v.Auth.SecretID.File)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("a loaded config validates again: %v", err)
	}
}

func TestBrokenVaultConfigs(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"plain http to another host", "https://vault.example.com:8200", "http://vault.example.com:8200",
			"environments.production.vault.address: http:// is allowed only to loopback"},
		{"no address", "      address: https://vault.example.com:8200\n", "",
			"environments.production.vault.address: required"},
		{"a path in the address", "https://vault.example.com:8200", "https://vault.example.com:8200/v1/secret",
			"give the server's address without a path"},
		{"unknown method", "method: approle", "method: kerberos", `environments.production.vault.auth.method: "kerberos" is not one of token, approle, aws`},
		{"approle without role id", "        role_id: 0f6e3b1c-5a6d-4d3e-9c1b-2f8a7e6d5c4b\n", "",
			"environments.production.vault.auth.role_id: required with method: approle"},
		{"token from the store it opens", "method: approle\n        role_id: 0f6e3b1c-5a6d-4d3e-9c1b-2f8a7e6d5c4b\n        secret_id: {file: vault-secret-id}",
			"method: token\n        token: {aws_secret: vault-token, environment: production}", "the Vault login cannot come from the store it opens"},
		{"a literal token", "method: approle\n        role_id: 0f6e3b1c-5a6d-4d3e-9c1b-2f8a7e6d5c4b\n        secret_id: {file: vault-secret-id}",
			"method: token\n        token: hvs.literal", "secret values are never written in the config"},
		{"aws without role", "method: approle\n        role_id: 0f6e3b1c-5a6d-4d3e-9c1b-2f8a7e6d5c4b\n        secret_id: {file: vault-secret-id}",
			"method: aws", "environments.production.vault.auth.role: required with method: aws"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(vaultConfig, tc.from, tc.to, 1)
			if y == vaultConfig {
				t.Fatalf("the case changes nothing")
			}
			_, err := Parse("vault.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hvs.literal") {
				t.Errorf("the error quotes the literal token: %v", err)
			}
		})
	}
	// Without store.kind: vault a vault block is a mistake, not ignored.
	y := strings.Replace(vaultConfig, "store: {kind: vault}\n", "", 1)
	y = strings.Replace(y, "    lakiconnect:", "    aws: {region: eu-west-1}\n    lakiconnect:", 1)
	if _, err := Parse("vault.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), "environments.production.vault: goes only with store.kind: vault") {
		t.Errorf("a vault block with the aws store: %v", err)
	}
	// With store.kind: vault every environment needs its block.
	y = vaultConfig[:strings.Index(vaultConfig, "    vault:")] + vaultConfig[strings.Index(vaultConfig, "    lakiconnect:"):]
	if _, err := Parse("vault.yaml", []byte(y)); err == nil || !strings.Contains(err.Error(), "environments.production.vault: required with store.kind: vault") {
		t.Errorf("an environment without a vault block: %v", err)
	}
}

// The example in REFERENCE.md's Vault section is a config that loads.
func TestReferenceVaultExampleLoads(t *testing.T) {
	b, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i := strings.Index(doc, "### environments.*.vault")
	if i < 0 {
		t.Fatal("REFERENCE.md has no environments.*.vault section")
	}
	start := strings.Index(doc[i:], "```yaml\n")
	end := strings.Index(doc[i+start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("the Vault section has no yaml example")
	}
	example := doc[i+start+8 : i+start+8+end]
	if _, err := Parse("REFERENCE.md", []byte("version: 1\n"+example)); err != nil {
		t.Fatalf("the Vault example does not load: %v", err)
	}
}
