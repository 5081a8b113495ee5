// Package anchor makes the audit trail evident against someone who can
// write the audit file, as CloudTrail's log file integrity validation does:
// the records are shipped in batches to an S3 bucket under Object Lock
// (compliance mode), and every interval a digest (the range of sequence
// numbers, the last record's hash, the previous digest's hash, the time) is
// signed with an asymmetric KMS key the rotator may only Sign with. Verify
// checks a file, the bucket, or both against the digests with nothing but
// read access and the public key (or kms:Verify).
//
// The per-record hash chain in the file has no key: anyone who can write
// the file can recompute it. These signed digests are the trail's real
// anchor; what was written after the last digest is not anchored yet.
package anchor

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is the digest format this package writes.
const FormatVersion = 1

// SigningAlgorithm is the only algorithm used: ECDSA on NIST P-256 with
// SHA-256 (a KMS ECC_NIST_P256 key, ECDSA_SHA_256).
const SigningAlgorithm = "ECDSA_SHA_256"

// Digest vouches for the audit records up to LastSeq. Records FirstSeq to
// LastSeq (when FirstSeq > 0) are in the object RecordsKey; a digest with
// no new records still says where the chain stands, so a gap in digests
// is visible.
type Digest struct {
	Version         int        `json:"version"`
	Key             string     `json:"key"`    // this digest's object key: a digest copied to another key is caught
	Number          uint64     `json:"number"` // 1 for a stream's first digest, then one more each time
	Time            time.Time  `json:"digest_time"`
	IntervalSeconds int64      `json:"interval_seconds"`
	FirstSeq        uint64     `json:"first_seq,omitempty"`
	LastSeq         uint64     `json:"last_seq"`
	FirstTime       *time.Time `json:"first_record_time,omitempty"`
	LastTime        *time.Time `json:"last_record_time,omitempty"`
	LastHash        string     `json:"last_hash"` // line hash of record LastSeq
	RecordsKey      string     `json:"records_key,omitempty"`
	RecordsSHA256   string     `json:"records_sha256,omitempty"`
	PreviousKey     string     `json:"previous_digest_key,omitempty"`
	PreviousSHA256  string     `json:"previous_digest_sha256,omitempty"` // of the previous digest object's bytes
	SigningKeyID    string     `json:"signing_key_id"`
	Algorithm       string     `json:"signing_algorithm"`
}

// envelope is a digest object: the digest's exact bytes and the signature over them.
type envelope struct {
	Digest    json.RawMessage `json:"digest"`
	Signature string          `json:"signature"` // base64 DER ECDSA signature of SHA-256(digest)
}

// Signer signs digest bytes (KMS Sign, message type RAW).
type Signer interface {
	Sign(ctx context.Context, message []byte) (signature []byte, err error)
	KeyID() string
}

// SignatureVerifier checks a signature made by the Signer's key.
type SignatureVerifier interface {
	Verify(ctx context.Context, message, signature []byte) error
}

func sealDigest(ctx context.Context, d Digest, s Signer) ([]byte, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("signing digest %s: %w", d.Key, err)
	}
	return json.Marshal(envelope{Digest: raw, Signature: base64.StdEncoding.EncodeToString(sig)})
}

// openDigest parses a digest object and checks its signature.
func openDigest(ctx context.Context, body []byte, v SignatureVerifier) (Digest, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil || len(env.Digest) == 0 {
		return Digest{}, fmt.Errorf("not a digest object")
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signature)
	if err != nil || len(sig) == 0 {
		return Digest{}, fmt.Errorf("no signature")
	}
	if err := v.Verify(ctx, env.Digest, sig); err != nil {
		return Digest{}, fmt.Errorf("signature does not verify: %w", err)
	}
	var d Digest
	if err := json.Unmarshal(env.Digest, &d); err != nil {
		return Digest{}, fmt.Errorf("signed digest does not parse: %w", err)
	}
	return d, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Object keys: <prefix>streams/<stream>/digests/..., .../records/...
// Digest keys sort by time.
const (
	streamsDir = "streams/"
	digestsDir = "digests/"
	recordsDir = "records/"
)

// digestKey names a digest by its time and number: two digests in the same
// instant (a shutdown right after a scheduled one) still get two keys.
func digestKey(prefix string, at time.Time, number uint64) string {
	return fmt.Sprintf("%s%s%s-%020d.json", prefix, digestsDir, at.UTC().Format("20060102T150405.000000000Z"), number)
}

func recordsKey(prefix string, first, last uint64) string {
	return fmt.Sprintf("%s%s%020d-%020d.jsonl", prefix, recordsDir, first, last)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
