package cli_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/audit/anchor"
	"github.com/lakirotator/lakirotator/cli"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/testutil/motoanchor"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// verifyReport is the JSON of audit verify -o json, as a script reads it.
type verifyReport struct {
	OK              bool   `json:"ok"`
	Digests         int    `json:"digests"`
	AnchoredRecords int    `json:"anchored_records"`
	FileRecords     int    `json:"file_records"`
	LastAnchoredSeq uint64 `json:"last_anchored_seq"`
	Findings        []struct {
		Kind      string  `json:"kind"`
		FirstSeq  uint64  `json:"first_seq"`
		LastSeq   uint64  `json:"last_seq"`
		FirstTime *string `json:"first_time"`
		Warning   bool    `json:"warning"`
	} `json:"findings"`
}

func parseReport(t *testing.T, r result) verifyReport {
	t.Helper()
	var rep verifyReport
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil {
		t.Fatalf("audit verify -o json printed no JSON (%v):\n%s\n%s", err, r.out, r.err)
	}
	if rep.Findings == nil {
		t.Fatalf("findings is null, want a list:\n%s", r.out)
	}
	return rep
}

func TestAuditVerifyAgainstTheBucketAsAnAuditor(t *testing.T) {
	endpoint := motoserver.Start(t)
	// The auditor's credentials: any do on moto; the CLI reads them from
	// the environment as the SDK does.
	t.Setenv("AWS_ACCESS_KEY_ID", motoserver.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", motoserver.SecretAccessKey)
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	ctx := context.Background()
	s3c, kmsc, err := anchor.NewClients(ctx, anchor.AWSConfig{Region: motoserver.Region, Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	const bucket, prefix = "acme-lakirotator-audit", "production/"
	motoanchor.LockedBucket(t, s3c, bucket, 30)
	keyID := motoanchor.SigningKey(t, kmsc)

	dir := t.TempDir()
	file := filepath.Join(dir, "audit.jsonl")
	// Recent enough that the digests are not stale for the CLI's real clock.
	clk := clock.NewFake(time.Now().UTC().Add(-11 * time.Minute).Truncate(time.Second))
	sink, err := audit.OpenFileSink(file)
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	w := audit.NewWriter(clk, nil, sink)
	sh := &anchor.Shipper{File: file, Bucket: anchor.S3Bucket{Client: s3c, Name: bucket}, Prefix: prefix,
		Signer: anchor.KMSSigner{Client: kmsc, Key: keyID}, Interval: 5 * time.Minute, Clock: clk}
	for i := 1; i <= 6; i++ {
		clk.Advance(time.Second)
		if err := w.Append(ctx, events.Event{Step: events.StepRotation, Outcome: events.OutcomeSucceeded, Secret: fmt.Sprintf("app/%d", i), Actor: "scheduler"}); err != nil {
			t.Fatal(err)
		}
		if i == 3 || i == 6 {
			clk.Advance(5 * time.Minute)
			if err := sh.Tick(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The auditor has the public key (from kms get-public-key), not kms:Sign.
	pub, err := anchor.FetchPublicKey(ctx, kmsc, keyID)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "audit-key.pem")
	if err := os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	anchorFlags := []string{"--bucket", bucket, "--prefix", prefix, "--region", motoserver.Region, "--endpoint", endpoint}

	r := run(nil, append([]string{"audit", "verify", file, "--public-key", pubFile, "-o", "json"}, anchorFlags...)...)
	if r.code != cli.ExitOK {
		t.Fatalf("audit verify of the intact trail: exit %d\n%s\n%s", r.code, r.out, r.err)
	}
	rep := parseReport(t, r)
	if !rep.OK || rep.Digests != 2 || rep.AnchoredRecords != 6 || rep.FileRecords != 6 || len(rep.Findings) != 0 {
		t.Errorf("intact trail report = %+v, want ok, 2 digests, 6 anchored, 6 in the file, no findings", rep)
	}

	// Someone who can write the file cuts its last two records.
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	cut := filepath.Join(dir, "cut.jsonl")
	if err := os.WriteFile(cut, []byte(strings.Join(lines[:4], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := run(nil, "audit", "verify", cut); r.code != cli.ExitOK {
		t.Errorf("the file alone cannot show a cut tail (exit %d); that is why the bucket is needed:\n%s", r.code, r.out)
	}
	r = run(nil, append([]string{"audit", "verify", cut, "--kms-key", keyID, "-o", "json"}, anchorFlags...)...)
	if r.code != cli.ExitFailure {
		t.Fatalf("audit verify of a cut trail against the bucket: exit %d, want 1\n%s\n%s", r.code, r.out, r.err)
	}
	rep = parseReport(t, r)
	if rep.OK || len(rep.Findings) != 1 || rep.Findings[0].Kind != "deleted" || rep.Findings[0].FirstSeq != 5 || rep.Findings[0].LastSeq != 6 || rep.Findings[0].FirstTime == nil {
		t.Errorf("cut trail report = %+v, want one deleted finding for seq 5-6 with its time", rep)
	}
	// The same in the table output, for a person.
	r = run(nil, append([]string{"audit", "verify", cut, "--public-key", pubFile}, anchorFlags...)...)
	if r.code != cli.ExitFailure || !strings.Contains(r.out, "deleted") || !strings.Contains(r.out, "seq 5-6") {
		t.Errorf("table output of a cut trail: exit %d\n%s", r.code, r.out)
	}

	// The bucket alone, as if the file were gone.
	r = run(nil, append([]string{"audit", "verify", "--public-key", pubFile, "-o", "json"}, anchorFlags...)...)
	if rep := parseReport(t, r); r.code != cli.ExitOK || rep.AnchoredRecords != 6 {
		t.Errorf("bucket-only verify: exit %d, report %+v", r.code, rep)
	}

	// Usage errors name the flag.
	if r := run(nil, append([]string{"audit", "verify", file}, anchorFlags...)...); r.code != cli.ExitUsage || !strings.Contains(r.err, "--public-key") {
		t.Errorf("--bucket without a key: exit %d, %s", r.code, r.err)
	}
	if r := run(nil, "audit", "verify"); r.code != cli.ExitUsage {
		t.Errorf("audit verify with nothing to verify: exit %d", r.code)
	}
}

func TestAuditVerifyFileOnlyJSON(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.jsonl")
	sink, err := audit.OpenFileSink(file)
	if err != nil {
		t.Fatal(err)
	}
	w := audit.NewWriter(clock.NewFake(time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)), nil, sink)
	for i := range 3 {
		if err := w.Append(context.Background(), events.Event{Step: events.StepCreate, Secret: fmt.Sprintf("app/%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	sink.Close()
	r := run(nil, "audit", "verify", file, "-o", "json")
	if r.code != cli.ExitOK {
		t.Fatalf("exit %d: %s %s", r.code, r.out, r.err)
	}
	rep := parseReport(t, r)
	if !rep.OK || rep.FileRecords != 3 || len(rep.Findings) != 1 || rep.Findings[0].Kind != "unanchored" || !rep.Findings[0].Warning {
		t.Errorf("file-only report = %+v, want ok, 3 records and one unanchored warning", rep)
	}
}
