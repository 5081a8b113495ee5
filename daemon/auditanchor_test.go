package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/lakirotator/lakirotator/audit/anchor"
	"github.com/lakirotator/lakirotator/config"
	"github.com/lakirotator/lakirotator/daemon"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/testutil/motoanchor"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/rotator"
)

// The daemon configured with audit.anchor ships its records and signs a
// digest when it stops: the bucket then vouches for every record of the file.
func TestDaemonAnchorsItsAuditTrail(t *testing.T) {
	endpoint := motoserver.Start(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")
	s3c, kmsc, err := anchor.NewClients(ctx, anchor.AWSConfig{Region: motoserver.Region, Endpoint: endpoint, Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "daemon-audit"
	motoanchor.LockedBucket(t, s3c, bucket, 1)
	keyID := motoanchor.SigningKey(t, kmsc)

	w := newWorld(t, worldOptions{})
	w.cfgYAML = append(w.cfgYAML, []byte(fmt.Sprintf("  anchor:\n    bucket: %s\n    prefix: sandbox/\n    kms_key_id: %s\n    region: %s\n    endpoint: %s\n",
		bucket, keyID, motoserver.Region, endpoint))...)
	cfg, err := config.Parse(w.cfgPath, w.cfgYAML)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	svc, err := daemon.Build(ctx, cfg, daemon.BuildOptions{
		Clock: w.clk, LookupEnv: w.lookupEnv, Stdout: &w.stdout, AWSCredentials: creds,
		Stores:         map[laki.Environment]secretstore.Store{laki.Sandbox: w.store},
		RetireInterval: 24 * time.Hour, RefreshInterval: 24 * time.Hour, Hooks: rotator.Hooks{},
	})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	r := w.run(svc, w.ln)
	st, err := r.client.Trigger(ctx, httpapi.TriggerRequest{Secret: secCheckout, Cause: events.CauseManual, Requester: "ops@example", Reason: "routine"})
	if err != nil {
		t.Fatal(err)
	}
	if final := w.waitTrigger(r, st.ID); final.State != httpapi.StateSucceeded {
		t.Fatalf("rotation ended %s", final.State)
	}
	r.stop() // the shutdown digest

	pub, err := anchor.FetchPublicKey(ctx, kmsc, keyID)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(w.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := anchor.Verify(ctx, anchor.Options{Bucket: anchor.S3Bucket{Client: s3c, Name: bucket}, Prefix: "sandbox/",
		Verifier: anchor.PublicKeyVerifier{Key: pub}, File: f})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Findings) != 0 || rep.Digests == 0 || rep.AnchoredRecords != rep.FileRecords || rep.FileRecords < 5 {
		t.Errorf("after shutdown the bucket must vouch for every record of the file:\n%s", rep)
	}
}
