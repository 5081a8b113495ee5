package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/lakirotator/lakirotator/internal/secret"
)

// The catalog's refresh in a real `lakirotator serve`, at 300 tag-discovered
// secrets in moto behind the counting proxy: the start-up listing and the
// periodic refresh (a minute later) are each 3 ListSecrets pages and
// nothing else, and no call ever names one of the 300 secrets (no
// DescribeSecret, no GetSecretValue per secret). Takes a little over a
// minute: serve's shortest refresh interval.
func TestRefreshCostsOnlyListSecretsPages(t *testing.T) {
	if testing.Short() {
		t.Skip("moto and a minute of serve")
	}
	const n = 300
	bin := filepath.Join(t.TempDir(), "lakirotator")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/lakirotator/lakirotator/cmd/lakirotator").CombinedOutput(); err != nil {
		t.Fatalf("go build lakirotator: %v\n%s", err, out)
	}
	var (
		mu       sync.Mutex
		values   []secret.Value
		progress strings.Builder
	)
	rep, err := RunDiscovery(context.Background(), DiscoveryConfig{
		N: n, ServeBinary: bin,
		seeded:   func(v secret.Value) { mu.Lock(); values = append(values, v); mu.Unlock() },
		Progress: func(f string, a ...any) { mu.Lock(); progress.WriteString(f + "\n"); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Discovered != n {
		t.Errorf("serve loaded %d secrets, want %d", rep.Discovered, n)
	}
	for what, l := range map[string]Listing{"start-up listing": rep.Startup, "refresh": rep.Refresh} {
		if l.Pages != n/100 {
			t.Errorf("the %s took %d ListSecrets pages, want %d (100 secrets a page)", what, l.Pages, n/100)
		}
		if len(l.PerSecret) != 0 {
			t.Errorf("the %s made calls that name a discovered secret: %v", what, l.PerSecret)
		}
		if l.Other["DescribeSecret"] != 0 {
			t.Errorf("the %s made %d DescribeSecret calls", what, l.Other["DescribeSecret"])
		}
	}
	if len(rep.ManagedSecretCalls) != 0 {
		t.Errorf("calls that name a discovered secret: %v; discovery must cost only list pages", rep.ManagedSecretCalls)
	}
	if got := rep.Calls["DescribeSecret"]; got != 0 {
		t.Errorf("serve made %d DescribeSecret calls", got)
	}
	if rep.IdleRSSMB <= 0 || rep.PeakRSSMB < rep.IdleRSSMB {
		t.Errorf("memory figures are not plausible: idle %.1f MB, peak %.1f MB", rep.IdleRSSMB, rep.PeakRSSMB)
	}
	var out bytes.Buffer
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(js)
	out.WriteString(progress.String())
	noLeak(t, out.String(), values, n)
	if !strings.Contains(out.String(), "3 ListSecrets pages") {
		t.Errorf("the table does not show the pages:\n%s", out.String())
	}
}

func TestDiscoveryConfigErrorsNameTheFlag(t *testing.T) {
	for _, c := range []struct {
		cfg  DiscoveryConfig
		want string
	}{
		{DiscoveryConfig{N: 0, ServeBinary: "x"}, "-discovery 0"},
		{DiscoveryConfig{N: 10, Seed: "bulk", ServeBinary: "x"}, `-discovery-seed "bulk"`},
		{DiscoveryConfig{N: 10, Seed: SeedAPI, StockListing: true, ServeBinary: "x"}, "-discovery-stock-listing"},
		{DiscoveryConfig{N: 10, ServeBinary: "x", RefreshEvery: 30e9}, "below serve's minimum of 1m"},
		{DiscoveryConfig{N: 10}, "-serve-binary"},
	} {
		if _, err := RunDiscovery(context.Background(), c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("RunDiscovery(%+v) = %v, want an error naming %q", c.cfg, err, c.want)
		}
	}
}
