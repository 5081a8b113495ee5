package anchor

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/lakirotator/lakirotator/internal/awsaccess"
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
	cfg, err := awsaccess.Load(ctx, awsaccess.Config{Region: c.Region, RegionField: "audit.anchor.region",
		Endpoint: c.Endpoint, Credentials: c.Credentials})
	if err != nil {
		return nil, nil, fmt.Errorf("audit anchor: %w", err)
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
