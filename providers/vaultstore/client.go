package vaultstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/endpoint"
	"github.com/lakirotator/lakirotator/internal/secret"
)

// Auth methods.
const (
	AuthToken   = "token"
	AuthAppRole = "approle"
	AuthAWS     = "aws"
)

// Auth says how the store logs in to Vault.
type Auth struct {
	// Method is AuthToken, AuthAppRole or AuthAWS.
	Method string
	// Token is the Vault token (AuthToken).
	Token secret.Value
	// ReloadToken, when set, reads the token again after Vault refused the
	// one in hand (a token file that Vault Agent rewrites on renewal).
	ReloadToken func(ctx context.Context) (secret.Value, error)
	// MountPath is where the auth method is enabled; empty takes the
	// method's name ("approle", "aws").
	MountPath string
	// RoleID and SecretID log in with AppRole.
	RoleID   string
	SecretID secret.Value
	// Role is the Vault role of the AWS IAM login.
	Role string
	// AWSCredentials sign the IAM login (on ECS, the task role's).
	AWSCredentials aws.CredentialsProvider
	// AWSRegion is the STS region the login request is signed for;
	// empty takes us-east-1 with the global endpoint.
	AWSRegion string
	// STSEndpoint overrides the STS URL signed into the login (tests,
	// regional endpoints). It must match the Vault server's sts_endpoint.
	STSEndpoint string
	// ServerIDHeader is the X-Vault-AWS-IAM-Server-ID value the Vault
	// server requires (iam_server_id_header_value), if any.
	ServerIDHeader string
}

// Config says where and as whom to reach Vault.
type Config struct {
	// Address is the Vault URL, https (or http to a loopback host).
	Address string
	// Namespace is the Vault Enterprise/HCP namespace; empty for none.
	Namespace string
	// Mount is the KV v2 mount path; empty takes "secret".
	Mount string
	// Paths are the folders under the mount that discovery lists
	// (recursively); empty lists the whole mount.
	Paths []string
	// CAFile is a PEM file of the CA that signed Vault's certificate;
	// empty uses the system roots.
	CAFile string
	Auth   Auth
	// Clock times token renewal; nil is the real clock.
	Clock clock.Clock
}

// DefaultMount is the KV v2 mount a Vault dev server and most
// installations have.
const DefaultMount = "secret"

// CheckAddress refuses what the project never talks to: a URL that is not
// https, except plain http to a loopback host.
func CheckAddress(address string) error {
	if _, err := endpoint.Parse(address); err != nil {
		return fmt.Errorf("vault address %q: %w", address, err)
	}
	return nil
}

// newClient builds the Vault client: the address, CA and TLS settings come
// from cfg only. The client library's defaults read VAULT_* environment
// variables (VAULT_SKIP_VERIFY among them); every such setting that could
// weaken TLS or redirect requests is overwritten here.
func newClient(cfg Config) (*api.Client, error) {
	if err := CheckAddress(cfg.Address); err != nil {
		return nil, err
	}
	vc := api.DefaultConfig()
	if vc.Error != nil {
		return nil, fmt.Errorf("vault client defaults: %w", vc.Error)
	}
	vc.Address = cfg.Address
	vc.AgentAddress = ""
	vc.SRVLookup = false
	vc.Limiter = nil
	if err := vc.ConfigureTLS(&api.TLSConfig{CACert: cfg.CAFile}); err != nil {
		return nil, fmt.Errorf("vault ca_file %q: %w", cfg.CAFile, err)
	}
	t, ok := vc.HttpClient.Transport.(*http.Transport)
	if !ok || t.TLSClientConfig == nil {
		return nil, errors.New("vault client: unexpected transport")
	}
	t.TLSClientConfig.InsecureSkipVerify = false
	t.TLSClientConfig.ServerName = ""
	if t.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.TLSClientConfig.MinVersion = tls.VersionTLS12
	}
	client, err := api.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	client.ClearToken()
	if cfg.Namespace != "" {
		client.SetNamespace(cfg.Namespace)
	} else {
		client.ClearNamespace()
	}
	return client, nil
}

// tokens keeps the client logged in: a static token as given, a login
// method's token renewed by logging in again once two thirds of its lease
// have passed.
type tokens struct {
	client *api.Client
	auth   Auth
	ns     string
	clock  clock.Clock

	mu      sync.Mutex
	renewAt time.Time // zero: never (a static or non-expiring token)
	loaded  bool
	stale   bool // Vault refused the token in hand
}

func (t *tokens) ensure(ctx context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.loaded && !t.stale && (t.renewAt.IsZero() || t.clock.Now().Before(t.renewAt)) {
		return nil
	}
	if t.auth.Method == AuthToken || t.auth.Method == "" {
		if t.loaded && t.auth.ReloadToken != nil {
			tok, err := t.auth.ReloadToken(ctx)
			if err != nil {
				return fmt.Errorf("vault auth: reading the token again: %w", err)
			}
			t.auth.Token = tok
		}
		if t.auth.Token.IsZero() {
			return errors.New("vault auth: the token is empty")
		}
		t.client.SetToken(t.auth.Token.Reveal())
		t.loaded, t.stale = true, false
		return nil
	}
	token, lease, err := t.login(ctx)
	if err != nil {
		return err
	}
	t.client.SetToken(token)
	t.loaded, t.stale = true, false
	t.renewAt = time.Time{}
	if lease > 0 {
		t.renewAt = t.clock.Now().Add(lease * 2 / 3)
	}
	return nil
}

// renewable reports whether a refused token can be replaced: by logging
// in again, or by reading a reloadable token again.
func (t *tokens) renewable() bool {
	return (t.auth.Method != AuthToken && t.auth.Method != "") || t.auth.ReloadToken != nil
}

// invalidate makes the next call log in (or read the token) again: Vault
// refused the token before its lease ended (revoked, or a token file
// renewed by Vault Agent).
func (t *tokens) invalidate() {
	t.mu.Lock()
	t.stale = true
	t.mu.Unlock()
}

func (t *tokens) login(ctx context.Context) (string, time.Duration, error) {
	var path string
	var data map[string]any
	switch t.auth.Method {
	case AuthAppRole:
		path = "auth/" + mountOr(t.auth.MountPath, "approle") + "/login"
		data = map[string]any{"role_id": t.auth.RoleID, "secret_id": t.auth.SecretID.Reveal()}
	case AuthAWS:
		path = "auth/" + mountOr(t.auth.MountPath, "aws") + "/login"
		var err error
		if data, err = awsLoginData(ctx, t.auth, t.clock.Now()); err != nil {
			return "", 0, fmt.Errorf("vault aws login: %w", err)
		}
	default:
		return "", 0, fmt.Errorf("vault auth method %q is not one of token, approle, aws", t.auth.Method)
	}
	// The login goes out without the current token, on a copy of the client.
	lc, err := t.client.Clone()
	if err != nil {
		return "", 0, fmt.Errorf("vault login: %w", err)
	}
	lc.ClearToken()
	if t.ns != "" {
		lc.SetNamespace(t.ns)
	}
	s, err := lc.Logical().WriteWithContext(ctx, path, data)
	if err != nil {
		return "", 0, fmt.Errorf("vault login at %s: %w", path, loginError(err))
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return "", 0, fmt.Errorf("vault login at %s: the answer holds no token", path)
	}
	return s.Auth.ClientToken, time.Duration(s.Auth.LeaseDuration) * time.Second, nil
}

// loginError keeps the status and Vault's messages; they name roles, never
// the secret id or the signed request.
func loginError(err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("status %d: %s", re.StatusCode, strings.Join(re.Errors, "; "))
	}
	return err
}

func mountOr(mount, def string) string {
	mount = strings.Trim(mount, "/")
	if mount == "" {
		return def
	}
	return mount
}
