// Package openapi embeds LakiConnect's Management API document, so that the
// simulator's contract checks and any tool can load it without a file path.
package openapi

import _ "embed"

//go:embed openapi.yaml
var spec []byte

// Spec returns a copy of the OpenAPI 3 document (YAML) of the Management API.
// It is a copy so that no caller can change what the next caller sees.
func Spec() []byte {
	out := make([]byte, len(spec))
	copy(out, spec)
	return out
}
