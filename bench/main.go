package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// Main is the lakibench command: it parses args, starts moto (unless
// -endpoint names one), runs the benchmark and prints the report. It
// returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == SimulatorChildFlag {
		return ServeSimulatorChild(os.Stdin, stdout)
	}
	fs := flag.NewFlagSet("lakibench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 1000, "managed secrets to seed and rotate")
	owner := fs.Int("owner-secrets", 1000, "secrets of one owner rotated as a personnel emergency during the batch (at most n/2)")
	quota := fs.String("quota", QuotaAWS, "client-side Secrets Manager limits: aws (writes just under 50/s) or off")
	standIn := fs.Bool("stand-in", false, "answer ThrottlingException above AWS's 50 writes/s (awsfault), as AWS does")
	idle := fs.Bool("idle-serve", false, "also measure the idle memory of `lakirotator serve` holding the n secrets")
	serveBin := fs.String("serve-binary", "lakirotator", "the lakirotator binary (a path, or a name on PATH) for -idle-serve")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	writeQuota := fs.Float64("write-quota", AWSWriteQuota, "the account's Secrets Manager write quota per second (AWS: 50, not adjustable)")
	workers := fs.Int("workers", 32, "engine worker pool size")
	endpoint := fs.String("endpoint", "", "Secrets Manager endpoint (a running moto); empty starts moto_server")
	render := fs.String("render", "", "print the table of a report saved with -json, and run nothing")
	discovery := addDiscoveryFlags(fs)
	replicas := fs.Int("replicas", 0, "run that many `lakirotator serve` processes (-serve-binary) sharing a DynamoDB lease in moto, instead of one engine in this process")
	accounts := fs.Int("accounts", 1, "with -replicas: AWS accounts the secrets live in, reached through AssumeRole (1 or 2: one per LakiConnect environment)")
	killAt := fs.Float64("kill-leader-at", 0, "with -replicas: SIGKILL the lease holder when this fraction of the batch is done (0: never)")
	keepLogs := fs.Bool("keep-logs", false, "with -replicas: keep the replicas' configs and logs (a failed run keeps them anyway)")
	personnelTo := fs.String("personnel-to", PersonnelToHolder, "with -replicas: send the owner's departure to the lease holder (holder) or to another replica (other)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *render != "" {
		return renderSaved(*render, stdout, stderr)
	}
	if discovery.requested() {
		return discovery.main(*serveBin, *asJSON, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "lakibench: "+format+"\n", a...) }
	if *endpoint == "" {
		srv, err := motoserver.Launch()
		if err != nil {
			fmt.Fprintf(stderr, "lakibench: %v\n", err)
			return 1
		}
		defer srv.Stop()
		*endpoint = srv.Endpoint
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: finding this binary to run the simulator: %v\n", err)
		return 1
	}
	var binary string
	if *idle || *replicas > 0 {
		p, err := exec.LookPath(*serveBin)
		if err != nil {
			fmt.Fprintf(stderr, "lakibench: -serve-binary: %v (build it with: go build -o lakirotator ./cmd/lakirotator)\n", err)
			return 2
		}
		// serve runs in a directory of its own: the path must not be relative.
		if binary, err = filepath.Abs(p); err != nil {
			fmt.Fprintf(stderr, "lakibench: -serve-binary: %v\n", err)
			return 2
		}
	}
	cfg := Config{ServeBinary: binary, SimulatorExecutable: self, N: *n, OwnerSecrets: *owner, Quota: *quota, StandIn: *standIn, WriteQuota: *writeQuota,
		Workers: *workers, Endpoint: *endpoint, Progress: progress, Replicas: *replicas, Accounts: *accounts, KillLeaderAt: *killAt, PersonnelTo: *personnelTo, KeepLogs: *keepLogs}
	if *replicas > 0 {
		rep, err := RunFleet(ctx, cfg)
		if err != nil {
			fmt.Fprintf(stderr, "lakibench: %v\n", err)
			return 1
		}
		return printReport(rep, *asJSON, stdout, stderr)
	}
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: %v\n", err)
		return 1
	}
	return printReport(rep, *asJSON, stdout, stderr)
}

// table is a report that prints as a table.
type table interface{ WriteTable(io.Writer) error }

func printReport(rep table, asJSON bool, stdout, stderr io.Writer) int {
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "lakibench: %v\n", err)
			return 1
		}
		return 0
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "lakibench: %v\n", err)
		return 1
	}
	return 0
}

func renderSaved(path string, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: -render: %v\n", err)
		return 1
	}
	var kind struct {
		Replicas int `json:"replicas"`
	}
	var rep table = &Report{}
	if json.Unmarshal(b, &kind) == nil && kind.Replicas > 0 {
		rep = &FleetReport{}
	}
	if err := json.Unmarshal(b, rep); err != nil {
		fmt.Fprintf(stderr, "lakibench: -render: %s is not a lakibench JSON report: %v\n", path, err)
		return 1
	}
	return printReport(rep, false, stdout, stderr)
}
