package laki

// Types of LakiConnect's security events.
const (
	EventAPIKeyExposed      = "api_key.exposed"
	EventAPIKeyRevoked      = "api_key.revoked"
	EventAPIKeyExpiringSoon = "api_key.expiring_soon"
	EventAuthFailureSpike   = "security.auth_failure_spike"
	EventTestPing           = "test.ping"
)
