package daemon

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretsmanager"
)

// The daemon keys each environment's Secrets Manager limits by the account
// its role reaches (moto maps an assumed role to the role's account), not by
// the config entry: two entries in one account share its quota.
func TestBuildStoresKeysQuotasByAccount(t *testing.T) {
	endpoint := motoserver.Start(t)
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	for _, tc := range []struct {
		name                  string
		sandboxRole, prodRole string
		share                 bool
	}{
		{"one account", "arn:aws:iam::222222222222:role/sandbox", "arn:aws:iam::222222222222:role/production", true},
		{"two accounts", "arn:aws:iam::222222222222:role/sandbox", "arn:aws:iam::333333333333:role/production", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			envWithRole := func(role string) *config.EnvironmentConfig {
				return &config.EnvironmentConfig{AWS: config.AWSConfig{Region: motoserver.Region, Endpoint: endpoint, RoleARN: role}}
			}
			cfg := &config.Config{Environments: map[laki.Environment]*config.EnvironmentConfig{
				laki.Sandbox: envWithRole(tc.sandboxRole), laki.Production: envWithRole(tc.prodRole)}}
			s := &Service{}
			stores, err := s.buildStores(context.Background(), cfg, BuildOptions{AWSCredentials: creds})
			if err != nil {
				t.Fatal(err)
			}
			sandbox := stores[laki.Sandbox].(*secretsmanager.Store).Quota()
			prod := stores[laki.Production].(*secretsmanager.Store).Quota()
			if sandbox != (secretsmanager.QuotaKey{Account: "222222222222", Region: motoserver.Region}) {
				t.Errorf("sandbox's quota = %v, want account 222222222222 in %s", sandbox, motoserver.Region)
			}
			if (sandbox == prod) != tc.share {
				t.Errorf("sandbox's quota %v, production's %v: shared = %v, want %v", sandbox, prod, sandbox == prod, tc.share)
			}
		})
	}
}
