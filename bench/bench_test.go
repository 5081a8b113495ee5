package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// TestMain lets the test binary host the simulator as the command does.
func TestMain(m *testing.M) {
	if len(os.Args) == 2 && os.Args[1] == SimulatorChildFlag {
		os.Exit(ServeSimulatorChild(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// run runs the benchmark small and returns its report, the printed table and
// JSON, and the secret values seeding made.
func run(t *testing.T, endpoint string, cfg Config) (*Report, string, []secret.Value) {
	t.Helper()
	var mu sync.Mutex
	var values []secret.Value
	var progress strings.Builder
	cfg.Endpoint = endpoint
	cfg.seeded = func(v secret.Value) { mu.Lock(); values = append(values, v); mu.Unlock() }
	cfg.Progress = func(f string, a ...any) { mu.Lock(); fmt.Fprintf(&progress, f+"\n", a...); mu.Unlock() }
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep, printed(t, rep, progress.String()), values
}

// The command's figures at N=60 with the quota stand-in: every secret
// rotated once, at most 3 Secrets Manager calls and exactly 2 writes per
// rotation, and the client-side limiter keeps the stand-in from ever
// throttling; with the limiter off, the same stand-in does throttle (so the
// zero above is the limiter's doing), and the SDK's retries still surface none.
func TestSmallRunFiguresAreConsistent(t *testing.T) {
	if testing.Short() {
		t.Skip("moto")
	}
	endpoint := motoserver.Start(t)
	const n = 60
	rep, out, values := run(t, endpoint, Config{N: n, OwnerSecrets: 20, Quota: QuotaAWS, StandIn: true, WriteQuota: 30, Workers: 16})
	t.Log("\n" + out)

	if rep.Failed != 0 || rep.Rotated != n || !rep.RotationsOnce {
		t.Fatalf("rotated %d, failed %d (%s), once=%v; want all %d once", rep.Rotated, rep.Failed, rep.FirstFailure, rep.RotationsOnce, n)
	}
	if rep.Batch+rep.OwnerJobs+1 != n || rep.OwnerJobs != 20 || rep.Discovered != n {
		t.Fatalf("batch %d + owner %d + 1 exposed, discovered %d; want %d", rep.Batch, rep.OwnerJobs, rep.Discovered, n)
	}
	total, writes := 0, 0
	for op, c := range rep.SMCalls {
		total += c
		if op == "PutSecretValue" || op == "UpdateSecretVersionStage" || op == "TagResource" {
			writes += c
		}
	}
	if writes != 2*n {
		t.Errorf("%d writes for %d rotations (%v), want exactly 2 each", writes, n, rep.SMCalls)
	}
	if total > 3*n || rep.SMCallsPerRot > 3 {
		t.Errorf("%d Secrets Manager calls for %d rotations (%v), want at most 3 each", total, n, rep.SMCalls)
	}
	if got := float64(total) / float64(n); got != rep.SMCallsPerRot {
		t.Errorf("calls per rotation printed %.3f, counts say %.3f", rep.SMCallsPerRot, got)
	}
	if rep.SMCalls["DescribeSecret"] != 0 || rep.SMCalls["ListSecrets"] != 0 {
		t.Errorf("rotations described or listed secrets: %v (discovery's listing is counted apart)", rep.SMCalls)
	}
	if rep.DiscoveryPages != 1 {
		t.Errorf("discovery of %d secrets took %d list pages, want 1", n, rep.DiscoveryPages)
	}
	if rep.ThrottlesSurfaced != 0 || rep.ThrottlesInjected != 0 {
		t.Errorf("throttles surfaced %d, injected by the stand-in %d; the limiter should keep both at 0", rep.ThrottlesSurfaced, rep.ThrottlesInjected)
	}
	if rep.ExposedToRevokedMillis <= 0 || rep.OwnerSeconds <= 0 || rep.LatencyP50Millis <= 0 || rep.LatencyP99Millis < rep.LatencyP50Millis {
		t.Errorf("exposure %.0f ms, owner %.1f s, p50 %.0f ms, p99 %.0f ms: a figure is missing", rep.ExposedToRevokedMillis, rep.OwnerSeconds, rep.LatencyP50Millis, rep.LatencyP99Millis)
	}
	if rep.LakiCalls["POST /api_keys"] != rep.APIKeys || rep.LakiCalls["POST /webhook_endpoints/{endpoint_id}/secrets"] != rep.Webhooks {
		t.Errorf("LakiConnect creates %v for %d API keys and %d webhook secrets, want one each", rep.LakiCalls, rep.APIKeys, rep.Webhooks)
	}
	if rep.Laki429 != 0 {
		t.Errorf("%d LakiConnect 429s: the per-key limiter should keep under the simulator's 100/s", rep.Laki429)
	}
	for _, want := range []string{"rotations per second", "fraction of the quota bound", "Secrets Manager calls per rotation", "api_key.exposed -> old key revoked"} {
		if !strings.Contains(out, want) {
			t.Errorf("the table lacks %q", want)
		}
	}
	noLeak(t, out, values, n)

	// Without the limiter the stand-in throttles, and the retries absorb it.
	// (A lower quota makes it bite at this size whatever moto's speed.) The
	// simulator runs in a child process here, as the command runs it.
	off, offOut, offValues := run(t, endpoint, Config{N: n, OwnerSecrets: 20, Quota: QuotaOff, StandIn: true, WriteQuota: 20, Workers: 32,
		SimulatorExecutable: os.Args[0]})
	noLeak(t, offOut, offValues, n)
	if off.SimulatorInProcess || off.SimulatorPeakRSSMB <= 0 {
		t.Errorf("simulator in process %v, its peak %.1f MB: the child process was not used", off.SimulatorInProcess, off.SimulatorPeakRSSMB)
	}
	if off.ThrottlesInjected == 0 {
		t.Errorf("with the client limit off the stand-in never throttled (peak %.0f writes/s): the zero above proves nothing", off.WritesPerSecPeak)
	}
	if off.Failed != 0 || !off.RotationsOnce || off.ThrottlesSurfaced != 0 {
		t.Errorf("limit off: %d failed (%s), %d throttles surfaced; the SDK's retries should absorb them", off.Failed, off.FirstFailure, off.ThrottlesSurfaced)
	}
	t.Logf("limit off: %.1f rotations/s, peak %.0f writes/s, %d throttles injected, %d surfaced", off.RotationsPerSec, off.WritesPerSecPeak, off.ThrottlesInjected, off.ThrottlesSurfaced)
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{N: 2, Endpoint: "http://127.0.0.1:1"}, "n is 2"},
		{Config{N: 10, Quota: "fast", Endpoint: "http://127.0.0.1:1"}, `quota "fast"`},
		{Config{N: 10}, "endpoint"},
	} {
		_, err := Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%+v) = %v, want an error naming %q", c.cfg, err, c.want)
		}
	}
}

// noLeak fails when a secret value seeding made appears in the output.
func noLeak(t *testing.T, out string, values []secret.Value, n int) {
	t.Helper()
	if len(values) < n {
		t.Fatalf("seeding reported %d secret values for %d secrets", len(values), n)
	}
	for _, v := range values {
		if strings.Contains(out, v.Reveal()) {
			t.Errorf("a seeded secret value (last4 %s) appears in the output", v.Last4())
		}
	}
}

// printed is everything a run prints: its table, its JSON and its progress.
func printed(t *testing.T, rep interface{ WriteTable(io.Writer) error }, progress string) string {
	t.Helper()
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	out.WriteString(progress)
	return out.String()
}
