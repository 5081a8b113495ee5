package laki

// Scope is one RBAC permission.
type Scope string

const (
	ScopePaymentsRead      Scope = "payments:read"
	ScopePaymentsWrite     Scope = "payments:write"
	ScopeRefundsRead       Scope = "refunds:read"
	ScopeRefundsWrite      Scope = "refunds:write"
	ScopePayoutsRead       Scope = "payouts:read"
	ScopePayoutsWrite      Scope = "payouts:write"
	ScopeCustomersRead     Scope = "customers:read"
	ScopeCustomersWrite    Scope = "customers:write"
	ScopeSubMerchantsRead  Scope = "sub_merchants:read"
	ScopeSubMerchantsWrite Scope = "sub_merchants:write"
	ScopeReportsRead       Scope = "reports:read"
	ScopeWebhooksRead      Scope = "webhooks:read"
	ScopeWebhooksWrite     Scope = "webhooks:write"
	ScopeAPIKeysRead       Scope = "api_keys:read"
	ScopeAPIKeysWrite      Scope = "api_keys:write"
)

// AllScopes is the Scope enum of the API, in its order.
var AllScopes = []Scope{
	ScopePaymentsRead, ScopePaymentsWrite, ScopeRefundsRead, ScopeRefundsWrite,
	ScopePayoutsRead, ScopePayoutsWrite, ScopeCustomersRead, ScopeCustomersWrite,
	ScopeSubMerchantsRead, ScopeSubMerchantsWrite, ScopeReportsRead,
	ScopeWebhooksRead, ScopeWebhooksWrite, ScopeAPIKeysRead, ScopeAPIKeysWrite,
}

// Valid reports whether s is in the API's Scope enum.
func (s Scope) Valid() bool {
	for _, k := range AllScopes {
		if k == s {
			return true
		}
	}
	return false
}

// ScopeNames returns the scopes as plain strings, the stored value's form.
func ScopeNames(s []Scope) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = string(x)
	}
	return out
}

// ScopesFrom turns plain strings back into Scopes (it does not validate them).
func ScopesFrom(ss []string) []Scope {
	out := make([]Scope, len(ss))
	for i, x := range ss {
		out[i] = Scope(x)
	}
	return out
}
