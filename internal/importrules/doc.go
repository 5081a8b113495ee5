// Package importrules holds no code: its tests keep the layout's rules
// (policies import no provider, the engine no transport or notifier, no
// domain package the LakiConnect HTTP client, laki nothing of the module
// but the secret type, nothing a main package; only the daemon records a
// trigger's accepted or refused), so that the design is kept by
// `go test ./...`, not by memory.
package importrules
