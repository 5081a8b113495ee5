// Discovery at scale: `lakibench -discovery N` seeds N tag-discovered
// secrets in moto, runs `lakirotator serve` on them behind a proxy that
// counts every Secrets Manager call, and reports how long the catalog
// refresh takes, which calls it makes, and serve's idle memory.

package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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
