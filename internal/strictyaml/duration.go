package strictyaml

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration reads a non-negative duration as the config and policy
// files write them: Go's form ("90s", "15m", "2h30m", "0") with an optional
// leading whole number of days ("7d", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
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
	return total + d, nil
}

// FormatDuration writes d in the form ParseDuration reads, leaving out zero
// units: "7d", "1d12h", "15m", "1m30s", "0s". A negative d (which no file
// holds) is written in Go's form.
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return d.String()
	}
	var b strings.Builder
	for _, u := range []struct {
		unit time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	if d > 0 {
		b.WriteString(d.String())
	}
	return b.String()
}
