// Discovery at scale: `lakibench -discovery N` seeds N tag-discovered
// secrets in moto, runs `lakirotator serve` on them behind a proxy that
// counts every Secrets Manager call, and reports how long the catalog
// refresh takes, which calls it makes, and serve's idle memory.

package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "embed"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// How the secrets get into moto.
const (
	// SeedDirect creates them inside moto's own process before it serves
	// (motoseed.py): seconds for 100,000.
	SeedDirect = "direct"
	// SeedAPI creates them with concurrent CreateSecret calls. moto looks a
	// name up by scanning every secret, so this is quadratic: fine for a
	// few thousand.
	SeedAPI = "api"
)

//go:embed motoseed.py
var motoSeedScript string

// DiscoveryConfig is one discovery measurement.
type DiscoveryConfig struct {
	N    int
	Seed string // SeedDirect (default) or SeedAPI
	// StockListing leaves moto's ListSecrets as it is (with SeedDirect):
	// moto rebuilds every matching secret on every page, so a listing of
	// N secrets costs it N²/100; by default the direct moto builds a
	// listing once and pages it, as AWS costs.
	StockListing bool
	// Python runs motoseed.py (SeedDirect); it must import moto.
	Python string
	// ServeBinary is the lakirotator binary.
	ServeBinary string
	// RefreshEvery is serve's discovery.refresh_interval (at least 1m).
	RefreshEvery time.Duration
	Progress     func(format string, args ...any)

	seeded func(secret.Value) // tests: every secret value made
}

// DiscoveryReport is what a discovery run measured.
type DiscoveryReport struct {
	Date        time.Time `json:"date"`
	N           int       `json:"n"`
	CPUs        int       `json:"cpus"`
	Seed        string    `json:"seeding"`
	MotoListing string    `json:"moto_listing"` // "paged once" or "stock"
	SeedSeconds float64   `json:"seed_seconds"`
	Discovered  int       `json:"discovered"` // secrets serve loaded, from its log

	Startup Listing `json:"startup_listing"`
	Refresh Listing `json:"refresh"`
	// Calls is every Secrets Manager call serve made, by operation, from
	// its start to the end of the refresh.
	Calls map[string]int `json:"secretsmanager_calls"`
	// ManagedSecretCalls counts the calls that named one of the N
	// discovered secrets (SecretId), by operation: the per-secret calls.
	ManagedSecretCalls map[string]int `json:"calls_naming_a_managed_secret"`

	IdleRSSMB        float64 `json:"idle_rss_mb"`               // settled after start-up
	IdleAfterRefresh float64 `json:"idle_rss_after_refresh_mb"` // settled after the refresh
	PeakRSSMB        float64 `json:"peak_rss_mb"`               // VmHWM at the end
	Note             string  `json:"note,omitempty"`
}

// Listing is one full ListSecrets listing as the counting proxy saw it.
type Listing struct {
	Pages   int     `json:"pages"`
	Seconds float64 `json:"seconds"` // first page asked to last page answered
	// Other is every other call made while the listing ran, by operation
	// (the readiness probe's page, a management key's read).
	Other map[string]int `json:"other_calls"`
	// PerSecret counts the calls made while the listing ran that named one
	// of the discovered secrets: what a refresh must never make.
	PerSecret map[string]int `json:"per_secret_calls"`
}

func (c *DiscoveryConfig) defaults() error {
	if c.N < 1 {
		return fmt.Errorf("bench: -discovery %d: the number of secrets must be at least 1", c.N)
	}
	if c.Seed == "" {
		c.Seed = SeedDirect
	}
	if c.Seed != SeedDirect && c.Seed != SeedAPI {
		return fmt.Errorf("bench: -discovery-seed %q is not %q or %q", c.Seed, SeedDirect, SeedAPI)
	}
	if c.StockListing && c.Seed != SeedDirect {
		return errors.New("bench: -discovery-stock-listing needs -discovery-seed direct (moto_server's listing is stock already)")
	}
	if c.Python == "" {
		c.Python = "python3"
	}
	if c.RefreshEvery == 0 {
		c.RefreshEvery = time.Minute
	}
	if c.RefreshEvery < time.Minute {
		return fmt.Errorf("bench: the refresh interval %s is below serve's minimum of 1m", c.RefreshEvery)
	}
	if c.ServeBinary == "" {
		return errors.New("bench: -discovery needs the lakirotator binary (-serve-binary)")
	}
	if c.Progress == nil {
		c.Progress = func(string, ...any) {}
	}
	return nil
}

// discoverySpec is one secret to seed, as motoseed.py reads it.
type discoverySpec struct {
	Name  string            `json:"name"`
	Value string            `json:"value"`
	Tags  map[string]string `json:"tags"`
}

// RunDiscovery seeds, serves, and measures.
func RunDiscovery(ctx context.Context, cfg DiscoveryConfig) (*DiscoveryReport, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rep := &DiscoveryReport{Date: time.Now().UTC(), N: cfg.N, CPUs: runtime.NumCPU(), Seed: cfg.Seed, MotoListing: "stock"}
	if cfg.Seed == SeedDirect && !cfg.StockListing {
		rep.MotoListing = "paged once"
	}
	runID := newRunID()

	// LakiConnect: one master merchant holds every secret; serve reads its
	// management key at start-up and rotates nothing.
	sim := newInProcess()
	defer sim.Close()
	merchantID, err := sim.AddMasterMerchant(ctx)
	if err != nil {
		return nil, err
	}
	mgmt, err := sim.CreateKey(ctx, laki.Sandbox, merchantID, "lakirotator management", laki.AllScopes)
	if err != nil {
		return nil, err
	}
	if cfg.seeded != nil {
		cfg.seeded(mgmt.Secret)
	}

	specs := make(chan discoverySpec, 256)
	managed := map[string]bool{}
	names := make([]string, cfg.N)
	for i := range names {
		names[i] = discoveryName(runID, i)
		managed[names[i]] = true
	}
	go func() {
		defer close(specs)
		for i, name := range names {
			s, err := discoveryCredential(runID, merchantID, i, name, cfg.seeded)
			if err != nil {
				cfg.Progress("seed: %v", err)
				return
			}
			select {
			case specs <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	cfg.Progress("seeding %d secrets (%s)", cfg.N, cfg.Seed)
	start := time.Now()
	var endpoint string
	if cfg.Seed == SeedDirect {
		m, err := startSeededMoto(ctx, cfg.Python, !cfg.StockListing, specs, cfg.N)
		if err != nil {
			return nil, err
		}
		defer m.stop()
		endpoint = m.endpoint
	} else {
		srv, err := motoserver.Launch()
		if err != nil {
			return nil, err
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
		if err := seedByAPI(ctx, smClient(endpoint), specs, cfg.N); err != nil {
			return nil, err
		}
	}
	rep.SeedSeconds = time.Since(start).Seconds()
	cfg.Progress("seeded %d secrets in %.1f s", cfg.N, rep.SeedSeconds)

	mgmtName := fmt.Sprintf("bench/%s/management/%s", runID, merchantID)
	v, err := secretstore.Credential{Type: secretstore.TypeAPIKey, Environment: string(laki.Sandbox), MasterMerchantID: merchantID,
		KeyID: mgmt.ID, Secret: mgmt.Secret, CreatedAt: mgmt.CreatedAt}.Encode()
	if err != nil {
		return nil, err
	}
	if _, err := smClient(endpoint).CreateSecret(ctx, &sm.CreateSecretInput{Name: aws.String(mgmtName), SecretString: aws.String(v.Reveal())}); err != nil {
		return nil, fmt.Errorf("storing the management key: %w", err)
	}

	counter, err := startCallProxy(endpoint, managed, runID)
	if err != nil {
		return nil, err
	}
	defer counter.close()
	if err := measureServe(ctx, cfg, rep, counter, runID, merchantID, mgmtName, sim.BaseURL()+"/sandbox/v1"); err != nil {
		return nil, err
	}
	return rep, nil
}

func discoveryName(runID string, i int) string {
	label := "wh"
	if i%apiKeyShare == 0 {
		label = "ak"
	}
	return fmt.Sprintf("bench/%s/%s-%06d", runID, label, i)
}

// discoveryCredential is a steady-state secret: one version, AWSCURRENT, a
// credential of the right shape with a random value (serve never reads it:
// the test of that is the call count). One in ten is an API key, the rest
// webhook signing secrets, as in the rotation benchmark.
func discoveryCredential(runID, merchantID string, i int, name string, seeded func(secret.Value)) (discoverySpec, error) {
	value := secret.New(randomHex(24))
	if seeded != nil {
		seeded(value)
	}
	tags := map[string]string{
		inventory.TagManaged: "true", inventory.TagEnvironment: string(laki.Sandbox), inventory.TagMasterMerchant: merchantID,
		runTag: runID,
	}
	c := secretstore.Credential{Environment: string(laki.Sandbox), MasterMerchantID: merchantID, Secret: value, CreatedAt: time.Now().UTC()}
	if i%apiKeyShare == 0 {
		c.Type, c.KeyID = secretstore.TypeAPIKey, fmt.Sprintf("%s%024d", laki.KeyIDPrefix, i)
		tags[inventory.TagKind], tags[inventory.TagPolicy] = string(inventory.KindAPIKey), policyFor(inventory.KindAPIKey, false)
	} else {
		endpoint := fmt.Sprintf("%s%024d", laki.EndpointIDPrefix, i)
		c.Type, c.EndpointID, c.SecretID = secretstore.TypeWebhookSecret, endpoint, fmt.Sprintf("%s%024d", laki.WebhookSecretIDPrefix, i)
		tags[inventory.TagKind], tags[inventory.TagPolicy], tags[inventory.TagEndpointID] = string(inventory.KindWebhookSecret), policyFor(inventory.KindWebhookSecret, false), endpoint
	}
	v, err := c.Encode()
	if err != nil {
		return discoverySpec{}, fmt.Errorf("%s: %w", name, err)
	}
	return discoverySpec{Name: name, Value: v.Reveal(), Tags: tags}, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func smClient(endpoint string) *sm.Client {
	return sm.New(sm.Options{Region: motoserver.Region, BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(motoserver.AccessKeyID, motoserver.SecretAccessKey, "")})
}

func seedByAPI(ctx context.Context, c *sm.Client, specs <-chan discoverySpec, n int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		made int
	)
	for range 4 * seedWorkers {
		wg.Go(func() {
			for s := range specs {
				in := &sm.CreateSecretInput{Name: aws.String(s.Name), SecretString: aws.String(s.Value)}
				for k, v := range s.Tags {
					in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
				}
				_, err := c.CreateSecret(ctx, in)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("CreateSecret %s: %w", s.Name, err))
				} else {
					made++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("seeding %d secrets: %d failed, first: %w", n, len(errs), errs[0])
	}
	if made != n {
		return fmt.Errorf("seeding: made %d of %d secrets", made, n)
	}
	return nil
}

// seededMoto is motoseed.py serving the seeded secrets.
type seededMoto struct {
	endpoint string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	done     chan struct{}
}

func startSeededMoto(ctx context.Context, python string, cacheListing bool, specs <-chan discoverySpec, n int) (*seededMoto, error) {
	dir, err := os.MkdirTemp("", "lakibench-moto-")
	if err != nil {
		return nil, err
	}
	script := filepath.Join(dir, "motoseed.py")
	if err := os.WriteFile(script, []byte(motoSeedScript), 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	args := []string{script, "--port", strconv.Itoa(port), "--region", motoserver.Region}
	if cacheListing {
		args = append(args, "--cache-listing")
	}
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), motoserver.Env()...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &lockedWriter{w: &stderr}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (direct seeding needs the Python that runs moto_server; -discovery-python names it): %w", python, err)
	}
	m := &seededMoto{endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); os.RemoveAll(dir); close(m.done) }()
	w := bufio.NewWriterSize(stdin, 1<<20)
	enc := json.NewEncoder(w)
	sent := 0
	for s := range specs {
		if err := enc.Encode(s); err != nil {
			m.stop()
			return nil, fmt.Errorf("seeding moto (%s): %w: %s", python, err, lastLines(cmd.Stderr.(*lockedWriter).String(), 5))
		}
		sent++
	}
	if sent != n {
		m.stop()
		return nil, fmt.Errorf("seeding: made %d of %d secrets", sent, n)
	}
	if _, err := w.WriteString("END\n"); err != nil || w.Flush() != nil {
		m.stop()
		return nil, fmt.Errorf("seeding moto (%s): %s", python, lastLines(cmd.Stderr.(*lockedWriter).String(), 5))
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != fmt.Sprintf("ready %d", n) {
			m.stop()
			return nil, fmt.Errorf("moto seeded by %s did not start (%q): %s", python, line, lastLines(cmd.Stderr.(*lockedWriter).String(), 5))
		}
	case <-ctx.Done():
		m.stop()
		return nil, ctx.Err()
	}
	return m, nil
}

func (m *seededMoto) stop() {
	_ = m.stdin.Close()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

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
	cmd := exec.Command(cfg.ServeBinary, "serve", "--config", filepath.Join(dir, "lakirotator.yaml"))
	cmd.Dir = dir
	cmd.Env = motoserver.Env()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s serve: %w", cfg.ServeBinary, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := strconv.Itoa(cmd.Process.Pid)
	serveLog := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	waitListing := func(no int, within time.Duration) (Listing, error) {
		deadline := time.Now().Add(within)
		for {
			if l, ok := counter.listing(no); ok {
				return l, nil
			}
			select {
			case <-exited:
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
			case <-exited:
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

// discoveryPolicies are the policies of the discovered secrets (monthly, so no
// slot falls in a run).
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
