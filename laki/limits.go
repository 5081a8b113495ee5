package laki

import "time"

// LakiConnect's limits (its README's rules); the simulator enforces them and
// policies and the engine stay within them.
const (
	MaxKeysPerMerchant          = 50
	MaxLiveSecretsPerEndpoint   = 2
	MaxExpireDelay              = 7 * 24 * time.Hour
	MaxCreateExpiresAhead       = 400 * 24 * time.Hour
	RateLimitPerKeyPerSecond    = 100
	IdempotencyWindow           = 24 * time.Hour
	DefaultPageLimit            = 20
	MaxPageLimit                = 100
	AuthFailureKeyPrefixLength  = 12
	SignatureToleranceInSeconds = 300
)
