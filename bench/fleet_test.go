package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// buildServe builds the lakirotator binary from this tree.
func buildServe(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lakirotator")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/lakirotator/lakirotator/cmd/lakirotator")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building lakirotator: %v\n%s", err, out)
	}
	return bin
}

// The fleet run's flags end to end, small: two replicas of the real binary
// over two accounts reached through AssumeRole. The slot's batch is rotated
// once per secret across both replicas, at one daemon's cost (3 calls, 2 of
// them writes, counted by the proxy in front of moto); the exposed key is
// revoked by the replica without the lease; the owner's secrets are rotated
// by the other replica; the holder is SIGKILLed (once half the batch is
// done and the emergencies are over) and the other takes the lease within
// its TTL; nothing is lost or made twice, and no secret value reaches the
// report. The batch is a cron slot at the next whole minute, so the test
// waits up to a minute for it.
func TestFleetRunAcrossAccountsAndReplicas(t *testing.T) {
	bin := buildServe(t)
	endpoint := motoserver.Start(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var values []secret.Value
	var progress strings.Builder
	const n, owners, ttl = 24, 4, 3 * time.Second
	cfg := Config{N: n, OwnerSecrets: owners, Accounts: 2, Replicas: 2, KillLeaderAt: 0.5, LeaseTTL: ttl, PersonnelTo: PersonnelToOther,
		StandIn: true, Workers: 4, Endpoint: endpoint, ServeBinary: bin, SimulatorExecutable: self,
		seeded:   func(v secret.Value) { mu.Lock(); values = append(values, v); mu.Unlock() },
		Progress: func(f string, a ...any) { mu.Lock(); progress.WriteString(strings.TrimSpace(f) + "\n"); mu.Unlock() }}
	rep, err := RunFleet(context.Background(), cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, progress.String())
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())

	if rep.Rotated != n || rep.Lost != 0 || rep.LostByStore != 0 || rep.Duplicated != 0 {
		t.Fatalf("rotated %d of %d, lost %d (listing: %d), duplicated %d; want every secret once", rep.Rotated, n, rep.Lost, rep.LostByStore, rep.Duplicated)
	}
	batch := rep.SMByClass[classBatch]
	if batch.Secrets != rep.Batch || rep.Batch != n-owners-1 {
		t.Fatalf("batch of %d (%d rotated), want %d", rep.Batch, batch.Secrets, n-owners-1)
	}
	// Each batch rotation writes its put and its promote once, whichever
	// replica (a rotation cut by the kill is finished, not redone); its
	// reads are one per rotation, plus one for each rotation the new holder
	// resumed (it reads AWSCURRENT again).
	if w := batch.ByOp["PutSecretValue/ok"] + batch.ByOp["UpdateSecretVersionStage/ok"]; w != 2*rep.Batch {
		t.Errorf("the batch of %d wrote %d times (%v); want 2 per rotation", rep.Batch, w, batch.ByOp)
	}
	if rep.KilledReplica == 0 || rep.LeaseTakenAfterSeconds <= 0 || rep.LeaseTakenAfterSeconds > ttl.Seconds()*1.1+1 {
		t.Errorf("killed replica %d, lease taken after %.1f s; want another holder within the TTL (%s) and a tenth", rep.KilledReplica, rep.LeaseTakenAfterSeconds, ttl)
	}
	if rep.ExposedToHolder || rep.ExposedToRevokedMillis <= 0 {
		t.Errorf("exposure sent to the holder %v, revoked after %.0f ms; want it revoked by the replica without the lease", rep.ExposedToHolder, rep.ExposedToRevokedMillis)
	}
	if rep.OwnerToHolder || rep.OwnerSeconds <= 0 || rep.SMByClass[classOwner].Secrets != owners {
		t.Errorf("owner's secrets sent to the holder %v, done in %.1f s, %d rotated; want %d by the other replica", rep.OwnerToHolder, rep.OwnerSeconds, rep.SMByClass[classOwner].Secrets, owners)
	}
	if rep.ThrottlesInjected != 0 {
		t.Errorf("the stand-in answered %d throttles; the client-side limits should keep below AWS's quota", rep.ThrottlesInjected)
	}
	for _, f := range rep.ReplicaFigures {
		if f.PeakMB <= 0 || (!f.Killed && f.IdleMB <= 0) {
			t.Errorf("replica %d: peak %.1f MB, idle %.1f MB; a memory figure is missing", f.No, f.PeakMB, f.IdleMB)
		}
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	all := out.String() + string(js) + progress.String()
	for _, v := range values {
		if s := v.Reveal(); len(s) >= 8 && strings.Contains(all, s) {
			t.Fatalf("a seeded secret value appears in the report or progress")
		}
	}
}
