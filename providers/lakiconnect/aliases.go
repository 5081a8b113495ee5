package lakiconnect

import "github.com/lakirotator/lakirotator/laki"

// Deprecated names: aliases of what moved to package laki, kept so that code
// written against the old names compiles while it moves over. New code uses
// laki (the domain packages must: internal/importrules fails otherwise).
// They are not marked with the "Deprecated:" convention only because
// staticcheck would then fail every package still using them; remove them
// once nothing does.

type (
	Environment            = laki.Environment
	Scope                  = laki.Scope
	KeyStatus              = laki.KeyStatus
	WhoAmI                 = laki.WhoAmI
	APIKey                 = laki.APIKey
	CreateAPIKeyRequest    = laki.CreateAPIKeyRequest
	WebhookSecretInfo      = laki.WebhookSecretInfo
	WebhookEndpoint        = laki.WebhookEndpoint
	AuthFailureCount       = laki.AuthFailureCount
	APIKeyWithSecret       = laki.APIKeyWithSecret
	WebhookSecretWithValue = laki.WebhookSecretWithValue
	TestSignature          = laki.TestSignature
	ListAPIKeysOptions     = laki.ListAPIKeysOptions
)

const (
	Sandbox    = laki.Sandbox
	Production = laki.Production

	StatusActive   = laki.StatusActive
	StatusExpiring = laki.StatusExpiring
	StatusRevoked  = laki.StatusRevoked

	ScopePaymentsRead      = laki.ScopePaymentsRead
	ScopePaymentsWrite     = laki.ScopePaymentsWrite
	ScopeRefundsRead       = laki.ScopeRefundsRead
	ScopeRefundsWrite      = laki.ScopeRefundsWrite
	ScopePayoutsRead       = laki.ScopePayoutsRead
	ScopePayoutsWrite      = laki.ScopePayoutsWrite
	ScopeCustomersRead     = laki.ScopeCustomersRead
	ScopeCustomersWrite    = laki.ScopeCustomersWrite
	ScopeSubMerchantsRead  = laki.ScopeSubMerchantsRead
	ScopeSubMerchantsWrite = laki.ScopeSubMerchantsWrite
	ScopeReportsRead       = laki.ScopeReportsRead
	ScopeWebhooksRead      = laki.ScopeWebhooksRead
	ScopeWebhooksWrite     = laki.ScopeWebhooksWrite
	ScopeAPIKeysRead       = laki.ScopeAPIKeysRead
	ScopeAPIKeysWrite      = laki.ScopeAPIKeysWrite

	EventAPIKeyExposed      = laki.EventAPIKeyExposed
	EventAPIKeyRevoked      = laki.EventAPIKeyRevoked
	EventAPIKeyExpiringSoon = laki.EventAPIKeyExpiringSoon
	EventAuthFailureSpike   = laki.EventAuthFailureSpike
	EventTestPing           = laki.EventTestPing

	MaxKeysPerMerchant          = laki.MaxKeysPerMerchant
	MaxLiveSecretsPerEndpoint   = laki.MaxLiveSecretsPerEndpoint
	MaxExpireDelay              = laki.MaxExpireDelay
	MaxCreateExpiresAhead       = laki.MaxCreateExpiresAhead
	RateLimitPerKeyPerSecond    = laki.RateLimitPerKeyPerSecond
	IdempotencyWindow           = laki.IdempotencyWindow
	DefaultPageLimit            = laki.DefaultPageLimit
	MaxPageLimit                = laki.MaxPageLimit
	AuthFailureKeyPrefixLength  = laki.AuthFailureKeyPrefixLength
	SignatureToleranceInSeconds = laki.SignatureToleranceInSeconds
)

// AllScopes is laki.AllScopes.
var AllScopes = laki.AllScopes

// ScopeNames is laki.ScopeNames.
func ScopeNames(s []Scope) []string { return laki.ScopeNames(s) }

// ScopesFrom is laki.ScopesFrom.
func ScopesFrom(ss []string) []Scope { return laki.ScopesFrom(ss) }
