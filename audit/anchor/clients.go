package anchor

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakirotator/lakirotator/internal/endpoint"
)

// AWSConfig says how to reach S3 and KMS.
type AWSConfig struct {
	Region string
	// Endpoint replaces the AWS endpoints (a test server); https, or http
	// to loopback only.
	Endpoint    string
	Credentials aws.CredentialsProvider // nil: the SDK's default chain
}

// NewClients builds the S3 and KMS clients.
func NewClients(ctx context.Context, c AWSConfig) (*s3.Client, *kms.Client, error) {
	if err := checkEndpoint(c.Endpoint); err != nil {
		return nil, nil, err
	}
	var load []func(*awsconfig.LoadOptions) error
	if c.Region != "" {
		load = append(load, awsconfig.WithRegion(c.Region))
	}
	if c.Credentials != nil {
		load = append(load, awsconfig.WithCredentialsProvider(c.Credentials))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, nil, fmt.Errorf("audit anchor: load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return nil, nil, errors.New("audit anchor: no AWS region: set audit.anchor.region or AWS_REGION")
	}
	s3c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
			o.UsePathStyle = true
		}
	})
	kmsc := kms.NewFromConfig(cfg, func(o *kms.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
	})
	return s3c, kmsc, nil
}

func checkEndpoint(raw string) error {
	if raw == "" {
		return nil
	}
	if _, err := endpoint.Parse(raw); err != nil {
		return fmt.Errorf("audit anchor: endpoint: %w", err)
	}
	return nil
}
