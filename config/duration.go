package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written as Go durations are ("90s", "15m",
// "2h30m") or with a leading whole number of days ("7d", "1d12h").
type Duration time.Duration

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String writes the duration in the form ParseDuration reads, leaving out
// zero units: "7d", "1d12h", "15m", "1m30s", "0s".
func (d Duration) String() string {
	td := time.Duration(d)
	if td <= 0 {
		return td.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := td / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			td -= n * u.unit
		}
	}
	if td > 0 {
		b.WriteString(td.String())
	}
	return b.String()
}

// MarshalYAML writes the duration in the form ParseDuration reads.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// ParseDuration reads a non-negative duration: Go's form with an optional
// leading "<n>d" for days.
func ParseDuration(s string) (Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration")
	}
	var days int64
	rest := s
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || s[0] == '+' {
			return 0, fmt.Errorf("%q is not a duration: days must be a whole number before d, as in 7d or 1d12h", s)
		}
		days, rest = n, s[i+1:]
		if days > math.MaxInt64/int64(24*time.Hour) {
			return 0, fmt.Errorf("%q is too long", s)
		}
	}
	var d time.Duration
	if rest != "" {
		var err error
		d, err = time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration: use a number and a unit (s, m, h, d), as in 90s, 15m, 2h or 7d", s)
		}
		if rest[0] == '-' || rest[0] == '+' {
			return 0, fmt.Errorf("%q has a sign: durations are written unsigned, as in 90s or 7d", s)
		}
	}
	total := time.Duration(days) * 24 * time.Hour
	if d > math.MaxInt64-total {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return Duration(total + d), nil
}

func (d *Duration) decodeNode(dec *decoder, n *yaml.Node, path string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.ShortTag() == "!!int" || n.ShortTag() == "!!float" {
			hint = " (add a unit: 90s, 15m, 2h, 7d)"
		}
		dec.problem(n, path, "expected a duration such as 90s, 15m, 2h or 7d, got %s%s", describe(n), hint)
		return
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		dec.problem(n, path, "%v", err)
		return
	}
	*d = v
}
