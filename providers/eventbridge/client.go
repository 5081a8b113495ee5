package eventbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/lakirotator/lakirotator/internal/endpoint"
)

// ClientConfig says how to reach one environment's EventBridge: the same
// account, region and role as its Secrets Manager.
type ClientConfig struct {
	Region, Endpoint, Profile, RoleARN, ExternalID string
	// Credentials replace the SDK's default chain (tests).
	Credentials aws.CredentialsProvider
}

// NewClient builds an EventBridge client with the SDK's standard retryer.
// A plain-http endpoint is allowed for loopback hosts only.
func NewClient(ctx context.Context, cfg ClientConfig) (*eb.Client, error) {
	if err := checkEndpoint(cfg.Endpoint); err != nil {
		return nil, err
	}
	load := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if cfg.Region != "" {
		load = append(load, config.WithRegion(cfg.Region))
	}
	if cfg.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Credentials != nil {
		load = append(load, config.WithCredentialsProvider(cfg.Credentials))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("eventbridge: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("eventbridge: no AWS region: set the environment's aws.region or AWS_REGION")
	}
	if cfg.RoleARN != "" {
		awsCfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(sts.NewFromConfig(awsCfg), cfg.RoleARN,
			func(o *stscreds.AssumeRoleOptions) {
				o.RoleSessionName = "lakirotator"
				if cfg.ExternalID != "" {
					o.ExternalID = aws.String(cfg.ExternalID)
				}
			}))
	}
	return eb.NewFromConfig(awsCfg, func(o *eb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}

func checkEndpoint(raw string) error {
	if raw == "" {
		return nil
	}
	if _, err := endpoint.Parse(raw); err != nil {
		return fmt.Errorf("eventbridge: endpoint %q: %w", raw, err)
	}
	return nil
}
