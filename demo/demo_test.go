package demo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/demo"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/providers/localstore"
	"github.com/lakirotator/lakirotator/providers/secretstore"
	"github.com/lakirotator/lakirotator/providers/secretstore/storetest"
)

func TestDemoRotatesEverySecretAndHandlesAnExposure(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 15 s")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	var out, errb syncbuf.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := demo.Run(ctx, demo.Options{
		Dir: dir, Listen: "127.0.0.1:0", Out: &out, Err: &errb,
		Schedule: "@every 2s", Grace: time.Second, ExposeAfter: 4 * time.Second, RetireInterval: time.Second,
	})
	if err != nil {
		t.Fatalf("demo: %v\nstderr:\n%s", err, errb.String())
	}

	checkTrailVerifies(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := audit.ReadRecords(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rotated := map[string]int{}
	compromised := map[string]int{}
	for _, r := range recs {
		e := r.Event
		if e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded {
			rotated[e.Secret]++
			if e.Cause == events.CauseCompromise {
				compromised[e.Secret]++
			}
		}
		// With a 2 s schedule the exposed key may have become the previous
		// one by the time the event arrives: then it is revoked at once and
		// nothing rotates. Either way the exposure is answered once.
		if e.Step == events.StepAlert && e.Details["reason"] == "exposed_old_key_revoked" {
			compromised[e.Secret]++
		}
	}
	for _, name := range []string{"demo/sandbox/checkout", "demo/sandbox/reporting", "demo/sandbox/orders-webhook", "demo/production/checkout", "demo/production/refunds"} {
		if rotated[name] == 0 {
			t.Errorf("no successful rotation of %s in 15 s (rotations: %v)", name, rotated)
		}
	}
	if compromised["demo/production/checkout"] != 1 {
		t.Errorf("the exposure of demo/production/checkout was answered %d times (compromise rotation, or revocation of the old key), want 1", compromised["demo/production/checkout"])
		for _, r := range recs {
			if r.Event.Step == events.StepAuth || r.Event.Source == events.SourceLakiEvent || r.Event.Cause == events.CauseCompromise {
				t.Logf("%+v", r.Event)
			}
		}
		t.Logf("stderr: %s", errb.String())
	}
	if !strings.Contains(out.String(), "exposed") {
		t.Errorf("the demo's output does not announce the exposure")
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); !os.IsNotExist(err) {
		t.Errorf("the demo left its state file behind after stopping: %v", err)
	}

	// No secret value reached the terminal, the logs or the audit trail.
	values := storedValues(t, filepath.Join(dir, "store.json"))
	if len(values) < 10 {
		t.Fatalf("found only %d secret values in the demo's store; the scan would prove little", len(values))
	}
	for where, text := range map[string]string{"stdout": out.String(), "stderr": errb.String(), "audit trail": string(b)} {
		for _, v := range values {
			if strings.Contains(text, v.Reveal()) {
				t.Errorf("the demo's %s holds a secret value (last4 %s)", where, v.Last4())
			}
		}
	}
}

// checkTrailVerifies checks that the demo's audit trail in dir verifies.
func checkTrailVerifies(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res, err := audit.Verify(f); err != nil || !res.OK() {
		t.Errorf("the demo's audit trail does not verify: %v %s", err, res.String())
	}
}

// storedValues decodes every version of every secret in the store file.
func storedValues(t *testing.T, path string) []secret.Value {
	t.Helper()
	st, err := localstore.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []secret.Value
	for _, v := range storetest.AllVersions(t, st) {
		c, err := secretstore.DecodeCredential(v.Secret, v.Value)
		if err != nil {
			t.Fatalf("%s version %s: %v", v.Secret, v.ID, err)
		}
		out = append(out, v.Value, c.Secret)
	}
	return out
}

// A directory an earlier demo created (it holds the marker) is cleared and
// reused; a new one is created and marked.
func TestDemoClearsOnlyItsOwnMarkedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "demo")
	runBriefly := func() string {
		var out, errb syncbuf.Buffer
		// Long enough for the demo's start-up on a busy machine: a deadline
		// that ends it during discovery is a failure, not a brief run.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := demo.Run(ctx, demo.Options{Dir: dir, Listen: "127.0.0.1:0", Out: &out, Err: &errb, ExposeAfter: -1})
		if err != nil {
			t.Fatalf("demo: %v\nstderr:\n%s", err, errb.String())
		}
		return errb.String()
	}
	runBriefly()
	if _, err := os.Stat(filepath.Join(dir, ".lakirotator-demo")); err != nil {
		t.Fatalf("the demo did not mark its directory: %v", err)
	}
	stale := filepath.Join(dir, "left-by-the-last-run")
	if err := os.WriteFile(stale, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	runBriefly()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the demo's own directory was not cleared: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "store.json")); err != nil {
		t.Errorf("the second run did not write its store: %v", err)
	}
}
