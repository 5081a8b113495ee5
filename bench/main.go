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
	if *idle {
		p, err := exec.LookPath(*serveBin)
		if err != nil {
			fmt.Fprintf(stderr, "lakibench: -idle-serve: %v (build it with: go build -o lakirotator ./cmd/lakirotator)\n", err)
			return 2
		}
		binary = p
	}
	rep, err := Run(ctx, Config{ServeBinary: binary, SimulatorExecutable: self, N: *n, OwnerSecrets: *owner, Quota: *quota, StandIn: *standIn, WriteQuota: *writeQuota, Workers: *workers, Endpoint: *endpoint, Progress: progress})
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: %v\n", err)
		return 1
	}
	if *asJSON {
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
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		fmt.Fprintf(stderr, "lakibench: -render: %s is not a lakibench JSON report: %v\n", path, err)
		return 1
	}
	if err := rep.WriteTable(stdout); err != nil {
		fmt.Fprintf(stderr, "lakibench: %v\n", err)
		return 1
	}
	return 0
}
