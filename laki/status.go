package laki

// KeyStatus is the life stage of an API key or webhook secret.
type KeyStatus string

const (
	StatusActive   KeyStatus = "active"
	StatusExpiring KeyStatus = "expiring"
	StatusRevoked  KeyStatus = "revoked"
)
