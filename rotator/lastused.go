package rotator

import (
	"time"

	"github.com/lakirotator/lakirotator/policies"
)

// oldKeyStillUsedNearEnd applies the policy's rule (policies.OldKeyStillUsed,
// which policy check applies too) with the engine's view of the policy.
func oldKeyStillUsedNearEnd(pol RotationPolicy, now, endsAt, graceStart time.Time, lastUsed *time.Time) bool {
	return policies.OldKeyStillUsed(policies.Alerts{LastUsedWarning: pol.LastUsedWarning, LastUsedWarningFraction: pol.LastUsedWarningFraction},
		now, graceStart, endsAt, lastUsed)
}
