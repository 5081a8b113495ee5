package httpapi_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/lakirotator/lakirotator/httpapi"
	"github.com/lakirotator/lakirotator/httpapi/openapitest"
)

// The document is valid OpenAPI, is served, and names every route.
func TestOpenAPIDocumentIsServed(t *testing.T) {
	if _, err := openapitest.Router(); err != nil {
		t.Fatal(err)
	}
	srv, _, _ := newServer(t)
	resp, err := http.Get(srv.URL + "/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/yaml" || string(b) != string(httpapi.OpenAPI) {
		t.Fatalf("GET /v1/openapi.yaml: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
	for _, route := range []string{"/v1/triggers:", "/v1/triggers/{id}:", "/v1/inventory:", "/v1/lakiconnect/events/{environment}/{master_merchant_id}:",
		"/v1/slack/commands:", "/healthz:", "/readyz:", "/metrics:", "/v1/openapi.yaml:"} {
		if !strings.Contains(string(b), "\n  "+route+"\n") {
			t.Errorf("the document does not describe %s", strings.TrimSuffix(route, ":"))
		}
	}
}
