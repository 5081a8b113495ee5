// Package openapitest checks the daemon's HTTP API against its OpenAPI
// document: Wrap puts a validator in front of a handler in a test, so that
// every request the test sends and every answer the handler gives are
// checked. A request the document does not allow must be refused (4xx),
// and every answer, refusals included, must be one the document lists.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/lakirotator/lakirotator/httpapi"
)

var (
	loadOnce sync.Once
	router   routers.Router
	loadErr  error
)

// Router loads httpapi.OpenAPI once, validated.
func Router() (routers.Router, error) {
	loadOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(httpapi.OpenAPI)
		if err != nil {
			loadErr = fmt.Errorf("openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			loadErr = fmt.Errorf("openapi.yaml is not a valid OpenAPI document: %w", err)
			return
		}
		router, loadErr = legacy.NewRouter(doc)
	})
	return router, loadErr
}

// Wrap returns h with every exchange checked against the document; a
// violation fails t.
func Wrap(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	rt, err := Router()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		what := r.Method + " " + r.URL.Path

		route, params, err := rt.FindRoute(routable(r))
		if err != nil {
			t.Errorf("openapi: %s is not in the document: %v", what, err)
			h.ServeHTTP(w, r)
			return
		}
		in := &openapi3filter.RequestValidationInput{
			Request: r.Clone(r.Context()), PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true, SkipSettingDefaults: true},
		}
		in.Request.Body = io.NopCloser(bytes.NewReader(body))
		reqErr := openapi3filter.ValidateRequest(r.Context(), in)

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, vs := range rec.Header() {
			w.Header()[k] = vs
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())

		if reqErr != nil && rec.Code < 400 {
			t.Errorf("openapi: %s: the document does not allow this request (%v), yet it was answered %d", what, reqErr, rec.Code)
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Body:    io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
			Options: &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
		}
		if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
			t.Errorf("openapi: %s answered %d: the answer is not what the document says: %v\nbody: %s", what, rec.Code, err, rec.Body.String())
		}
	})
}

// routable gives the router a URL with the host the document's server
// ("/") matches whatever host the test used.
func routable(r *http.Request) *http.Request {
	c := r.Clone(r.Context())
	c.URL.Scheme, c.URL.Host = "", ""
	return c
}
