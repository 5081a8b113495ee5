package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/lakirotator/lakirotator/internal/secret"
	"github.com/lakirotator/lakirotator/internal/testutil/motoserver"
	"github.com/lakirotator/lakirotator/inventory"
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
	out := printed(t, rep, progress.String())
	noLeak(t, out, values, n)
	if !strings.Contains(out, "3 ListSecrets pages") {
		t.Errorf("the table does not show the pages:\n%s", out)
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

// The direct moto's listing, built once per listing, answers the same
// pages, in the same order, with the same tokens as moto_server's own:
// the same secrets seeded both ways (by the API into moto_server, directly
// into the direct moto) and listed with the discovery filters. (A run's
// secrets are created in order either way; -discovery-seed api makes them
// concurrently, so moto_server then lists them in another order.)
func TestDirectMotoListsAsMotoDoes(t *testing.T) {
	if testing.Short() {
		t.Skip("moto")
	}
	const n = 250
	specs := func() <-chan discoverySpec {
		ch := make(chan discoverySpec, n)
		for i := range n {
			s, err := discoveryCredential("run1", "mm_0123456789abcdef", i, discoveryName("run1", i), nil)
			if err != nil {
				t.Fatal(err)
			}
			ch <- s
		}
		close(ch)
		return ch
	}
	// moto_server lists in the order secrets were made: one at a time here.
	stock := smClient(motoserver.Start(t))
	for s := range specs() {
		one := make(chan discoverySpec, 1)
		one <- s
		close(one)
		if err := seedByAPI(context.Background(), stock, one, 1); err != nil {
			t.Fatal(err)
		}
	}
	direct, err := startSeededMoto(context.Background(), "python3", true, specs(), n)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.stop()
	type page struct {
		names []string
		next  string
	}
	list := func(c *sm.Client) []page {
		var pages []page
		in := &sm.ListSecretsInput{MaxResults: aws.Int32(100), Filters: []types.Filter{
			{Key: types.FilterNameStringTypeTagKey, Values: []string{inventory.TagManaged, runTag}},
			{Key: types.FilterNameStringTypeTagValue, Values: []string{"true", "run1"}},
		}}
		for {
			out, err := c.ListSecrets(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			var p page
			for _, s := range out.SecretList {
				p.names = append(p.names, aws.ToString(s.Name))
			}
			p.next = aws.ToString(out.NextToken)
			pages = append(pages, p)
			if p.next == "" {
				return pages
			}
			in.NextToken = out.NextToken
		}
	}
	want, got := list(stock), list(smClient(direct.endpoint))
	if len(want) != 3 {
		t.Fatalf("moto_server listed %d pages for %d secrets, want 3", len(want), n)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the direct moto's listing differs from moto_server's:\n got %v\nwant %v", got, want)
	}
}
