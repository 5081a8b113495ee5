package httpapi

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the document that describes this API (openapi.yaml), served
// at GET /v1/openapi.yaml. The API tests validate every request and answer
// against it (httpapi/openapitest).
//
//go:embed openapi.yaml
var OpenAPI []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
