package policies

import (
	"testing"
	"time"
)

func TestOldKeyStillUsed(t *testing.T) {
	start := time.Date(2026, 6, 1, 9, 0, 30, 0, time.UTC) // promotion
	end := start.Add(10 * time.Hour)
	at := func(d time.Duration) time.Time { return start.Add(d) }
	ptr := func(t time.Time) *time.Time { return &t }
	frac := Alerts{LastUsedWarningFraction: 0.8}
	dur := Alerts{LastUsedWarning: time.Hour}
	cases := []struct {
		name string
		pol  Alerts
		now  time.Time
		last *time.Time
		want bool
	}{
		{"fraction: used after promotion, 80% of the grace passed", frac, at(8 * time.Hour), ptr(at(7 * time.Hour)), true},
		{"fraction: just before 80%", frac, at(8*time.Hour - time.Second), ptr(at(7 * time.Hour)), false},
		{"fraction: last use in the promotion's minute (may be before it)", frac, at(9 * time.Hour), ptr(start.Truncate(time.Minute)), false},
		{"fraction: first minute after the promotion's", frac, at(9 * time.Hour), ptr(start.Truncate(time.Minute).Add(time.Minute)), true},
		{"fraction: never used", frac, at(9 * time.Hour), nil, false},
		{"fraction: past the end", frac, end, ptr(at(9 * time.Hour)), false},
		{"duration: used recently within the last hour", dur, at(9*time.Hour + 30*time.Minute), ptr(at(9 * time.Hour)), true},
		{"duration: last use older than the window", dur, at(9*time.Hour + 30*time.Minute), ptr(at(7 * time.Hour)), false},
		{"off", Alerts{}, at(9 * time.Hour), ptr(at(9 * time.Hour)), false},
	}
	for _, c := range cases {
		if got := OldKeyStillUsed(c.pol, c.now, start, end, c.last); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
