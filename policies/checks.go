package policies

import (
	"net/url"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/strictyaml"
	"github.com/lakirotator/lakirotator/inventory"
	"github.com/lakirotator/lakirotator/laki"
)

// Check is one pure policy check: the facts of one credential and the time
// in, a violation or nil out.
type Check func(f Facts, now time.Time) *Violation

// Checks returns the chain Evaluate runs, in order.
func Checks() []Check {
	return []Check{
		CheckUnknownPolicy,
		CheckStoredKeyMissing,
		CheckStoredKeyRevoked,
		CheckStoredKeyExpiring,
		CheckUnmanagedKey,
		CheckUnmanagedWebhookEndpoint,
		CheckInsecureWebhookURL,
		CheckEnvironmentMismatch,
		CheckEnvironmentNotAllowed,
		CheckEnvironmentName,
		CheckMerchantMismatch,
		CheckOverPrivileged,
		CheckUnderPrivileged,
		CheckManagementKeyScopes,
		CheckKeyTooOld,
		CheckMissingExpiry,
		CheckOldKeyStillInUse,
	}
}

// CheckOldKeyStillInUse: an old key in its grace still used close to its
// end, by the policy's alerts (OldKeyStillUsed). It names the old key.
func CheckOldKeyStillInUse(f Facts, now time.Time) *Violation {
	if !f.Current || !f.Found || !f.isKey() || f.Policy == nil {
		return nil
	}
	for _, pk := range f.PreviousKeys {
		if pk.Status != laki.StatusExpiring || pk.ExpiresAt == nil || !OldKeyStillUsed(f.Policy.Alerts, now, f.CreatedAt, *pk.ExpiresAt, pk.LastUsedAt) {
			continue
		}
		v := f.violation(OldKeyStillInUse, "secret %s: its old key %s was last used at %s and ends at %s (in %s): a consumer is still on it",
			f.Secret, pk.ID, pk.LastUsedAt.UTC().Format(time.RFC3339), pk.ExpiresAt.UTC().Format(time.RFC3339), pk.ExpiresAt.Sub(now).Round(time.Minute))
		v.KeyID = pk.ID
		return v
	}
	return nil
}

// Evaluate runs every check over the facts and returns the violations found,
// in check order.
func Evaluate(f Facts, now time.Time) []Violation {
	var out []Violation
	for _, c := range Checks() {
		if v := c(f, now); v != nil {
			out = append(out, *v)
		}
	}
	return out
}

// CheckUnknownPolicy: a managed secret whose policy is not loaded or is for
// another kind of credential.
func CheckUnknownPolicy(f Facts, _ time.Time) *Violation {
	if !f.Managed || f.Secret == "" {
		return nil
	}
	if f.Policy == nil {
		return f.violation(UnknownPolicy, "secret %s names policy %q, which is not loaded", f.Secret, f.PolicyName)
	}
	if f.Kind != "" && f.Policy.Kind != f.Kind {
		return f.violation(UnknownPolicy, "secret %s holds a %s but its policy %q is for %s", f.Secret, f.Kind, f.Policy.Name, f.Policy.Kind)
	}
	return nil
}

// CheckStoredKeyMissing: the current stored credential is unknown to LakiConnect.
func CheckStoredKeyMissing(f Facts, _ time.Time) *Violation {
	if !f.Current || f.Found {
		return nil
	}
	return f.violation(StoredKeyMissing, "secret %s stores %s, which LakiConnect does not know", f.Secret, f.subject())
}

// CheckStoredKeyRevoked: the current stored credential is revoked.
func CheckStoredKeyRevoked(f Facts, _ time.Time) *Violation {
	if !f.Current || !f.Found || f.Status != laki.StatusRevoked {
		return nil
	}
	return f.violation(StoredKeyRevoked, "secret %s stores %s, which LakiConnect reports revoked: its consumers are refused", f.Secret, f.subject())
}

// CheckStoredKeyExpiring: the current stored credential has a scheduled end.
func CheckStoredKeyExpiring(f Facts, now time.Time) *Violation {
	if !f.Current || !f.Found || f.Status != laki.StatusExpiring {
		return nil
	}
	when := "soon"
	if f.ExpiresAt != nil {
		when = "at " + f.ExpiresAt.UTC().Format(time.RFC3339) + " (in " + f.ExpiresAt.Sub(now).Round(time.Minute).String() + ")"
	}
	return f.violation(StoredKeyExpiring, "secret %s stores %s, which LakiConnect reports expiring %s: its consumers are about to break", f.Secret, f.subject(), when)
}

// CheckUnmanagedKey: a live key no managed secret references.
func CheckUnmanagedKey(f Facts, _ time.Time) *Violation {
	if f.Managed || !f.Found || !f.isKey() || f.KeyID == "" || f.Status == laki.StatusRevoked {
		return nil
	}
	by := "the dashboard"
	if f.CreatedBy != "" {
		by = "key " + f.CreatedBy
	}
	return f.violation(UnmanagedKey, "key %s (created by %s on %s, scopes %s) is %s and no managed secret references it",
		f.KeyID, by, f.CreatedAt.UTC().Format("2006-01-02"), scopeList(f.Scopes), f.Status)
}

// CheckUnmanagedWebhookEndpoint: an endpoint whose signing secret no managed
// secret holds.
func CheckUnmanagedWebhookEndpoint(f Facts, _ time.Time) *Violation {
	if f.Managed || !f.Found || f.Kind != inventory.KindWebhookSecret || f.EndpointID == "" {
		return nil
	}
	return f.violation(UnmanagedWebhookEndpoint, "webhook endpoint %s (%s) has no managed secret holding its signing secret", f.EndpointID, f.EndpointURL)
}

// CheckInsecureWebhookURL: an endpoint URL that is not https.
func CheckInsecureWebhookURL(f Facts, _ time.Time) *Violation {
	if !f.Found || f.Kind != inventory.KindWebhookSecret || f.EndpointURL == "" {
		return nil
	}
	u, err := url.Parse(f.EndpointURL)
	if err == nil && u.Scheme == "https" && u.Host != "" {
		return nil
	}
	if err == nil && u.Scheme == "http" && isLoopbackHost(u.Hostname()) {
		// Plain http to loopback never leaves the machine: tests and the
		// demo use it. Reported, but it cannot fail --fail-on critical.
		v := f.violation(InsecureWebhookURL, "webhook endpoint %s delivers to %q: plain http, allowed only because it is loopback (tests, the demo); never a real receiver", f.EndpointID, f.EndpointURL)
		v.Severity = events.SeverityInfo
		return v
	}
	return f.violation(InsecureWebhookURL, "webhook endpoint %s delivers to %q, which is not an https URL", f.EndpointID, f.EndpointURL)
}

// CheckEnvironmentMismatch: the known environments of the credential disagree.
func CheckEnvironmentMismatch(f Facts, _ time.Time) *Violation {
	type src struct {
		what string
		env  laki.Environment
	}
	var known []src
	if f.Found && f.KeyEnvironment != "" {
		known = append(known, src{"LakiConnect", f.KeyEnvironment})
	}
	if f.DeclaredEnvironment != "" {
		known = append(known, src{"secret declaration", f.DeclaredEnvironment})
	}
	if f.StoredEnvironment != "" {
		known = append(known, src{"stored value", f.StoredEnvironment})
	}
	if f.BaseURLEnvironment != "" {
		known = append(known, src{"base URL", f.BaseURLEnvironment})
	}
	agree := true
	for _, k := range known[min(1, len(known)):] {
		agree = agree && k.env == known[0].env
	}
	if agree {
		return nil
	}
	parts := make([]string, len(known))
	for i, k := range known {
		parts[i] = k.what + " " + string(k.env)
	}
	return f.violation(EnvironmentMismatch, "%s of secret %s: environments disagree (%s)", f.subject(), f.Secret, strings.Join(parts, ", "))
}

// CheckEnvironmentNotAllowed: the credential's environment is outside its policy.
func CheckEnvironmentNotAllowed(f Facts, _ time.Time) *Violation {
	env := f.environment()
	if f.Policy == nil || env == "" || f.Policy.AllowsEnvironment(env) {
		return nil
	}
	return f.violation(EnvironmentNotAllowed, "%s of secret %s is in %s; policy %q allows only %v", f.subject(), f.Secret, env, f.Policy.Name, f.Policy.Environments)
}

// CheckEnvironmentName: a production credential under a sandbox-named secret
// or the reverse.
func CheckEnvironmentName(f Facts, _ time.Time) *Violation {
	if f.Secret == "" {
		return nil
	}
	named, ok := NameEnvironment(f.Secret)
	env := f.environment()
	if !ok || env == "" || named == env {
		return nil
	}
	return f.violation(EnvironmentNameMismatch, "secret %s is named like %s but holds a %s credential (%s)", f.Secret, named, env, f.subject())
}

// CheckMerchantMismatch: the key belongs to another master merchant.
func CheckMerchantMismatch(f Facts, _ time.Time) *Violation {
	if !f.Found || f.KeyMerchantID == "" || f.DeclaredMerchantID == "" || f.KeyMerchantID == f.DeclaredMerchantID {
		return nil
	}
	return f.violation(MerchantMismatch, "%s of secret %s belongs to master merchant %s, the secret declares %s", f.subject(), f.Secret, f.KeyMerchantID, f.DeclaredMerchantID)
}

// CheckOverPrivileged: the key holds scopes beyond its policy. The
// management key is judged by CheckManagementKeyScopes instead.
func CheckOverPrivileged(f Facts, _ time.Time) *Violation {
	if !f.Found || f.Policy == nil || f.Kind != inventory.KindAPIKey || f.Status == laki.StatusRevoked {
		return nil
	}
	extra := ScopeDiff(f.Scopes, f.Policy.Scopes)
	if len(extra) == 0 {
		return nil
	}
	return f.violation(OverPrivileged, "key %s of secret %s holds %s beyond policy %q (%s); the next rotation narrows it",
		f.KeyID, f.Secret, scopeList(extra), f.Policy.Name, scopeList(f.Policy.Scopes))
}

// CheckUnderPrivileged: the key lacks scopes its policy grants.
func CheckUnderPrivileged(f Facts, _ time.Time) *Violation {
	if !f.Found || f.Policy == nil || !f.isKey() || f.Status == laki.StatusRevoked {
		return nil
	}
	missing := ScopeDiff(f.Policy.Scopes, f.Scopes)
	if len(missing) == 0 {
		return nil
	}
	return f.violation(UnderPrivileged, "key %s of secret %s lacks %s that policy %q grants: its consumer is refused with 403",
		f.KeyID, f.Secret, scopeList(missing), f.Policy.Name)
}

// CheckManagementKeyScopes: the management key holds more than rotation needs.
func CheckManagementKeyScopes(f Facts, _ time.Time) *Violation {
	if !f.Found || !(f.ManagementKey || f.Kind == inventory.KindManagementKey) || f.Status == laki.StatusRevoked {
		return nil
	}
	need := f.RotationScopes
	if need == nil && f.Policy != nil {
		need = f.Policy.Scopes
	}
	if need == nil {
		return nil
	}
	extra := ScopeDiff(f.Scopes, need)
	if len(extra) == 0 {
		return nil
	}
	return f.violation(ManagementKeyOverScoped, "management key %s holds %s, which rotation does not need (needs %s)", f.KeyID, scopeList(extra), scopeList(need))
}

// CheckKeyTooOld: older than the policy's max_age.
func CheckKeyTooOld(f Facts, now time.Time) *Violation {
	if !f.Found || f.Policy == nil || f.Policy.MaxAge <= 0 || f.CreatedAt.IsZero() || f.Status == laki.StatusRevoked {
		return nil
	}
	age := now.Sub(f.CreatedAt)
	if age <= f.Policy.MaxAge {
		return nil
	}
	if age > 24*time.Hour {
		age = age.Round(time.Minute) // an age of days reads to the minute
	}
	return f.violation(KeyTooOld, "%s of secret %s is %s old, over policy %q max_age %s", f.subject(), f.Secret, strictyaml.FormatDuration(age), f.Policy.Name, strictyaml.FormatDuration(f.Policy.MaxAge))
}

// CheckMissingExpiry: a key without expires_at under a policy with a hard expiry.
func CheckMissingExpiry(f Facts, _ time.Time) *Violation {
	if !f.Found || f.Policy == nil || !f.isKey() || f.Policy.HardExpiry.ExpiresAfter <= 0 || f.ExpiresAt != nil || f.Status == laki.StatusRevoked {
		return nil
	}
	return f.violation(MissingExpiry, "key %s of secret %s has no expires_at; policy %q demands one within %s of creation",
		f.KeyID, f.Secret, f.Policy.Name, strictyaml.FormatDuration(f.Policy.HardExpiry.ExpiresAfter))
}
