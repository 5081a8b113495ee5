package demo_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lakirotator/lakirotator/cli"
	"github.com/lakirotator/lakirotator/demo"
	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/internal/testutil/syncbuf"
)

var update = flag.Bool("update", false, "rewrite testdata/terminal.golden from this run")

// TestDemoTerminalOutputGolden runs the demo on a fake clock, one second at
// a time, and compares what a person sees on the terminal (stdout and
// stderr together) with testdata/terminal.golden. Ids, ports and the
// directory are replaced by placeholders. Within one clock second the
// lines are grouped by secret, each secret's in the order they came: the
// rotations of one slot run concurrently and interleave.
func TestDemoTerminalOutputGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo through 80 simulated seconds")
	}
	start := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	fc := clock.NewFake(start)
	dir := filepath.Join(t.TempDir(), "demo")
	var term syncbuf.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- demo.Run(ctx, demo.Options{
			Dir: dir, Listen: "127.0.0.1:0", Out: &term, Err: &term, Clock: fc, Workers: 1,
			Schedule: "@every 30s", Grace: 20 * time.Second, ExposeAfter: 45 * time.Second, RetireInterval: 7 * time.Second,
		})
	}()
	settle := func() {
		// Quiet: neither the output nor the number of loops waiting on the
		// clock has changed for 400 ms. A shorter window let a slow machine
		// (CI beside other builds) carry one second's lines into the next.
		last, lastWaiters, quiet := -1, -1, 0
		for deadline := time.Now().Add(20 * time.Second); quiet < 40 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			if n, w := len(term.String()), fc.Waiters(); n == last && w == lastWaiters {
				quiet++
			} else {
				last, lastWaiters, quiet = n, w, 0
			}
		}
	}
	waitFor(t, func() bool { return strings.Contains(term.String(), "From a second terminal") })
	settle()
	var steps []string
	mark := 0
	take := func(label string) {
		all := term.String()
		chunk := all[mark:]
		mark = len(all)
		lines := strings.Split(strings.TrimRight(chunk, "\n"), "\n")
		if chunk == "" {
			return
		}
		sort.SliceStable(lines, func(i, j int) bool { return secretOf(lines[i]) < secretOf(lines[j]) })
		steps = append(steps, "== "+label+"\n"+strings.Join(lines, "\n"))
	}
	take("start")
	checkStatus(t, dir, 7, start.Add(30*time.Second))
	for s := 1; s <= 80; s++ {
		fc.Advance(time.Second)
		settle()
		take(fc.Now().UTC().Format("15:04:05"))
		if s == 40 {
			checkStatus(t, dir, 7, start.Add(60*time.Second))
			checkPolicy(t, dir)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}
	take("stopped")
	// The verbs run beside it (policy check --demo) left the demo's trail whole.
	checkTrailVerifies(t, dir)
	got := normalize(strings.Join(steps, "\n")+"\n", dir)

	for _, bad := range []string{"level=", `msg="lifecycle event"`, `error=""`, "=\"\"", "time="} {
		if strings.Contains(got, bad) {
			t.Errorf("the terminal shows %q", bad)
		}
	}
	for _, want := range []string{"Test of new credential succeeded", "Compromise rotation succeeded: demo/production/checkout",
		"7 managed secrets", "lakirotator demo: stopping", "lakirotator demo: stopped"} {
		if !strings.Contains(got, want) {
			t.Errorf("the terminal does not show %q", want)
		}
	}
	// At most one retirement success per retirement started. (The audit
	// trail still holds two records for a compromise's old key, one when
	// the rotation ends it and one when the next retire pass confirms it:
	// an engine matter, reported for the engine's issue; the terminal shows
	// one because notifications are de-duplicated within dedup_window.)
	started, retired := map[string]int{}, map[string]int{}
	for _, line := range strings.Split(got, "\n") {
		switch {
		case strings.Contains(line, "Retirement of old credential started"):
			started[secretOf(line)]++
		case strings.Contains(line, "Retirement of old credential succeeded"):
			retired[secretOf(line)]++
		}
	}
	for name, n := range retired {
		if n > started[name] {
			t.Errorf("%s: %d retirements shown as succeeded, %d started", name, n, started[name])
		}
	}

	golden := filepath.Join("testdata", "terminal.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("terminal output differs from %s at line %d:\n got: %s\nwant: %s\n(run with -update if the change is meant)", golden, i+1, g, w)
			}
		}
	}
}

var placeholders = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`127\.0\.0\.1:\d+`), "127.0.0.1:PORT"},
	{regexp.MustCompile(`…[A-Za-z0-9]{4}`), "…XXXX"},
	{regexp.MustCompile(`\b(key|whs|we|mm|evt)_[A-Za-z0-9]{8,}`), "${1}_X"},
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "VERSION"},
}

func normalize(s, dir string) string {
	s = strings.ReplaceAll(s, dir, "DEMO_DIR")
	for _, p := range placeholders {
		s = p.re.ReplaceAllString(s, p.with)
	}
	return s
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var secretInLine = regexp.MustCompile(`: (demo/[a-z]+/[a-z-]+) `)

// secretOf is the secret a notification line is about, "" for other lines.
func secretOf(line string) string {
	if m := secretInLine.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

// checkStatus asks the running demo, as `status --demo -o json` does, and
// wants the banner's count of secrets and the scheduler's next firing.
func checkStatus(t *testing.T, dir string, count int, next time.Time) {
	t.Helper()
	var out, errb syncbuf.Buffer
	env := map[string]string{"LAKIROTATOR_DEMO_DIR": dir}
	code := cli.Main([]string{"status", "--demo", "-o", "json"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb, Env: func(k string) string { return env[k] }})
	if code != 0 {
		t.Fatalf("status --demo: exit %d: %s", code, errb.String())
	}
	var inv httpapi.Inventory
	if err := json.Unmarshal([]byte(out.String()), &inv); err != nil {
		t.Fatal(err)
	}
	if len(inv.Secrets) != count {
		t.Errorf("status lists %d secrets, the banner says %d", len(inv.Secrets), count)
	}
	for _, s := range inv.Secrets {
		if s.NextRotation == nil || !s.NextRotation.Equal(next) {
			t.Errorf("%s: next rotation %v, want %s (when the scheduler fires)", s.Name, s.NextRotation, next)
		}
	}
}

// checkPolicy runs `policy check --demo --fail-on critical`: the demo's own
// credentials and its loopback security webhook pass.
func checkPolicy(t *testing.T, dir string) {
	t.Helper()
	var out, errb syncbuf.Buffer
	env := map[string]string{"LAKIROTATOR_DEMO_DIR": dir}
	code := cli.Main([]string{"policy", "check", "--demo", "--fail-on", "critical"}, cli.IO{In: strings.NewReader(""), Out: &out, Err: &errb, Env: func(k string) string { return env[k] }})
	if code != 0 || strings.Contains(out.String(), "unmanaged_") {
		t.Errorf("policy check --demo --fail-on critical: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
}
