package bench

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

// discoveryFlags are lakibench's -discovery mode: `lakibench -discovery
// 100000` measures discovery and idle memory instead of a rotation run.
type discoveryFlags struct {
	n       *int
	seed    *string
	stock   *bool
	python  *string
	refresh *time.Duration
}

func addDiscoveryFlags(fs *flag.FlagSet) *discoveryFlags {
	return &discoveryFlags{
		n:       fs.Int("discovery", 0, "measure discovery instead: seed this many tag-discovered secrets, run `lakirotator serve` (-serve-binary) on them and report refresh time, calls per refresh and idle memory"),
		seed:    fs.String("discovery-seed", SeedDirect, "how -discovery seeds moto: direct (in moto's own process, before it serves) or api (concurrent CreateSecret)"),
		stock:   fs.Bool("discovery-stock-listing", false, "with -discovery-seed direct: leave moto's ListSecrets unchanged (it rebuilds every secret on every page)"),
		python:  fs.String("discovery-python", "python3", "the Python that runs moto (it must import moto), for -discovery-seed direct"),
		refresh: fs.Duration("discovery-refresh", time.Minute, "serve's discovery.refresh_interval for -discovery (at least 1m)"),
	}
}

func (f *discoveryFlags) requested() bool { return *f.n != 0 }

func (f *discoveryFlags) main(serveBin string, asJSON bool, stdout, stderr io.Writer) int {
	binary, err := exec.LookPath(serveBin)
	if err == nil {
		binary, err = filepath.Abs(binary) // serve runs in a directory of its own
	}
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: -discovery: %v (build it with: go build -o lakirotator ./cmd/lakirotator)\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := RunDiscovery(ctx, DiscoveryConfig{
		N: *f.n, Seed: *f.seed, StockListing: *f.stock, Python: *f.python, ServeBinary: binary, RefreshEvery: *f.refresh,
		Progress: func(format string, a ...any) { fmt.Fprintf(stderr, "lakibench: "+format+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteTable(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "lakibench: %v\n", err)
		return 1
	}
	return 0
}

// WriteTable prints the report for people.
func (r *DiscoveryReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, a...)) }
	row("date", "%s (%d CPUs)", r.Date.Format(time.RFC3339), r.CPUs)
	row("secrets seeded / loaded by serve", "%d / %d", r.N, r.Discovered)
	row("seeding", "%s, %.1f s (moto listing: %s)", r.Seed, r.SeedSeconds, r.MotoListing)
	for _, l := range []struct {
		what string
		l    Listing
	}{{"start-up listing", r.Startup}, {"refresh", r.Refresh}} {
		row(l.what, "%d ListSecrets pages in %.2f s; per-secret calls: %s; other calls meanwhile: %s", l.l.Pages, l.l.Seconds, opCounts(l.l.PerSecret), opCounts(l.l.Other))
	}
	row("calls naming a managed secret", "%s", opCounts(r.ManagedSecretCalls))
	row("all Secrets Manager calls of serve", "%s", opCounts(r.Calls))
	row("idle RSS after start-up / after the refresh", "%.1f MB / %.1f MB (goal < 100 MB)", r.IdleRSSMB, r.IdleAfterRefresh)
	row("peak RSS", "%.1f MB", r.PeakRSSMB)
	if r.Note != "" {
		row("note", "%s", r.Note)
	}
	return tw.Flush()
}

func opCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
