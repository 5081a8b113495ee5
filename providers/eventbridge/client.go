package eventbridge

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	eb "github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/lakirotator/lakirotator/internal/awsaccess"
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
	awsCfg, err := awsaccess.Load(ctx, awsaccess.Config{Region: cfg.Region, RegionField: "the environment's aws.region",
		Endpoint: cfg.Endpoint, Profile: cfg.Profile, RoleARN: cfg.RoleARN, ExternalID: cfg.ExternalID, Credentials: cfg.Credentials})
	if err != nil {
		return nil, fmt.Errorf("eventbridge: %w", err)
	}
	return eb.NewFromConfig(awsCfg, func(o *eb.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	}), nil
}
