package vaultstore

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/vault/api"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/internal/testutil/vaultserver"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// readerPolicy lets a login read one folder of secret/.
const readerPolicy = `
path "secret/data/auth/*" { capabilities = ["read"] }
path "secret/metadata/auth/*" { capabilities = ["read"] }
`

func seedAuthSecret(t *testing.T, admin *api.Client, name string) secret.Value {
	t.Helper()
	v := secret.New("auth-check-" + randomHex(6))
	if err := vaultserver.Create(context.Background(), admin, "secret", name, "", nil, &v); err != nil {
		t.Fatal(err)
	}
	if err := admin.Sys().PutPolicy("auth-reader", readerPolicy); err != nil {
		t.Fatal(err)
	}
	return v
}

func enableAuth(t *testing.T, admin *api.Client, path, kind string) {
	t.Helper()
	if err := admin.Sys().EnableAuthWithOptions(path, &api.EnableAuthOptions{Type: kind}); err != nil && !strings.Contains(err.Error(), "path is already in use") {
		t.Fatal(err)
	}
}

// AppRole: the store logs in with a role id and secret id, and logs in
// again when Vault stops honouring its token (revoked) before the lease ends.
func TestAppRoleLoginAndReloginAfterRevocation(t *testing.T) {
	ctx := context.Background()
	srv := vault.Server(t)
	admin := srv.Client(t)
	name := "auth/approle-" + randomHex(4)
	want := seedAuthSecret(t, admin, name)
	enableAuth(t, admin, "approle-test", "approle")
	if _, err := admin.Logical().Write("auth/approle-test/role/rotator", map[string]any{"token_policies": "auth-reader", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	rid, err := admin.Logical().Read("auth/approle-test/role/rotator/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := admin.Logical().Write("auth/approle-test/role/rotator/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Address: srv.Addr, Auth: Auth{Method: AuthAppRole, MountPath: "approle-test",
		RoleID: rid.Data["role_id"].(string), SecretID: secret.New(sid.Data["secret_id"].(string))}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil || !got.Value.Equal(want) {
		t.Fatalf("Get with an AppRole login: %v", err)
	}
	if _, err := admin.Logical().Write("sys/leases/revoke-prefix/auth/approle-test/", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent)); err != nil {
		t.Fatalf("Get after the login token was revoked: %v", err)
	}

	bad, err := New(Config{Address: srv.Addr, Auth: Auth{Method: AuthAppRole, MountPath: "approle-test",
		RoleID: rid.Data["role_id"].(string), SecretID: secret.New("not-the-secret-id-" + randomHex(4))}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err == nil || !strings.Contains(err.Error(), "auth/approle-test/login") {
		t.Fatalf("Get with a wrong secret id: %v, want a login error naming the login path", err)
	}
	if strings.Contains(err.Error(), "not-the-secret-id") {
		t.Errorf("the login error shows the secret id: %v", err)
	}
}

// AWS IAM: the store signs sts:GetCallerIdentity with its AWS credentials;
// Vault replays it to STS (here moto's) and maps the caller to a role.
func TestAWSIAMLogin(t *testing.T) {
	ctx := context.Background()
	srv := vault.Server(t)
	admin := srv.Client(t)
	sts := motoserver.Start(t)
	name := "auth/aws-" + randomHex(4)
	want := seedAuthSecret(t, admin, name)
	enableAuth(t, admin, "aws-test", "aws")
	if _, err := admin.Logical().Write("auth/aws-test/config/client", map[string]any{
		"sts_endpoint": sts, "sts_region": motoserver.Region, "iam_server_id_header_value": "vault.example.com",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Logical().Write("auth/aws-test/role/rotator", map[string]any{
		"auth_type": "iam", "bound_iam_principal_arn": "arn:aws:iam::123456789012:user/moto",
		"resolve_aws_unique_ids": false, "token_policies": "auth-reader",
	}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Address: srv.Addr, Auth: Auth{Method: AuthAWS, MountPath: "aws-test", Role: "rotator",
		AWSCredentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, ""),
		AWSRegion:      motoserver.Region, STSEndpoint: sts, ServerIDHeader: "vault.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil || !got.Value.Equal(want) {
		t.Fatalf("Get with an AWS IAM login: %v", err)
	}
}

// A token file that Vault Agent rewrites: when Vault refuses the token in
// hand, the store reads the file again.
func TestTokenReadAgainAfterVaultRefusesIt(t *testing.T) {
	ctx := context.Background()
	srv := vault.Server(t)
	admin := srv.Client(t)
	name := "auth/reload-" + randomHex(4)
	want := seedAuthSecret(t, admin, name)
	newToken := func() string {
		t.Helper()
		tok, err := admin.Auth().Token().Create(&api.TokenCreateRequest{Policies: []string{"auth-reader"}, TTL: "1h"})
		if err != nil {
			t.Fatal(err)
		}
		return tok.Auth.ClientToken
	}
	var mu sync.Mutex
	file := newToken()
	reads := 0
	s, err := New(Config{Address: srv.Addr, Auth: Auth{Method: AuthToken, Token: secret.New(file),
		ReloadToken: func(context.Context) (secret.Value, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			return secret.New(file), nil
		}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent)); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	old := file
	file = newToken()
	mu.Unlock()
	if err := admin.Auth().Token().RevokeOrphan(old); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, name, secretstore.ByStage(secretstore.StageCurrent))
	if err != nil || !got.Value.Equal(want) {
		t.Fatalf("Get after the token in hand was revoked and the file renewed: %v", err)
	}
	if reads != 1 {
		t.Errorf("the token was read again %d times, want once", reads)
	}
}
