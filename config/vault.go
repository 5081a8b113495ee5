package config

import (
	"fmt"
	"net/url"
	"strings"
)

// StoreVault keeps managed secrets in a HashiCorp Vault (or OpenBao) KV
// version 2 secrets engine, configured per environment under
// environments.<env>.vault.
const StoreVault = "vault"

// Vault auth methods.
const (
	VaultAuthToken   = "token"
	VaultAuthAppRole = "approle"
	VaultAuthAWS     = "aws"
)

// VaultConfig says where one environment's secrets live in Vault and how
// the rotator logs in. Sandbox and production use separate blocks (and
// should use separate mounts or namespaces), so they never mix.
type VaultConfig struct {
	// Address is Vault's URL: https, or http to a loopback host only.
	Address string `yaml:"address"`
	// CAFile is the PEM CA bundle that signed Vault's certificate; empty
	// uses the system roots.
	CAFile    string `yaml:"ca_file"`
	Namespace string `yaml:"namespace"`
	// Mount is the KV v2 mount path (default "secret").
	Mount string `yaml:"mount"`
	// Paths are the folders under the mount that discovery lists; empty
	// lists the whole mount.
	Paths []string        `yaml:"paths"`
	Auth  VaultAuthConfig `yaml:"auth"`
}

// VaultAuthConfig is one login method. Credentials are references, never values.
type VaultAuthConfig struct {
	Method string `yaml:"method"`
	// Mount is where the auth method is enabled (default: the method's name).
	Mount string `yaml:"mount"`
	// Token (method token).
	Token SecretRef `yaml:"token"`
	// RoleID and SecretID (method approle).
	RoleID   string    `yaml:"role_id"`
	SecretID SecretRef `yaml:"secret_id"`
	// Role, and the STS region, endpoint and server id header the login is
	// signed for (method aws; AWS credentials come from the environment's
	// aws.profile or the default chain, on ECS the task role).
	Role           string `yaml:"role"`
	Region         string `yaml:"region"`
	STSEndpoint    string `yaml:"sts_endpoint"`
	ServerIDHeader string `yaml:"server_id_header"`
}

func (v *validator) vault(p string, vc *VaultConfig) {
	if vc == nil {
		v.ps.add(p, "required with store.kind: vault (address, auth)")
		return
	}
	switch {
	case vc.Address == "":
		v.ps.add(p+".address", "required, as in https://vault.example.com:8200")
	default:
		if err := checkVaultAddress(vc.Address); err != nil {
			v.ps.add(p+".address", "%v", err)
		}
	}
	if strings.Contains(vc.Mount, "..") {
		v.ps.add(p+".mount", "%q is not a mount path", vc.Mount)
	}
	for i, path := range vc.Paths {
		if strings.Contains(path, "..") || strings.TrimSpace(path) != path {
			v.ps.add(indexPath(p+".paths", i), "%q is not a folder path under the mount", path)
		}
	}
	a := vc.Auth
	ap := p + ".auth"
	vaultRef := func(path string, r SecretRef) {
		if !v.refSet(path, r) {
			v.ps.add(path, "required: {env: NAME} or {file: PATH}")
			return
		}
		if r.AWSSecret != "" {
			v.ps.add(path, "the Vault login cannot come from the store it opens; use {env: NAME} or {file: PATH}")
			return
		}
		v.ref(path, r)
	}
	switch a.Method {
	case VaultAuthToken:
		vaultRef(ap+".token", a.Token)
	case VaultAuthAppRole:
		if a.RoleID == "" {
			v.ps.add(ap+".role_id", "required with method: approle")
		}
		vaultRef(ap+".secret_id", a.SecretID)
	case VaultAuthAWS:
		if a.Role == "" {
			v.ps.add(ap+".role", "required with method: aws (the Vault role bound to the rotator's IAM role)")
		}
		if a.STSEndpoint != "" {
			v.url(ap+".sts_endpoint", a.STSEndpoint, false)
		}
	case "":
		v.ps.add(ap+".method", "required: token, approle or aws")
	default:
		v.ps.add(ap+".method", "%q is not one of token, approle, aws", a.Method)
	}
	if a.Method != VaultAuthToken && !a.Token.IsZero() {
		v.ps.add(ap+".token", "goes only with method: token")
	}
	if a.Method != VaultAuthAppRole && (a.RoleID != "" || !a.SecretID.IsZero()) {
		v.ps.add(ap+".role_id", "role_id and secret_id go only with method: approle")
	}
}

// checkVaultAddress refuses a Vault store without TLS to a non-loopback
// host: the token and every secret value cross this connection.
func checkVaultAddress(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL, as in https://vault.example.com:8200", raw)
	}
	if u.Path != "" && u.Path != "/" {
		return fmt.Errorf("%q: give the server's address without a path (not /v1/...)", raw)
	}
	return CheckURL(raw)
}

func (c *Config) resolveVaultPaths(abs func(*string)) {
	for _, e := range c.Environments {
		if e == nil || e.Vault == nil {
			continue
		}
		abs(&e.Vault.CAFile)
		abs(&e.Vault.Auth.Token.File)
		abs(&e.Vault.Auth.SecretID.File)
	}
}
