package rotator

import "time"

// oldKeyStillUsedNearEnd reports whether consumers still use an old key
// close to the end of its grace: used within LastUsedWarning of its end,
// or used after its promotion (graceStart, when the new version was
// stored) once LastUsedWarningFraction of the grace has passed.
func oldKeyStillUsedNearEnd(pol RotationPolicy, now, endsAt, graceStart time.Time, lastUsed *time.Time) bool {
	if lastUsed == nil || !now.Before(endsAt) {
		return false
	}
	if w := pol.LastUsedWarning; w > 0 && endsAt.Sub(now) <= w && now.Sub(*lastUsed) <= w {
		return true
	}
	f := pol.LastUsedWarningFraction
	if f <= 0 || graceStart.IsZero() || !endsAt.After(graceStart) {
		return false
	}
	warnFrom := graceStart.Add(time.Duration(f * float64(endsAt.Sub(graceStart))))
	// last_used_at is kept to the minute: only a use in a minute after the
	// promotion's is surely a use after it.
	usedAfter := !lastUsed.Before(graceStart.Truncate(time.Minute).Add(time.Minute))
	return usedAfter && !now.Before(warnFrom)
}
