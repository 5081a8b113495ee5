package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
)

// measureServe runs serve through the counting proxy: the start-up
// listing, idle memory, then one periodic refresh and the memory after it.
func measureServe(ctx context.Context, cfg DiscoveryConfig, rep *DiscoveryReport, counter *callProxy, runID, merchantID, mgmtName, lakiURL string) error {
	dir, err := os.MkdirTemp("", "lakibench-discovery-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return err
	}
	// The sweep and the policy scan read every secret by design; they are
	// set to once a year so that the run measures discovery alone.
	conf := fmt.Sprintf(`version: 1
environments:
  sandbox:
    aws: {region: %s, endpoint: %q}
    lakiconnect:
      base_url: %q
      master_merchants:
        - id: %s
          management_key: {secret: %q}
store: {kind: aws}
policies_dir: policies
discovery:
  enabled: true
  refresh_interval: %s
  tag_filters: {%q: [%q]}
sweep: {schedule: "0 0 1 1 *"}
policy_scan: {schedule: "0 0 1 1 *"}
http: {listen: "127.0.0.1:%d"}
audit: {file: audit.jsonl}
log: {format: json, level: info}
`, motoserver.Region, counter.url, lakiURL, merchantID, mgmtName, cfg.RefreshEvery, runTag, runID, port)
	files := map[string]string{"lakirotator.yaml": conf}
	for name, body := range discoveryPolicies {
		files[filepath.Join("policies", name)] = body
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			return err
		}
	}
	logPath := filepath.Join(dir, "serve.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	serve, err := startServe(cfg.ServeBinary, dir, logFile)
	if err != nil {
		return err
	}
	defer serve.stop()
	pid := strconv.Itoa(serve.cmd.Process.Pid)
	serveLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	waitListing := func(no int, within time.Duration) (Listing, error) {
		deadline := time.Now().Add(within)
		for {
			if l, ok := counter.listing(no); ok {
				return l, nil
			}
			select {
			case <-serve.done:
				return Listing{}, fmt.Errorf("serve exited: %s", lastLines(serveLog(), 5))
			case <-ctx.Done():
				return Listing{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return Listing{}, fmt.Errorf("no listing %d within %s (calls so far: %s): %s", no, within, counter.summary(), lastLines(serveLog(), 5))
			}
		}
	}
	settle := func(what string) (float64, error) {
		var samples []float64
		start := time.Now()
		for {
			select {
			case <-serve.done:
				return 0, fmt.Errorf("serve exited: %s", lastLines(serveLog(), 5))
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(time.Second):
			}
			samples = append(samples, procStatusMB(pid, "VmRSS"))
			if stable(samples) || time.Since(start) > idleMaxWait {
				rss := samples[len(samples)-1]
				cfg.Progress("serve settled at %.1f MB RSS %s", rss, what)
				return rss, nil
			}
		}
	}

	// A listing of 100,000 secrets against stock moto takes many minutes:
	// the waits are generous, the figures say how long it took.
	const listingWait = 45 * time.Minute
	startup, err := waitListing(1, listingWait)
	if err != nil {
		return err
	}
	rep.Startup = startup
	cfg.Progress("start-up listing: %d pages in %.1f s", startup.Pages, startup.Seconds)
	if rep.IdleRSSMB, err = settle("after start-up"); err != nil {
		return err
	}
	refresh, err := waitListing(2, cfg.RefreshEvery+listingWait)
	if err != nil {
		return err
	}
	rep.Refresh = refresh
	cfg.Progress("refresh: %d pages in %.1f s, other calls %v", refresh.Pages, refresh.Seconds, refresh.Other)
	if rep.IdleAfterRefresh, err = settle("after the refresh"); err != nil {
		return err
	}
	rep.PeakRSSMB = procStatusMB(pid, "VmHWM")
	rep.Calls, rep.ManagedSecretCalls = counter.totals()
	log := serveLog()
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Msg   string `json:"msg"`
			Count int    `json:"count"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "managed secrets loaded" {
			rep.Discovered = rec.Count
		}
	}
	if strings.Contains(log, `"level":"ERROR"`) {
		rep.Note = "serve logged errors: " + lastLines(grepLines(log, `"level":"ERROR"`), 2)
	}
	return nil
}

// discoveryPolicies are the policies of the secrets a measured serve
// discovers (-discovery and -idle-serve): monthly, so no slot falls in a run.
var discoveryPolicies = map[string]string{
	"bench-api-keys.yaml": `name: bench-api-keys
kind: api_key
scopes: [payments:read, payments:write]
environments: [sandbox]
max_age: 90d
schedule: "0 2 1 * *"
grace: {scheduled: 24h, personnel: 1h, compromise: 0s}
`,
	"bench-webhooks.yaml": `name: bench-webhooks
kind: webhook_secret
environments: [sandbox]
max_age: 90d
schedule: "0 2 1 * *"
grace: {scheduled: 72h, personnel: 4h, compromise: 0s}
`,
}
