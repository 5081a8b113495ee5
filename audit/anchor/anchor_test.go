package anchor_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/audit/anchor"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/testutil/motoanchor"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// These tests run against moto_server 5.2.1 (S3 with Object Lock, KMS with
// an ECC_NIST_P256 SIGN_VERIFY key), started as the store tests start it.
// Checked there and leaned on: a put to an Object Lock bucket without a
// checksum header is refused (MissingUploadObjectWithObjectLockHeaders, as
// AWS); deleting a locked version is refused (AccessDenied); a put to a
// locked key adds a version; a delete without a version id adds a delete
// marker; a bucket policy's Deny is enforced; kms:Sign (RAW, ECDSA_SHA_256)
// gives DER signatures that the public key from GetPublicKey verifies.
// Where moto differs from AWS:
//   - ListObjectVersions gives LastModified to the second only (AWS: to the
//     millisecond), so versions of one key cannot be ordered by time; both
//     list each key's versions newest first, and S3Bucket relies on that.
//   - started as here (no authentication), moto does not evaluate IAM
//     policies: the rotator's and auditors' least privilege is checked
//     against the code by terraform/iam_test.go.
//   - no test here depends on Object Lock retention running out.
var moto motoserver.Shared

func TestMain(m *testing.M) { os.Exit(moto.Run(m)) }

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var bucketN atomic.Int64

// fixture is one audit file shipped to its own Object Lock bucket on moto,
// signed with its own ECC_NIST_P256 KMS key.
type fixture struct {
	t       *testing.T
	clk     *clock.Fake
	path    string
	writer  *audit.Writer
	sink    *audit.FileSink
	s3      *s3.Client
	kms     *kms.Client
	bucket  anchor.S3Bucket
	keyID   string
	pub     *ecdsa.PublicKey
	shipper *anchor.Shipper
	n       int
}

const prefix = "lakirotator/production/"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	s3c, kmsc, err := anchor.NewClients(ctx, anchor.AWSConfig{
		Region: motoserver.Region, Endpoint: moto.Endpoint(t),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, ""),
	})
	require.NoError(t, err)
	name := fmt.Sprintf("audit-anchor-%d-%d", os.Getpid(), bucketN.Add(1))
	motoanchor.LockedBucket(t, s3c, name, 365)
	keyID := motoanchor.SigningKey(t, kmsc)
	pub, err := anchor.FetchPublicKey(ctx, kmsc, keyID)
	require.NoError(t, err)

	clk := clock.NewFake(t0)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFileSinkWith(path, audit.FileOptions{Clock: clk})
	require.NoError(t, err)
	t.Cleanup(func() { sink.Close() })
	f := &fixture{
		t: t, clk: clk, path: path, sink: sink, writer: audit.NewWriter(clk, nil, sink),
		s3: s3c, kms: kmsc, bucket: anchor.S3Bucket{Client: s3c, Name: name}, keyID: keyID, pub: pub,
	}
	f.shipper = &anchor.Shipper{File: path, Bucket: f.bucket, Prefix: prefix, Signer: anchor.KMSSigner{Client: kmsc, Key: keyID},
		Interval: 5 * time.Minute, Clock: clk}
	return f
}

// write appends n records, a second apart.
func (f *fixture) write(n int) {
	f.t.Helper()
	for range n {
		f.n++
		f.clk.Advance(time.Second)
		require.NoError(f.t, f.writer.Append(context.Background(), events.Event{
			Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Severity: events.SeverityInfo,
			Secret: fmt.Sprintf("prod/app-%d", f.n), Cause: events.CauseScheduled, Actor: "scheduler", KeyID: fmt.Sprintf("key_%04d", f.n),
		}))
	}
}

// digest moves to the next interval and writes a digest.
func (f *fixture) digest() {
	f.t.Helper()
	f.clk.Advance(5 * time.Minute)
	require.NoError(f.t, f.shipper.Tick(context.Background()))
}

// stream is the key prefix the file is shipped under.
func (f *fixture) stream() string {
	f.t.Helper()
	info, err := audit.ParseLine([]byte(f.lines()[0]))
	require.NoError(f.t, err)
	return anchor.StreamPrefix(prefix, info)
}

func (f *fixture) lines() []string {
	f.t.Helper()
	data, err := os.ReadFile(f.path)
	require.NoError(f.t, err)
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func (f *fixture) verify(file []string, v anchor.SignatureVerifier) anchor.Report {
	f.t.Helper()
	if v == nil {
		v = anchor.PublicKeyVerifier{Key: f.pub}
	}
	o := anchor.Options{Bucket: f.bucket, BucketName: f.bucket.Name, Prefix: prefix, Verifier: v, Now: f.clk.Now()}
	if file != nil {
		o.File = strings.NewReader(strings.Join(file, "\n") + "\n")
		o.FileName = "audit.jsonl"
	}
	rep, err := anchor.Verify(context.Background(), o)
	require.NoError(f.t, err)
	return rep
}

// standard writes 20 records over three digests, and 2 more not yet digested.
func standard(t *testing.T) *fixture {
	f := newFixture(t)
	f.write(8)
	f.digest()
	f.digest() // an interval with no new records still gets a digest
	f.write(12)
	f.digest()
	f.write(2)
	return f
}

// failures are the findings that are not warnings, as "kind seq-seq".
func failures(rep anchor.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		if !f.Warning {
			out = append(out, fmt.Sprintf("%s %d-%d", f.Kind, f.FirstSeq, f.LastSeq))
		}
	}
	return out
}

func findKind(rep anchor.Report, kind string) *anchor.Finding {
	for i := range rep.Findings {
		if rep.Findings[i].Kind == kind {
			return &rep.Findings[i]
		}
	}
	return nil
}

// forgeChain rewrites lines[from:] the way an attacker holding this code
// would: fields as given, seq and hashes recomputed to chain.
func forgeChain(t *testing.T, lines []string, from int) []string {
	t.Helper()
	out := append([]string(nil), lines[:from]...)
	head := audit.Head{}
	if from > 0 {
		info, err := audit.ParseLine([]byte(lines[from-1]))
		require.NoError(t, err)
		head = audit.Head{Seq: info.Seq, Hash: info.Hash}
	}
	for _, l := range lines[from:] {
		var r audit.Record
		require.NoError(t, json.Unmarshal([]byte(l), &r))
		line, next, err := audit.EncodeRecord(head, r.Time, r.Event)
		require.NoError(t, err)
		out = append(out, string(line))
		head = next
	}
	return out
}

func TestIntactTrailVerifiesWithPublicKeyAndWithKMSVerify(t *testing.T) {
	f := standard(t)
	for name, v := range map[string]anchor.SignatureVerifier{
		"public key": nil, "kms:Verify": anchor.KMSVerifier{Client: f.kms, Key: f.keyID},
	} {
		t.Run(name, func(t *testing.T) {
			rep := f.verify(f.lines(), v)
			assert.True(t, rep.OK, rep.String())
			assert.Empty(t, failures(rep))
			assert.Equal(t, 3, rep.Digests)
			assert.Equal(t, 20, rep.AnchoredRecords)
			assert.Equal(t, uint64(20), rep.LastAnchoredSeq)
			assert.Equal(t, 22, rep.FileRecords)
			u := findKind(rep, anchor.KindUnanchored)
			require.NotNil(t, u, "the last two records are not anchored yet")
			assert.Equal(t, []uint64{21, 22}, []uint64{u.FirstSeq, u.LastSeq})
		})
	}
	// The next digest, e.g. at shutdown, anchors them.
	f.digest()
	rep := f.verify(f.lines(), nil)
	assert.True(t, rep.OK, rep.String())
	assert.Nil(t, findKind(rep, anchor.KindUnanchored))
	assert.Equal(t, 22, rep.AnchoredRecords)
}

func TestObjectLockRefusesDeletingAShippedObject(t *testing.T) {
	f := standard(t)
	ctx := context.Background()
	out, err := f.s3.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(f.bucket.Name), Prefix: aws.String(f.stream() + "digests/")})
	require.NoError(t, err)
	require.NotEmpty(t, out.Versions)
	v := out.Versions[0]
	_, err = f.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(f.bucket.Name), Key: v.Key, VersionId: v.VersionId})
	require.Error(t, err, "compliance-mode Object Lock must refuse deleting a locked version")
	assert.Contains(t, err.Error(), "AccessDenied")
}

func TestVerifyCatchesEachTampering(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, lines []string) []string
		want   []string // failures, "kind first-last"
		check  func(t *testing.T, rep anchor.Report)
	}{
		{
			name: "edit in place",
			tamper: func(t *testing.T, l []string) []string {
				l[4] = strings.Replace(l[4], `"actor":"scheduler"`, `"actor":"mallory"`, 1)
				return l
			},
			want: []string{"edited 5-0"},
		},
		{
			name: "edit and recompute the chain",
			tamper: func(t *testing.T, l []string) []string {
				l[4] = strings.Replace(l[4], `"actor":"scheduler"`, `"actor":"mallory"`, 1)
				return forgeChain(t, l, 4)
			},
			want: []string{"edited 5-0", "rechained 6-20"},
		},
		{
			name: "reorder",
			tamper: func(t *testing.T, l []string) []string {
				l[9], l[10] = l[10], l[9]
				return l
			},
			want: []string{"reordered 10-0"},
		},
		{
			name: "insert",
			tamper: func(t *testing.T, l []string) []string {
				extra := strings.Replace(l[2], `"prod/app-3"`, `"prod/app-x"`, 1)
				out := append(append(append([]string(nil), l[:3]...), extra), l[3:]...)
				return forgeChain(t, out, 3)
			},
			check: func(t *testing.T, rep anchor.Report) {
				ins := findKind(rep, anchor.KindInserted)
				require.NotNil(t, ins, rep.String())
				assert.Equal(t, uint64(4), ins.FirstSeq, "the inserted record claims seq 4")
				assert.Equal(t, 4, ins.Line)
				assert.NotNil(t, findKind(rep, anchor.KindRechained), "the records after it were renumbered")
				assert.Nil(t, findKind(rep, anchor.KindDeleted), rep.String())
			},
		},
		{
			name: "delete a middle range and recompute",
			tamper: func(t *testing.T, l []string) []string {
				out := append(append([]string(nil), l[:4]...), l[9:]...)
				return forgeChain(t, out, 4)
			},
			check: func(t *testing.T, rep anchor.Report) {
				d := findKind(rep, anchor.KindDeleted)
				require.NotNil(t, d, rep.String())
				assert.Equal(t, []uint64{5, 9}, []uint64{d.FirstSeq, d.LastSeq})
				require.NotNil(t, d.FirstTime)
				assert.Equal(t, t0.Add(5*time.Second), *d.FirstTime, "the deleted range is named with its times")
				assert.Equal(t, t0.Add(10*time.Minute+9*time.Second), *d.LastTime, "seq 9 was written after two digests")
			},
		},
		{
			name: "delete the tail",
			tamper: func(t *testing.T, l []string) []string {
				return l[:16] // seq 17-20 were anchored; 21-22 were not
			},
			check: func(t *testing.T, rep anchor.Report) {
				d := findKind(rep, anchor.KindDeleted)
				require.NotNil(t, d, rep.String())
				assert.Equal(t, []uint64{17, 20}, []uint64{d.FirstSeq, d.LastSeq})
				assert.Contains(t, d.Detail, "tail")
				assert.Equal(t, []string{"deleted 17-20"}, failures(rep))
			},
		},
	}
	f := standard(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := f.verify(tc.tamper(t, f.lines()), nil)
			assert.False(t, rep.OK, rep.String())
			if tc.want != nil {
				assert.Equal(t, tc.want, failures(rep), rep.String())
			}
			if tc.check != nil {
				tc.check(t, rep)
			}
		})
	}
}

func TestVerifyCatchesASwappedDigest(t *testing.T) {
	f := standard(t)
	ctx := context.Background()
	keys, err := f.bucket.Keys(ctx, f.stream()+"digests/")
	require.NoError(t, err)
	require.Len(t, keys, 3)
	first, err := f.bucket.Get(ctx, keys[0], "")
	require.NoError(t, err)
	// Object Lock keeps the original version; a swap can only add a version.
	require.NoError(t, f.bucket.Put(ctx, keys[2], first))
	rep := f.verify(f.lines(), nil)
	assert.False(t, rep.OK)
	ow := findKind(rep, anchor.KindOverwritten)
	require.NotNil(t, ow, rep.String())
	assert.Equal(t, keys[2], ow.Object)
	// The original (first) version still vouches for the records.
	assert.Equal(t, 20, rep.AnchoredRecords)

	// A view of the bucket that only has the latest versions (a copy made
	// by someone who could swap objects) catches the swap by key.
	rep = f.verifyView(latestOnly{f.bucket}, f.lines())
	sw := findKind(rep, anchor.KindDigestSwapped)
	require.NotNil(t, sw, rep.String())
	assert.Equal(t, keys[2], sw.Object)
	assert.False(t, rep.OK)
	assert.NotNil(t, findKind(rep, anchor.KindUnreferencedBatch), "records 9-20 lose their digest: %s", rep)
}

func (f *fixture) verifyView(b anchor.Bucket, file []string) anchor.Report {
	f.t.Helper()
	o := anchor.Options{Bucket: b, BucketName: f.bucket.Name, Prefix: prefix, Verifier: anchor.PublicKeyVerifier{Key: f.pub}, Now: f.clk.Now()}
	if file != nil {
		o.File = strings.NewReader(strings.Join(file, "\n") + "\n")
	}
	rep, err := anchor.Verify(context.Background(), o)
	require.NoError(f.t, err)
	return rep
}

// latestOnly shows only each object's latest version.
type latestOnly struct{ anchor.S3Bucket }

func (b latestOnly) Versions(ctx context.Context, p string) ([]anchor.ObjectVersion, error) {
	all, err := b.S3Bucket.Versions(ctx, p)
	if err != nil {
		return nil, err
	}
	latest := map[string]anchor.ObjectVersion{}
	var order []string
	for _, v := range all {
		if _, ok := latest[v.Key]; !ok {
			order = append(order, v.Key)
		}
		latest[v.Key] = v // oldest first: the last one wins
	}
	var out []anchor.ObjectVersion
	for _, k := range order {
		out = append(out, latest[k])
	}
	return out, nil
}

// hiding hides the objects whose key contains a substring. Compliance-mode
// Object Lock stops anyone deleting a digest (see
// TestObjectLockRefusesDeletingAShippedObject); this models a copy of the
// bucket handed to the auditor with objects left out.
type hiding struct {
	anchor.S3Bucket
	hide string
}

func (b hiding) Versions(ctx context.Context, p string) ([]anchor.ObjectVersion, error) {
	all, err := b.S3Bucket.Versions(ctx, p)
	var out []anchor.ObjectVersion
	for _, v := range all {
		if !strings.Contains(v.Key, b.hide) {
			out = append(out, v)
		}
	}
	return out, err
}

func (b hiding) Keys(ctx context.Context, p string) ([]string, error) {
	all, err := b.S3Bucket.Keys(ctx, p)
	var out []string
	for _, k := range all {
		if !strings.Contains(k, b.hide) {
			out = append(out, k)
		}
	}
	return out, err
}

func TestVerifyReportsMissingDigestsAndBatches(t *testing.T) {
	f := standard(t)
	ctx := context.Background()
	keys, err := f.bucket.Keys(ctx, f.stream()+"digests/")
	require.NoError(t, err)
	// Hide the third digest (records 9-20).
	hidden := strings.TrimPrefix(keys[2], f.stream()+"digests/")
	rep := f.verifyView(hiding{f.bucket, hidden}, f.lines())
	assert.False(t, rep.OK)
	assert.NotNil(t, findKind(rep, anchor.KindUnreferencedBatch), rep.String())
	// With the third digest gone, the last one is the second (no records);
	// the file's records 9-22 are not anchored.
	u := findKind(rep, anchor.KindUnanchored)
	require.NotNil(t, u, rep.String())
	assert.Equal(t, uint64(9), u.FirstSeq)

	f.digest() // a fourth digest that names the hidden third
	rep = f.verifyView(hiding{f.bucket, hidden}, f.lines())
	md := findKind(rep, anchor.KindMissingDigest)
	require.NotNil(t, md, rep.String())
	assert.Equal(t, keys[2], md.Object)
	assert.Equal(t, []uint64{9, 20}, []uint64{md.FirstSeq, md.LastSeq})
	mb := findKind(rep, anchor.KindMissingBatch)
	require.NotNil(t, mb, rep.String())
	assert.Equal(t, []uint64{9, 20}, []uint64{mb.FirstSeq, mb.LastSeq})

	// Hiding a records object: the digest names it, the bucket lacks it.
	rep = f.verifyView(hiding{f.bucket, "records/00000000000000000001-"}, nil)
	mb = findKind(rep, anchor.KindMissingBatch)
	require.NotNil(t, mb, rep.String())
	assert.Equal(t, []uint64{1, 8}, []uint64{mb.FirstSeq, mb.LastSeq})
}

func TestVerifyCatchesAForgedDigestAndAnEditedBatch(t *testing.T) {
	f := standard(t)
	ctx := context.Background()
	// A digest signed with another key (the attacker's) is refused.
	other, err := f.kms.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	require.NoError(t, err)
	forger := &anchor.Shipper{File: f.path, Bucket: f.bucket, Prefix: prefix, Interval: 5 * time.Minute, Clock: f.clk,
		Signer: anchor.KMSSigner{Client: f.kms, Key: aws.ToString(other.KeyMetadata.KeyId)}}
	f.clk.Advance(time.Minute)
	require.NoError(t, forger.Tick(ctx))
	keys, err := f.bucket.Keys(ctx, f.stream()+"digests/")
	require.NoError(t, err)
	require.Len(t, keys, 4)
	rep := f.verify(f.lines(), nil)
	bad := findKind(rep, anchor.KindBadSignature)
	require.NotNil(t, bad, rep.String())
	assert.Contains(t, bad.Detail, "signature")
	assert.False(t, rep.OK)

	// An edited records object (a new version over the locked one) does
	// not match its digest; the original version is still checked.
	g := standard(t)
	k := g.stream() + "records/" + fmt.Sprintf("%020d-%020d.jsonl", 1, 8)
	body, err := g.bucket.Get(ctx, k, "")
	require.NoError(t, err)
	require.NoError(t, g.bucket.Put(ctx, k, []byte(strings.Replace(string(body), "scheduler", "mallory", 1))))
	rep = g.verifyView(latestOnly{g.bucket}, nil)
	be := findKind(rep, anchor.KindBatchEdited)
	require.NotNil(t, be, rep.String())
	assert.Equal(t, []uint64{1, 8}, []uint64{be.FirstSeq, be.LastSeq})
	rep = g.verify(nil, nil)
	assert.NotNil(t, findKind(rep, anchor.KindOverwritten), rep.String())
	assert.Nil(t, findKind(rep, anchor.KindBatchEdited), "the locked first version still matches")
}

func TestBucketAloneWhenTheFileIsGone(t *testing.T) {
	f := standard(t)
	f.digest()
	lines := f.lines()
	require.NoError(t, os.Remove(f.path))
	rep := f.verify(nil, nil)
	assert.True(t, rep.OK, rep.String())
	assert.Equal(t, 22, rep.AnchoredRecords, "every record can be read back from the bucket")
	assert.Empty(t, failures(rep))

	// A file whose first records were cut is still matched to its stream
	// (by the records it shares with it), and the cut is named.
	rep = f.verify(lines[5:], nil)
	d := findKind(rep, anchor.KindDeleted)
	require.NotNil(t, d, rep.String())
	assert.Equal(t, []uint64{1, 5}, []uint64{d.FirstSeq, d.LastSeq})
}

func TestShipperResumesTheDigestChainAfterRestart(t *testing.T) {
	f := standard(t)
	// A new process: a new shipper on the same file and bucket.
	f.shipper = &anchor.Shipper{File: f.path, Bucket: f.bucket, Prefix: prefix, Signer: anchor.KMSSigner{Client: f.kms, Key: f.keyID},
		Interval: 5 * time.Minute, Clock: f.clk}
	f.write(3)
	f.digest()
	rep := f.verify(f.lines(), nil)
	assert.True(t, rep.OK, rep.String())
	assert.Equal(t, 25, rep.AnchoredRecords)
	assert.Nil(t, findKind(rep, anchor.KindMissingDigest))
}

func TestStaleDigestsAreReported(t *testing.T) {
	f := standard(t)
	f.clk.Advance(time.Hour)
	rep := f.verify(f.lines(), nil)
	s := findKind(rep, anchor.KindStale)
	require.NotNil(t, s, rep.String())
	assert.True(t, s.Warning)
}

// Object Lock lets anyone with s3:DeleteObject put a delete marker (the
// module's bucket policy denies it; moto evaluates a bucket policy's Deny,
// but this test checks what the verifier does when one got through). The
// shipper, listing current keys, would no longer see the digest; the
// verifier lists every version and reports the marker.
func TestVerifyReportsADeleteMarker(t *testing.T) {
	f := standard(t)
	ctx := context.Background()
	keys, err := f.bucket.Keys(ctx, f.stream()+"digests/")
	require.NoError(t, err)
	_, err = f.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(f.bucket.Name), Key: aws.String(keys[2])})
	require.NoError(t, err, "a delete without a version id is a delete marker, which Object Lock allows")
	rep := f.verify(f.lines(), nil)
	h := findKind(rep, anchor.KindHidden)
	require.NotNil(t, h, rep.String())
	assert.Equal(t, keys[2], h.Object)
	assert.False(t, rep.OK)
	assert.Equal(t, 20, rep.AnchoredRecords, "the locked version still vouches for its records")
}

// sibling is another audit file (a second replica, or a new task with a
// fresh file) shipped to the same bucket, prefix and key as f.
func (f *fixture) sibling() *fixture {
	f.t.Helper()
	path := filepath.Join(f.t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFileSinkWith(path, audit.FileOptions{Clock: f.clk})
	require.NoError(f.t, err)
	f.t.Cleanup(func() { sink.Close() })
	g := *f
	g.path, g.sink, g.writer, g.n = path, sink, audit.NewWriter(f.clk, nil, sink), 1000
	g.shipper = &anchor.Shipper{File: path, Bucket: f.bucket, Prefix: prefix, Signer: anchor.KMSSigner{Client: f.kms, Key: f.keyID},
		Interval: 5 * time.Minute, Clock: f.clk}
	return &g
}

func TestEachAuditFileIsItsOwnStream(t *testing.T) {
	f := standard(t)
	g := f.sibling() // two replicas writing at once, each its own file from seq 1
	g.write(5)
	g.digest()
	f.write(1)
	f.digest()
	for _, x := range []*fixture{f, g} {
		rep := x.verify(x.lines(), nil)
		assert.True(t, rep.OK, rep.String())
		assert.Equal(t, 2, rep.Streams)
		assert.Equal(t, x.stream(), prefix+"streams/"+rep.FileStream+"/")
		assert.Nil(t, findKind(rep, anchor.KindOverwritten), "the two files' records never share a key: %s", rep)
		assert.Nil(t, findKind(rep, anchor.KindUnanchored), rep.String())
	}
	rep := f.verify(nil, nil)
	assert.True(t, rep.OK, rep.String())
	assert.Equal(t, 23+5, rep.AnchoredRecords)
}

// Someone edits the first record while the rotator is stopped: on restart
// the file looks new and is shipped again as a new stream. The records it
// shares with the first shipping give it away.
func TestAReshippedFileIsCaught(t *testing.T) {
	f := standard(t)
	f.digest()
	lines := f.lines()
	lines[0] = strings.Replace(lines[0], `"actor":"scheduler"`, `"actor":"mallory"`, 1)
	require.NoError(t, os.WriteFile(f.path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	f.clk.Advance(time.Hour)
	restarted := &anchor.Shipper{File: f.path, Bucket: f.bucket, Prefix: prefix, Signer: anchor.KMSSigner{Client: f.kms, Key: f.keyID},
		Interval: 5 * time.Minute, Clock: f.clk}
	require.NoError(t, restarted.Tick(context.Background()))

	rep := f.verify(lines, nil)
	assert.False(t, rep.OK, rep.String())
	r := findKind(rep, anchor.KindReshipped)
	require.NotNil(t, r, rep.String())
	assert.Equal(t, []uint64{2, 22}, []uint64{r.FirstSeq, r.LastSeq})
	assert.NotNil(t, findKind(rep, anchor.KindLateAnchored), rep.String())
}

// Records after the last digest stay "not anchored yet" when a deletion
// before them renumbered them; one appended out of sequence is caught.
func TestUnanchoredTailAfterTampering(t *testing.T) {
	f := standard(t)
	l := f.lines()
	out := forgeChain(t, append(append([]string(nil), l[:4]...), l[9:]...), 4)
	rep := f.verify(out, nil)
	assert.Equal(t, []string{"deleted 5-9", "rechained 10-20"}, failures(rep), rep.String())
	u := findKind(rep, anchor.KindUnanchored)
	require.NotNil(t, u, rep.String())
	assert.Equal(t, []uint64{16, 17}, []uint64{u.FirstSeq, u.LastSeq}, "the last two records, renumbered")

	// A well-formed record for seq 5 (hashes recomputed), appended at the end.
	edited := strings.Replace(l[4], `"actor":"scheduler"`, `"actor":"mallory"`, 1)
	forged := forgeChain(t, []string{l[3], edited}, 1)[1]
	rep = f.verify(append(append([]string(nil), l...), forged), nil)
	ins := findKind(rep, anchor.KindInserted)
	require.NotNil(t, ins, rep.String())
	assert.Equal(t, 23, ins.Line)
}

// A shutdown digest right after a scheduled one, in the same instant and
// with no record between, gets its own key: nothing is written over.
func TestTwoDigestsInOneInstant(t *testing.T) {
	f := standard(t)
	f.digest()
	require.NoError(t, f.shipper.Tick(context.Background()))
	rep := f.verify(f.lines(), nil)
	assert.True(t, rep.OK, rep.String())
	assert.Equal(t, 5, rep.Digests)
	assert.Nil(t, findKind(rep, anchor.KindOverwritten), rep.String())
}
