package daemon

import (
	"context"
	"fmt"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/vaultstore"
)

// buildVaultStore opens one environment's Vault store. The login's
// references ({env: …}, {file: …}) are resolved here, before any store
// exists: a Vault login never comes from a store.
func buildVaultStore(ctx context.Context, env laki.Environment, ec *config.EnvironmentConfig, o BuildOptions) (secretstore.Store, error) {
	where := fmt.Sprintf("environments.%s.vault", env)
	vc := ec.Vault
	if vc == nil {
		return nil, fmt.Errorf("%s: required with store.kind: vault", where)
	}
	refs := config.LocalResolver{LookupEnv: o.LookupEnv}
	resolve := func(field string, ref config.SecretRef) (secret.Value, error) {
		if ref.IsZero() {
			return secret.Value{}, nil
		}
		v, err := refs.Resolve(ctx, ref)
		if err != nil {
			return secret.Value{}, fmt.Errorf("%s.auth.%s: %w", where, field, err)
		}
		return v, nil
	}
	a := vc.Auth
	auth := vaultstore.Auth{Method: a.Method, MountPath: a.Mount, RoleID: a.RoleID, Role: a.Role,
		AWSRegion: a.Region, STSEndpoint: a.STSEndpoint, ServerIDHeader: a.ServerIDHeader}
	var err error
	if auth.Token, err = resolve("token", a.Token); err != nil {
		return nil, err
	}
	if auth.SecretID, err = resolve("secret_id", a.SecretID); err != nil {
		return nil, err
	}
	if a.Method == config.VaultAuthToken {
		// A token file may be rewritten (Vault Agent renews into it): the
		// store reads it again when Vault refuses the one in hand.
		auth.ReloadToken = func(ctx context.Context) (secret.Value, error) { return resolve("token", a.Token) }
	}
	if a.Method == config.VaultAuthAWS {
		auth.AWSCredentials = o.AWSCredentials
		if auth.AWSCredentials == nil {
			load := []func(*awsconfig.LoadOptions) error{}
			if ec.AWS.Profile != "" {
				load = append(load, awsconfig.WithSharedConfigProfile(ec.AWS.Profile))
			}
			awsCfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
			if err != nil {
				return nil, fmt.Errorf("%s.auth: AWS credentials for the IAM login: %w", where, err)
			}
			auth.AWSCredentials = awsCfg.Credentials
		}
	}
	st, err := vaultstore.New(vaultstore.Config{Address: vc.Address, Namespace: vc.Namespace, Mount: vc.Mount,
		Paths: vc.Paths, CAFile: vc.CAFile, Auth: auth, Clock: o.Clock})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return st, nil
}
