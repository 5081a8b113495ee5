package policies

import "time"

// OldKeyStillUsed reports whether consumers still use an old key close to
// the end of its grace, by the policy's alerts: used within LastUsedWarning
// of its end, or used after its promotion (graceStart) once
// LastUsedWarningFraction of the grace has passed. lastUsed is
// LakiConnect's last_used_at, kept to the minute, so only a use in a minute
// after the promotion's is surely a use after it.
func OldKeyStillUsed(a Alerts, now, graceStart, endsAt time.Time, lastUsed *time.Time) bool {
	if lastUsed == nil || !now.Before(endsAt) {
		return false
	}
	if w := a.LastUsedWarning; w > 0 && endsAt.Sub(now) <= w && now.Sub(*lastUsed) <= w {
		return true
	}
	f := a.LastUsedWarningFraction
	if f <= 0 || graceStart.IsZero() || !endsAt.After(graceStart) {
		return false
	}
	warnFrom := graceStart.Add(time.Duration(f * float64(endsAt.Sub(graceStart))))
	usedAfter := !lastUsed.Before(graceStart.Truncate(time.Minute).Add(time.Minute))
	return usedAfter && !now.Before(warnFrom)
}
