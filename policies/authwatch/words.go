package authwatch

import (
	"fmt"
	"time"
)

// sentence says what happened in words a person on call understands: which
// secret and key, how many refusals of what kind in what time, against what
// threshold, and what it likely means.
func sentence(g groupKey, info KeyInfo, managed bool, keyID string, prefixes map[string]int, count, threshold, baseline int, win time.Duration) string {
	refused := fmt.Sprintf("%d requests were refused with %d (%s) in the last %s (alert at %d; %d at the previous check)",
		count, g.status, statusWords(g.status), win, threshold, baseline)
	where := fmt.Sprintf("merchant %s in %s", g.merchant, g.env)
	switch {
	case g.key == unattributed:
		top, n := topPrefix(prefixes)
		return fmt.Sprintf("%s with keys LakiConnect does not know, for %s, from %d key prefix(es) (most: %s, %d times). Someone may be guessing keys, or a client has a mistyped key.",
			refused, where, len(prefixes), top, n)
	case !managed:
		return fmt.Sprintf("%s with key %s of %s, which no managed secret holds. Find who uses it; the rotator cannot replace it.", refused, keyID, where)
	case info.State == Retired && g.status == 401:
		return fmt.Sprintf("%s with key %s, the retired (previous) key of %s. A consumer still uses the old credential, or the old key leaked and is being tried.", refused, keyID, info.Secret)
	case info.State == Retired:
		return fmt.Sprintf("%s with key %s, the retired (previous) key of %s. A consumer still uses the old credential.", refused, keyID, info.Secret)
	case g.status == 401:
		return fmt.Sprintf("%s with key %s, the current key of %s. The key may be revoked at LakiConnect, or leaked and being abused.", refused, keyID, info.Secret)
	default:
		return fmt.Sprintf("%s with key %s, the current key of %s. Its scopes are narrower than a consumer needs (policy %s).", refused, keyID, info.Secret, info.Policy.Name)
	}
}

func statusWords(status int) string {
	if status == 401 {
		return "unauthorized"
	}
	return "forbidden"
}

// topPrefix returns the prefix seen most (the smallest on a tie) and its count.
func topPrefix(prefixes map[string]int) (string, int) {
	top, n := "", -1
	for p, c := range prefixes {
		if c > n || (c == n && p < top) {
			top, n = p, c
		}
	}
	return top, n
}
