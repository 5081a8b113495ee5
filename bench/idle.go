package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// How serve's idle memory is read: sampled each second until it holds still.
const (
	idleMinWait   = 10 * time.Second
	idleMaxWait   = 3 * time.Minute
	idleStableFor = 5  // samples
	idleStablePct = 2. // percent
)

// idleServe runs `lakirotator serve` on the run's secrets (discovered by the
// run's tag) and the live simulator, waits for its start-up pass to settle
// and reads its resident memory. The management keys are stored as secrets
// first, as serve reads them from the store.
func idleServe(ctx context.Context, binary, endpoint, lakiURL, runID string, smc *sm.Client, sd *seeded, n int, progress func(string, ...any)) (*IdleServe, error) {
	dir, err := os.MkdirTemp("", "lakibench-serve-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var merchants strings.Builder
	for _, k := range sd.mgmt {
		name := fmt.Sprintf("bench/%s/management/%s", runID, k.MasterMerchantID)
		v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(laki.Sandbox), MasterMerchantID: k.MasterMerchantID,
			KeyID: k.ID, Secret: k.Secret, CreatedAt: k.CreatedAt}.Encode()
		if err != nil {
			return nil, err
		}
		if _, err := smc.CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v.Reveal())}); err != nil {
			return nil, fmt.Errorf("storing the management key of %s: %w", k.MasterMerchantID, err)
		}
		fmt.Fprintf(&merchants, "        - id: %s\n          management_key: {secret: %q}\n", k.MasterMerchantID, name)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`version: 1
environments:
  sandbox:
    aws: {region: %s, endpoint: %q}
    lakiconnect:
      base_url: %q
      master_merchants:
%sstore: {kind: aws}
policies_dir: policies
discovery:
  enabled: true
  tag_filters: {%q: [%q]}
http: {listen: "127.0.0.1:%d"}
audit: {file: audit.jsonl}
log: {format: json, level: warn}
`, motoserver.Region, endpoint, lakiURL, merchants.String(), runTag, runID, port)
	files := map[string]string{
		"lakirotator.yaml": cfg,
	}
	for name, body := range discoveryPolicies {
		files["policies/"+name] = body
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return nil, err
		}
	}
	logFile, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	serve, err := startServe(binary, dir, logFile)
	if err != nil {
		return nil, err
	}
	defer serve.stop()
	pid := strconv.Itoa(serve.cmd.Process.Pid)
	start := time.Now()
	var samples []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-serve.done:
			log, _ := os.ReadFile(logFile.Name())
			return nil, fmt.Errorf("serve exited early (%v): %s", serve.err, lastLines(string(log), 5))
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-tick.C:
		}
		rss := procStatusMB(pid, "VmRSS")
		samples = append(samples, rss)
		elapsed := time.Since(start)
		if elapsed >= idleMinWait && stable(samples) || elapsed >= idleMaxWait {
			res := &IdleServe{Secrets: n, RSSMB: rss, PeakMB: procStatusMB(pid, "VmHWM"), Settled: elapsed.Seconds()}
			if elapsed >= idleMaxWait {
				res.Note = "memory still moving after " + idleMaxWait.String()
			}
			if log, _ := os.ReadFile(logFile.Name()); strings.Contains(string(log), `"level":"ERROR"`) {
				res.Note = strings.TrimSpace(res.Note + " serve logged errors: " + lastLines(grepLines(string(log), `"level":"ERROR"`), 2))
			}
			progress("serve settled at %.1f MB RSS after %.0f s", rss, elapsed.Seconds())
			return res, nil
		}
	}
}

func stable(s []float64) bool {
	if len(s) < idleStableFor {
		return false
	}
	lo, hi := s[len(s)-idleStableFor], s[len(s)-idleStableFor]
	for _, v := range s[len(s)-idleStableFor:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo > 0 && (hi-lo)/lo*100 <= idleStablePct
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
