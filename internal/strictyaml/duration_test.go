package strictyaml

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	ok := map[string]time.Duration{
		"90s": 90 * time.Second, "15m": 15 * time.Minute, "2h": 2 * time.Hour, "36h": 36 * time.Hour,
		"7d": 7 * 24 * time.Hour, "90d": 90 * 24 * time.Hour, "1d12h": 36 * time.Hour, "0": 0, "0s": 0, "0d": 0,
		"1.5s": 1500 * time.Millisecond, "2h30m": 150 * time.Minute,
	}
	for in, want := range ok {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":             "empty duration",
		"5":            `"5" is not a duration: use a number and a unit (s, m, h, d), as in 90s, 15m, 2h or 7d`,
		"-5m":          `"-5m" has a sign: durations are written unsigned, as in 90s or 7d`,
		"-3d":          `"-3d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"d":            `"d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"1.5d":         `"1.5d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"1d-1h":        `"1d-1h" has a sign: durations are written unsigned, as in 90s or 7d`,
		"+1d":          `"+1d" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"3w":           `"3w" is not a duration: use a number and a unit (s, m, h, d), as in 90s, 15m, 2h or 7d`,
		"ninety days":  `"ninety days" is not a duration: days must be a whole number before d, as in 7d or 1d12h`,
		"99999999999d": `"99999999999d" is too long`,
	}
	for in, want := range bad {
		if _, err := ParseDuration(in); err == nil || err.Error() != want {
			t.Errorf("ParseDuration(%q) error = %v; want %s", in, err, want)
		}
	}
}

func TestFormatDurationReadsBack(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 90 * 24 * time.Hour: "90d", 36 * time.Hour: "1d12h", 51 * time.Hour: "2d3h", time.Hour: "1h",
		90 * time.Second: "1m30s", 1500 * time.Millisecond: "1s500ms", 24*time.Hour + time.Nanosecond: "1d1ns",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}

// durationInProse finds what reads as a duration in a document: 90d, 1d12h,
// 2h30m, 1.5s, standing alone.
var durationInProse = regexp.MustCompile(`(?:^|[^\w.])((?:\d+d(?:\d+(?:h|ms|m|s))*)|(?:\d+(?:\.\d+)?(?:h|ms|m|s))+)(?:$|[^\w])`)

// Every duration the docs show is read by the one grammar both loaders use,
// and writes back to itself: what a reader copies from the docs works in
// either file, and what an error message prints can be pasted back.
func TestEveryDocumentedDurationRoundTrips(t *testing.T) {
	root := filepath.Join("..", "..")
	files := []string{"README.md", "config/REFERENCE.md", "config/example.yaml", "policies/README.md"}
	examples, err := filepath.Glob(filepath.Join(root, "policies", "examples", "*.yaml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no policy examples: %v", err)
	}
	for _, e := range examples {
		rel, _ := filepath.Rel(root, e)
		files = append(files, rel)
	}
	seen := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range durationInProse.FindAllStringSubmatch(string(data), -1) {
			s := m[1]
			if s == "401s" || s == "403s" { // HTTP statuses in the plural, not durations
				continue
			}
			seen[s] = true
			d, err := ParseDuration(s)
			if err != nil {
				t.Errorf("%s shows %q, which does not parse: %v", f, s, err)
				continue
			}
			if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
				t.Errorf("%s: %q formats as %q, which reads back as %v, %v", f, s, FormatDuration(d), back, err)
			}
		}
	}
	for _, must := range []string{"90d", "1d12h", "36h", "15m", "0s"} {
		if !seen[must] {
			t.Errorf("the docs no longer show %q; the scan of the docs may be broken (found %d durations)", must, len(seen))
		}
	}
}

// Any duration a file may hold (0 up to the longest) writes in a form that
// reads back to itself, down to the nanosecond: what an error message
// prints can be pasted into either file.
func TestFormatDurationReadsBackAnyDuration(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 15))
	units := []time.Duration{time.Nanosecond, time.Microsecond, time.Millisecond, time.Second, time.Minute, time.Hour, 24 * time.Hour}
	for range 20000 {
		// Whole units of every size, and some with a ragged remainder.
		u := units[r.IntN(len(units))]
		d := time.Duration(r.Int64N(int64(400*24*time.Hour)/int64(u)+1)) * u
		if r.IntN(4) == 0 {
			d += time.Duration(r.Int64N(int64(time.Second)))
		}
		s := FormatDuration(d)
		if back, err := ParseDuration(s); err != nil || back != d {
			t.Fatalf("FormatDuration(%d) = %q, which reads back as %v, %v", int64(d), s, back, err)
		}
	}
	if s := FormatDuration(math.MaxInt64); s != "106751d23h47m16s854.775807ms" {
		t.Errorf("FormatDuration(max) = %q", s)
	}
	if back, err := ParseDuration(FormatDuration(math.MaxInt64)); err != nil || back != math.MaxInt64 {
		t.Errorf("the longest duration reads back as %v, %v", back, err)
	}
}
