package policies

import (
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/laki"
)

// Reason names why a credential fails its policy. The list is closed and
// documented: dashboards, alert routes and metric labels key on it.
type Reason string

const (
	// OverPrivileged: the key holds scopes its policy does not grant. Least
	// privilege is broken; the next rotation narrows it.
	OverPrivileged Reason = "over_privileged"
	// UnderPrivileged: the key lacks scopes its policy grants, so its
	// consumer gets 403 on what it is meant to do.
	UnderPrivileged Reason = "under_privileged"
	// EnvironmentMismatch: the key's environment at LakiConnect, its
	// secret's declared environment, the environment stored in the secret's
	// value and the environment of the base URL it is used against do not
	// all agree.
	EnvironmentMismatch Reason = "environment_mismatch"
	// EnvironmentNotAllowed: the credential's environment is not one its
	// policy allows (for example production under a sandbox-only policy).
	EnvironmentNotAllowed Reason = "environment_not_allowed"
	// EnvironmentNameMismatch: a production credential under a secret whose
	// name says sandbox, or the reverse (see NameEnvironment).
	EnvironmentNameMismatch Reason = "environment_name_mismatch"
	// MerchantMismatch: the key belongs to another master merchant than its
	// secret declares.
	MerchantMismatch Reason = "merchant_mismatch"
	// KeyTooOld: the credential is older than the policy's max_age.
	KeyTooOld Reason = "key_too_old"
	// MissingExpiry: the key has no expires_at although the policy demands
	// a hard expiry on every key.
	MissingExpiry Reason = "missing_expiry"
	// UnmanagedKey: a live key at LakiConnect that no managed secret
	// references: nobody rotates it.
	UnmanagedKey Reason = "unmanaged_key"
	// StoredKeyRevoked: the key in a secret's current version is revoked at
	// LakiConnect: its consumers are already broken.
	StoredKeyRevoked Reason = "stored_key_revoked"
	// StoredKeyExpiring: the key in a secret's current version has an end
	// scheduled at LakiConnect: its consumers are about to break.
	StoredKeyExpiring Reason = "stored_key_expiring"
	// StoredKeyMissing: the key or webhook secret in a secret's current
	// version does not exist at LakiConnect.
	StoredKeyMissing Reason = "stored_key_missing"
	// UnmanagedWebhookEndpoint: a webhook endpoint at LakiConnect that no
	// managed secret holds the signing secret of.
	UnmanagedWebhookEndpoint Reason = "unmanaged_webhook_endpoint"
	// InsecureWebhookURL: a webhook endpoint whose URL is not https.
	InsecureWebhookURL Reason = "insecure_webhook_url"
	// ManagementKeyOverScoped: the rotator's own key holds scopes beyond
	// what rotation needs (api_keys:*, webhooks:* where webhooks are
	// managed, and the scopes it must grant to the keys it creates).
	ManagementKeyOverScoped Reason = "management_key_over_scoped"
	// UnknownPolicy: a managed secret names a policy that is not loaded, or
	// one made for another kind of credential.
	UnknownPolicy Reason = "unknown_policy"
	// OldKeyStillInUse: a rotation's old key, in its grace, is still used
	// close to its end (the policy's alerts.last_used_warning or
	// last_used_warning_fraction): a consumer has not picked up the new key.
	OldKeyStillInUse Reason = "old_key_still_in_use"
)

// ReasonInfo documents one reason.
type ReasonInfo struct {
	Reason      Reason
	Severity    events.Severity // default; a policy may override it
	Description string
}

// Reasons returns the documented list of reasons, in a stable order.
func Reasons() []ReasonInfo {
	return []ReasonInfo{
		{OverPrivileged, events.SeverityWarning, "key holds scopes its policy does not grant"},
		{UnderPrivileged, events.SeverityCritical, "key lacks scopes its policy grants; its consumer gets 403"},
		{EnvironmentMismatch, events.SeverityCritical, "key, secret, stored value and base URL disagree on the environment"},
		{EnvironmentNotAllowed, events.SeverityCritical, "credential's environment is not allowed by its policy"},
		{EnvironmentNameMismatch, events.SeverityCritical, "production credential under a sandbox-named secret, or the reverse"},
		{MerchantMismatch, events.SeverityCritical, "key belongs to another master merchant than its secret declares"},
		{KeyTooOld, events.SeverityWarning, "credential is older than the policy's max_age"},
		{MissingExpiry, events.SeverityWarning, "key has no expires_at where the policy demands one"},
		{UnmanagedKey, events.SeverityWarning, "live key that no managed secret references"},
		{StoredKeyRevoked, events.SeverityCritical, "stored current key is revoked at LakiConnect"},
		{StoredKeyExpiring, events.SeverityWarning, "stored current key is expiring at LakiConnect"},
		{StoredKeyMissing, events.SeverityCritical, "stored current key or webhook secret does not exist at LakiConnect"},
		{UnmanagedWebhookEndpoint, events.SeverityWarning, "webhook endpoint whose signing secret no managed secret holds"},
		{InsecureWebhookURL, events.SeverityCritical, "webhook endpoint URL is not https"},
		{ManagementKeyOverScoped, events.SeverityWarning, "management key holds scopes beyond what rotation needs"},
		{UnknownPolicy, events.SeverityCritical, "managed secret names a policy that is not loaded or is for another kind"},
		{OldKeyStillInUse, events.SeverityWarning, "a rotation's old key is still used close to the end of its grace"},
	}
}

// Known reports whether r is in the documented list.
func (r Reason) Known() bool {
	for _, i := range Reasons() {
		if i.Reason == r {
			return true
		}
	}
	return false
}

// DefaultSeverity is the reason's severity when no policy overrides it.
func (r Reason) DefaultSeverity() events.Severity {
	for _, i := range Reasons() {
		if i.Reason == r {
			return i.Severity
		}
	}
	return events.SeverityWarning
}

// SeverityRank orders severities: info < warning < critical. Unknown ones rank 0.
func SeverityRank(s events.Severity) int {
	switch s {
	case events.SeverityInfo:
		return 1
	case events.SeverityWarning:
		return 2
	case events.SeverityCritical:
		return 3
	}
	return 0
}

// Violation is one failed check of one credential. It carries ids and names
// only, never a secret value.
type Violation struct {
	Reason           Reason           `json:"reason"`
	Severity         events.Severity  `json:"severity"`
	Secret           string           `json:"secret,omitempty"`
	Policy           string           `json:"policy,omitempty"`
	KeyID            string           `json:"key_id,omitempty"`
	EndpointID       string           `json:"endpoint_id,omitempty"`
	Environment      laki.Environment `json:"environment,omitempty"`
	MasterMerchantID string           `json:"master_merchant_id,omitempty"`
	Message          string           `json:"message"`
}

// Identity is what makes two violations "the same" across scans (the message
// may change, e.g. a key's age).
func (v Violation) Identity() string {
	return string(v.Reason) + "|" + v.Secret + "|" + v.KeyID + "|" + v.EndpointID + "|" +
		string(v.Environment) + "|" + v.MasterMerchantID
}

// Diff compares two scans: added are violations of current not in previous
// (the daemon raises events for these only), resolved the reverse.
func Diff(previous, current []Violation) (added, resolved []Violation) {
	prev := make(map[string]bool, len(previous))
	for _, v := range previous {
		prev[v.Identity()] = true
	}
	cur := make(map[string]bool, len(current))
	for _, v := range current {
		cur[v.Identity()] = true
		if !prev[v.Identity()] {
			added = append(added, v)
		}
	}
	for _, v := range previous {
		if !cur[v.Identity()] {
			resolved = append(resolved, v)
		}
	}
	return added, resolved
}

// AtLeast returns the violations whose severity is min or higher.
func AtLeast(vs []Violation, min events.Severity) []Violation {
	var out []Violation
	for _, v := range vs {
		if SeverityRank(v.Severity) >= SeverityRank(min) {
			out = append(out, v)
		}
	}
	return out
}

// ExitCode is the `policy check` exit status: 1 when any violation is of
// severity min or higher, else 0.
func ExitCode(vs []Violation, min events.Severity) int {
	if len(AtLeast(vs, min)) > 0 {
		return 1
	}
	return 0
}
