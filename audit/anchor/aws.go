package anchor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Call is one AWS API call this package makes, with the IAM action that
// allows it. The Terraform tests compare these lists with the policies.
type Call struct {
	API, Action string
}

// WriterCalls are the calls the rotator makes to ship records and digests.
func WriterCalls() []Call {
	return []Call{
		{"s3:PutObject", "s3:PutObject"},
		{"s3:ListObjectsV2", "s3:ListBucket"}, // finding the last digest on start-up
		{"s3:GetObject", "s3:GetObject"},
		{"kms:Sign", "kms:Sign"},
	}
}

// VerifierCalls are the calls audit verify makes: read-only. Every object
// is read by version id (the first version of each key is the locked
// original), which IAM allows as s3:GetObjectVersion.
func VerifierCalls() []Call {
	return []Call{
		{"s3:ListObjectVersions", "s3:ListBucketVersions"},
		{"s3:GetObject (VersionId)", "s3:GetObjectVersion"},
		{"kms:Verify", "kms:Verify"},             // --kms-key
		{"kms:GetPublicKey", "kms:GetPublicKey"}, // FetchPublicKey, or aws kms get-public-key for --public-key
	}
}

// ObjectVersion is one stored version of an object.
type ObjectVersion struct {
	Key, VersionID string
	LastModified   time.Time
	// DeleteMarker: a delete without a version id hid the object from plain
	// listings (Object Lock allows that); its locked versions remain.
	DeleteMarker bool
}

// Bucket is the S3 side: the shipper writes and finds its last digest, the
// verifier reads every version.
type Bucket interface {
	Put(ctx context.Context, key string, body []byte) error
	Get(ctx context.Context, key, versionID string) ([]byte, error)
	// Keys lists the current keys under prefix, sorted.
	Keys(ctx context.Context, prefix string) ([]string, error)
	// Versions lists every version of every object under prefix, oldest first per key.
	Versions(ctx context.Context, prefix string) ([]ObjectVersion, error)
}

// S3Bucket is Bucket on Amazon S3.
type S3Bucket struct {
	Client *s3.Client
	Name   string
}

func (b S3Bucket) Put(ctx context.Context, key string, body []byte) error {
	// S3 requires a checksum header on a put to an Object Lock bucket;
	// the bucket's default retention locks the object.
	_, err := b.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(b.Name), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String("application/json"), ChecksumAlgorithm: s3types.ChecksumAlgorithmSha256,
	})
	if err != nil {
		return fmt.Errorf("s3 put s3://%s/%s: %w", b.Name, key, err)
	}
	return nil
}

func (b S3Bucket) Get(ctx context.Context, key, versionID string) ([]byte, error) {
	in := &s3.GetObjectInput{Bucket: aws.String(b.Name), Key: aws.String(key)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	out, err := b.Client.GetObject(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("s3 get s3://%s/%s: %w", b.Name, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("s3 get s3://%s/%s: %w", b.Name, key, err)
	}
	return body, nil
}

func (b S3Bucket) Keys(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(b.Client, &s3.ListObjectsV2Input{Bucket: aws.String(b.Name), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("s3 list s3://%s/%s: %w", b.Name, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func (b S3Bucket) Versions(ctx context.Context, prefix string) ([]ObjectVersion, error) {
	var out []ObjectVersion
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(b.Name), Prefix: aws.String(prefix)}
	for {
		page, err := b.Client.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("s3 list versions s3://%s/%s: %w", b.Name, prefix, err)
		}
		for _, v := range page.Versions {
			out = append(out, ObjectVersion{Key: aws.ToString(v.Key), VersionID: aws.ToString(v.VersionId), LastModified: aws.ToTime(v.LastModified)})
		}
		for _, m := range page.DeleteMarkers {
			out = append(out, ObjectVersion{Key: aws.ToString(m.Key), VersionID: aws.ToString(m.VersionId), LastModified: aws.ToTime(m.LastModified), DeleteMarker: true})
		}
		if !aws.ToBool(page.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
	// Oldest first per key: S3 lists each key's versions newest first
	// (LastModified has only second resolution, so it cannot order them).
	// Delete markers, listed apart, go last.
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Key != out[j].Key {
			return out[i].Key < out[j].Key
		}
		return !out[i].DeleteMarker && out[j].DeleteMarker
	})
	for i := 0; i < len(out); {
		j := i
		for j < len(out) && out[j].Key == out[i].Key {
			j++
		}
		k := i
		for k < j && !out[k].DeleteMarker {
			k++
		}
		slices.Reverse(out[i:k])
		i = j
	}
	return out, nil
}

// KMSSigner signs with an asymmetric KMS key (kms:Sign).
type KMSSigner struct {
	Client *kms.Client
	Key    string // key id, ARN or alias
}

func (s KMSSigner) KeyID() string { return s.Key }

func (s KMSSigner) Sign(ctx context.Context, message []byte) ([]byte, error) {
	out, err := s.Client.Sign(ctx, &kms.SignInput{
		KeyId: aws.String(s.Key), Message: message, MessageType: kmstypes.MessageTypeRaw,
		SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256,
	})
	if err != nil {
		return nil, fmt.Errorf("kms sign with %s: %w", s.Key, err)
	}
	return out.Signature, nil
}

// KMSVerifier checks signatures with kms:Verify.
type KMSVerifier struct {
	Client *kms.Client
	Key    string
}

func (v KMSVerifier) Verify(ctx context.Context, message, signature []byte) error {
	out, err := v.Client.Verify(ctx, &kms.VerifyInput{
		KeyId: aws.String(v.Key), Message: message, MessageType: kmstypes.MessageTypeRaw,
		Signature: signature, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256,
	})
	var invalid *kmstypes.KMSInvalidSignatureException
	switch {
	case errors.As(err, &invalid):
		return errors.New("invalid signature")
	case err != nil:
		return fmt.Errorf("kms verify with %s: %w", v.Key, err)
	case !out.SignatureValid:
		return errors.New("invalid signature")
	}
	return nil
}

// PublicKeyVerifier checks signatures locally with the key's public half,
// as an auditor without any KMS permission would.
type PublicKeyVerifier struct{ Key *ecdsa.PublicKey }

func (v PublicKeyVerifier) Verify(_ context.Context, message, signature []byte) error {
	sum := sha256.Sum256(message)
	if !ecdsa.VerifyASN1(v.Key, sum[:], signature) {
		return errors.New("invalid signature")
	}
	return nil
}

// ParsePublicKey reads an ECDSA public key from DER (as kms:GetPublicKey
// returns it) or PEM ("PUBLIC KEY").
func ParsePublicKey(data []byte) (*ecdsa.PublicKey, error) {
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	k, err := x509.ParsePKIXPublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("not a DER or PEM public key: %w", err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("the public key is %T, not ECDSA (the signing key must be ECC_NIST_P256)", k)
	}
	return ec, nil
}

// FetchPublicKey reads the signing key's public half with kms:GetPublicKey.
func FetchPublicKey(ctx context.Context, c *kms.Client, key string) (*ecdsa.PublicKey, error) {
	out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("kms get-public-key %s: %w", key, err)
	}
	return ParsePublicKey(out.PublicKey)
}
