// Package motoanchor makes on moto what audit anchoring writes to and
// signs with: an S3 bucket with Object Lock and a KMS signing key.
package motoanchor

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// LockedBucket creates the bucket name with Object Lock on, keeping every
// object version for days in compliance mode.
func LockedBucket(t testing.TB, c *s3.Client, name string, days int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), ObjectLockEnabledForBucket: aws.Bool(true)}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	if _, err := c.PutObjectLockConfiguration(ctx, &s3.PutObjectLockConfigurationInput{
		Bucket: aws.String(name),
		ObjectLockConfiguration: &s3types.ObjectLockConfiguration{
			ObjectLockEnabled: s3types.ObjectLockEnabledEnabled,
			Rule: &s3types.ObjectLockRule{DefaultRetention: &s3types.DefaultRetention{
				Mode: s3types.ObjectLockRetentionModeCompliance, Days: aws.Int32(days),
			}},
		},
	}); err != nil {
		t.Fatalf("object lock on bucket %s: %v", name, err)
	}
}

// SigningKey creates an ECC_NIST_P256 SIGN_VERIFY key and returns its id.
func SigningKey(t testing.TB, c *kms.Client) string {
	t.Helper()
	key, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("create KMS signing key: %v", err)
	}
	return aws.ToString(key.KeyMetadata.KeyId)
}
