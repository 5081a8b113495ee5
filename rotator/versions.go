// versions.go names a rotation's version ids: the first, the attempts that
// follow an abandoned one, and the create attempt each starts at.

package rotator

import (
	"strconv"
	"strings"

	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/providers/secretstore"
)

// maxVersionAttempts bounds how many versions one cause may write: a
// version whose credential failed its test (a replayed create that hands
// back a key ended since, say) is abandoned and the cause moves on to its
// next version, at most this many times.
const maxVersionAttempts = 3

// maxCreateAttempts bounds the Idempotency-Key attempts of one version's
// create: a replayed dead end (409, 422) moves to the next key.
const maxCreateAttempts = 4

// TagCreateAttempt records, off the happy path only, that a version's create
// moved past a dead-end idempotency key ("<version id> <n>"), so that a
// restart or a replica starts at that attempt instead of replaying the dead
// end for LakiConnect's 24 hours.
const TagCreateAttempt = "lakirotator:create-attempt"

// versionFor is the version id of the cause's current version attempt: the
// first, unless earlier ones were abandoned (written, never promoted, then
// named by the failure tags or followed by a later attempt).
func versionFor(info secretstore.Secret, ref, causeID string) string {
	vid := versionAttempt(ref, causeID, 1)
	for n := 2; n <= maxVersionAttempts; n++ {
		v, ok := info.Version(vid)
		if !ok || v.Has(secretstore.StageCurrent) || v.Has(secretstore.StagePending) {
			return vid
		}
		next := versionAttempt(ref, causeID, n)
		if _, later := info.Version(next); !later && info.Tags[TagFailingVersion] != vid {
			return vid
		}
		vid = next
	}
	return vid
}

// createAttemptOf is the first create attempt to try for the version.
func createAttemptOf(info secretstore.Secret, vid string) int {
	f := strings.Fields(info.Tags[TagCreateAttempt])
	if len(f) == 2 && f[0] == vid {
		if n, err := strconv.Atoi(f[1]); err == nil && n >= 1 && n <= maxCreateAttempts {
			return n
		}
	}
	return 1
}

// hasNextVersion reports whether the cause has a version attempt after vid.
func hasNextVersion(ref, causeID, vid string) bool {
	for n := 1; n < maxVersionAttempts; n++ {
		if versionAttempt(ref, causeID, n) == vid {
			return true
		}
	}
	return false
}

// versionAttempt is the version id of the cause's n-th version attempt.
func versionAttempt(ref, causeID string, n int) string {
	if n <= 1 {
		return VersionID(ref, causeID)
	}
	return VersionID(ref, causeID+"#attempt-"+strconv.Itoa(n))
}

// VersionOf is the version id a rotation of the secret under the cause
// writes, given the secret's listing (after abandoned version attempts, the
// current attempt's).
func VersionOf(ms inventory.ManagedSecret, info secretstore.Secret, causeID string) string {
	return versionFor(info, refOf(ms, &info), causeID)
}

// TriggerSettled reports whether the rotation of the trigger (by its id) has
// been written and is no longer in flight: its version is (or was) current, or
// was left behind. A trigger that is not settled has nothing stored yet, or
// its version is AWSPENDING in flight.
func TriggerSettled(ms inventory.ManagedSecret, info secretstore.Secret, causeID string) bool {
	v, ok := info.Version(VersionOf(ms, info, causeID))
	return ok && !(v.Has(secretstore.StagePending) && !v.Has(secretstore.StageCurrent))
}
