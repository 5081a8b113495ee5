package config

import (
	"regexp"
	"time"
)

// DefaultAuditAnchorInterval is how often a signed digest is written.
const DefaultAuditAnchorInterval = Duration(5 * time.Minute)

// AuditAnchorConfig ships the audit file's records to an S3 bucket under
// Object Lock and writes a KMS-signed digest every interval (and at
// shutdown), so that someone who can write the audit file cannot rewrite
// it unseen. See the README's "Verifying the audit trail".
type AuditAnchorConfig struct {
	// Bucket is the S3 bucket (Object Lock in compliance mode, versioning on).
	Bucket string `yaml:"bucket"`
	// Prefix is the key prefix of this audit file's records and digests:
	// one prefix per audit file (per environment, per replica).
	Prefix string `yaml:"prefix"`
	// KMSKeyID is the asymmetric signing key (ECC_NIST_P256, SIGN_VERIFY):
	// a key id, ARN or alias.
	KMSKeyID string `yaml:"kms_key_id"`
	// Interval between digests (default 5m, at least 1m).
	Interval Duration `yaml:"interval"`
	// Region of the bucket and key (default: AWS_REGION).
	Region string `yaml:"region"`
	// Endpoint replaces the AWS endpoints (tests); http only to loopback.
	Endpoint string `yaml:"endpoint"`
}

var (
	bucketRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	kmsKeyIDRE  = regexp.MustCompile(`^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=.@-]+|alias/[A-Za-z0-9/_-]+|[0-9a-fA-F-]{36}|mrk-[0-9a-f]{32})$`)
	keyPrefixRE = regexp.MustCompile(`^[A-Za-z0-9!_.*'()/-]{0,512}$`)
)

func (v *validator) auditAnchor() {
	a := v.c.Audit.Anchor
	if a == nil {
		return
	}
	const p = "audit.anchor"
	if v.c.Audit.File == "" {
		v.ps.add(p, "needs audit.file: the digests vouch for the records of the audit file")
	}
	if !bucketRE.MatchString(a.Bucket) {
		v.ps.add(p+".bucket", "%q is not an S3 bucket name (3-63 of a-z 0-9 . -)", a.Bucket)
	}
	if !keyPrefixRE.MatchString(a.Prefix) {
		v.ps.add(p+".prefix", "%q is not an S3 key prefix (letters, digits and !_.*'()/-)", a.Prefix)
	}
	if !kmsKeyIDRE.MatchString(a.KMSKeyID) {
		v.ps.add(p+".kms_key_id", "%q is not a KMS key id, key ARN or alias (alias/name)", a.KMSKeyID)
	}
	v.durationAtLeast(p+".interval", a.Interval, Duration(time.Minute))
	if a.Region != "" && !regionRE.MatchString(a.Region) {
		v.ps.add(p+".region", "%q is not an AWS region such as eu-west-1", a.Region)
	}
	v.url(p+".endpoint", a.Endpoint, false)
}
