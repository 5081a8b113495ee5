// Package awsaccess is how the project reaches an AWS account: the SDK's
// default chain, narrowed by what the config names (region, profile,
// endpoint, a role to assume), with the SDK's own logger silenced and the
// endpoint held to the https-or-loopback rule. The Secrets Manager store,
// the EventBridge publisher and the audit anchor reach their accounts
// through it, so a role or an endpoint means the same for each.
package awsaccess

import (
	"context"
	"fmt"
	"net/url"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/lakirotator/lakirotator/internal/endpoint"
)

// Config says where and as whom to reach one account.
type Config struct {
	// Region; empty takes the SDK's default chain (AWS_REGION, profile).
	Region string
	// RegionField names where the config sets the region, for the error
	// when there is none.
	RegionField string
	// Endpoint replaces the service's endpoint (tests, VPC endpoints):
	// https, or plain http to a loopback host only.
	Endpoint string
	// Profile selects a shared config profile; empty uses the default chain.
	Profile string
	// RoleARN, when set, is assumed through STS with the loaded
	// credentials; ExternalID goes with it when the trust policy asks.
	RoleARN, ExternalID string
	// Credentials, when set, replace the default chain (tests, the demo).
	Credentials aws.CredentialsProvider
	// Logger receives the SDK's own log lines; nil discards them (the SDK
	// would write warnings, such as an IMDSv1 fallback, to stderr).
	Logger logging.Logger
}

// Load returns the SDK config for c, with the role assumed when c names
// one. The extra options (a retryer, an HTTP client) are applied last. Its
// errors name what is missing but not the caller; callers add their name.
func Load(ctx context.Context, c Config, extra ...func(*config.LoadOptions) error) (aws.Config, error) {
	if c.Endpoint != "" {
		if _, err := endpoint.Parse(c.Endpoint); err != nil {
			return aws.Config{}, fmt.Errorf("endpoint %q: %w", c.Endpoint, err)
		}
	}
	logger := c.Logger
	if logger == nil {
		logger = logging.Nop{}
	}
	load := []func(*config.LoadOptions) error{config.WithLogger(logger)}
	if c.Region != "" {
		load = append(load, config.WithRegion(c.Region))
	}
	if c.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(c.Profile))
	}
	if c.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(c.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, append(load, extra...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region: set %s or AWS_REGION", c.RegionField)
	}
	if c.RoleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(STS(awsCfg, c.Endpoint), c.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "lakirotator"
				if c.ExternalID != "" {
					o.ExternalID = aws.String(c.ExternalID)
				}
			}))
	}
	return awsCfg, nil
}

// STS is an STS client with awsCfg's credentials, at the address stsEndpoint gives.
func STS(awsCfg aws.Config, serviceEndpoint string) *sts.Client {
	return sts.NewFromConfig(awsCfg, func(so *sts.Options) {
		if ep := stsEndpoint(serviceEndpoint); ep != "" {
			so.BaseEndpoint = aws.String(ep)
		}
	})
}

// stsEndpoint is where STS calls go: the SDK's choice (which honours
// AWS_ENDPOINT_URL_STS) except when the service is reached through a
// loopback stand-in and no STS endpoint is set, where the stand-in serves
// STS too (moto serves every service on one address).
func stsEndpoint(serviceEndpoint string) string {
	if serviceEndpoint == "" {
		return ""
	}
	for _, v := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		if e, ok := os.LookupEnv(v); ok && e != "" {
			return ""
		}
	}
	u, err := url.Parse(serviceEndpoint)
	if err != nil || !endpoint.IsLoopbackHost(u.Hostname()) {
		return ""
	}
	return serviceEndpoint
}
