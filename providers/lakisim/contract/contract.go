// Package contract checks HTTP exchanges against LakiConnect's OpenAPI
// document: an http middleware that validates every request and response
// passing through it and reports each mismatch, so that a test of the
// simulator (or of a client talking to it) fails when either side leaves
// the contract.
package contract

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

// Phase says which half of an exchange broke the contract.
type Phase string

const (
	PhaseRequest  Phase = "request"
	PhaseResponse Phase = "response"
)

// Violation is one mismatch between an exchange and the document.
type Violation struct {
	// Operation is the operationId, or "METHOD path" when no operation matched.
	Operation string
	Phase     Phase
	Method    string
	Path      string
	// Status is the response status (response phase only).
	Status int
	Err    error
}

func (v Violation) String() string {
	s := fmt.Sprintf("contract: %s %s (%s): %s does not match the OpenAPI document", v.Method, v.Path, v.Operation, v.Phase)
	if v.Phase == PhaseResponse {
		s += fmt.Sprintf(" (status %d)", v.Status)
	}
	return s + ": " + v.Err.Error()
}

// Option changes what the middleware checks.
type Option func(*Validator)

// ResponsesOnly skips request validation, for tests that send requests the
// document forbids on purpose to see the server refuse them.
func ResponsesOnly() Option { return func(v *Validator) { v.skipRequests = true } }

// Validator holds a loaded document and its router.
type Validator struct {
	router       routers.Router
	skipRequests bool
}

// New loads and validates an OpenAPI 3 document (YAML or JSON).
func New(spec []byte, opts ...Option) (*Validator, error) {
	doc, err := openapi3.NewLoader().LoadFromData(spec)
	if err != nil {
		return nil, fmt.Errorf("contract: load OpenAPI document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("contract: invalid OpenAPI document: %w", err)
	}
	// Route on the path after the version prefix, wherever the API is mounted
	// (/v1, /sandbox/v1, ...): the middleware strips up to /v1 itself.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("contract: build router: %w", err)
	}
	v := &Validator{router: router}
	for _, o := range opts {
		o(v)
	}
	return v, nil
}

// Middleware returns a middleware that reports every violation to onError
// and passes the exchange through unchanged.
func Middleware(spec []byte, onError func(Violation), opts ...Option) (func(http.Handler) http.Handler, error) {
	v, err := New(spec, opts...)
	if err != nil {
		return nil, err
	}
	return func(next http.Handler) http.Handler { return v.Wrap(next, onError) }, nil
}

// apiPath is the path after the first /v1 segment, or false.
func apiPath(p string) (string, bool) {
	if i := strings.Index(p, "/v1/"); i >= 0 {
		return p[i+3:], true
	}
	if strings.HasSuffix(p, "/v1") {
		return "/", true
	}
	return "", false
}

// Wrap validates the exchanges that pass through next.
func (v *Validator) Wrap(next http.Handler, onError func(Violation)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "reading request body failed", http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))

		viol := Violation{Operation: r.Method + " " + r.URL.Path, Method: r.Method, Path: r.URL.Path}
		report := func(phase Phase, status int, err error) {
			x := viol
			x.Phase, x.Status, x.Err = phase, status, err
			onError(x)
		}

		var route *routers.Route
		var params map[string]string
		if p, ok := apiPath(r.URL.Path); ok {
			routed := r.Clone(r.Context())
			routed.URL.Path, routed.URL.RawPath = p, ""
			route, params, err = v.router.FindRoute(routed)
		} else {
			err = errors.New("path is not under /v1")
		}
		if err != nil {
			report(PhaseRequest, 0, fmt.Errorf("no operation: %w", err))
		} else {
			viol.Operation = route.Operation.OperationID
		}

		in := &openapi3filter.RequestValidationInput{
			Request:    r.Clone(r.Context()),
			PathParams: params,
			Route:      route,
			Options: &openapi3filter.Options{
				AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
				MultiError:          true,
				SkipSettingDefaults: true,
			},
		}
		if route != nil && !v.skipRequests {
			in.Request.Body = io.NopCloser(bytes.NewReader(body))
			if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				report(PhaseRequest, 0, err)
			}
		}

		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		if rec.hijacked || route == nil || (!rec.wroteHeader && r.Context().Err() != nil) {
			return // no answer to check: dropped, unroutable, or the client left
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in,
			Status:                 rec.status,
			Header:                 w.Header(),
			Body:                   io.NopCloser(bytes.NewReader(rec.body.Bytes())),
			Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: false},
		}
		if err := openapi3filter.ValidateResponse(r.Context(), out); err != nil {
			report(PhaseResponse, rec.status, err)
		}
		if w.Header().Get("Request-Id") == "" {
			report(PhaseResponse, rec.status, errors.New("no Request-Id header"))
		}
		if rec.status >= 400 && !isErrorBody(rec.body.Bytes()) {
			report(PhaseResponse, rec.status, errors.New("error answer is not in the Error schema"))
		}
	})
}

// isErrorBody checks answers the document does not list (a 429 or 5xx on
// any path) against the Error schema's required fields.
func isErrorBody(b []byte) bool {
	var e struct {
		Error *struct {
			Type    *string `json:"type"`
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
		return false
	}
	return e.Error.Type != nil && e.Error.Code != nil && e.Error.Message != nil
}

// recorder keeps a copy of the answer while passing it on.
type recorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	hijacked    bool
	body        bytes.Buffer
}

func (r *recorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Hijack lets a handler drop the connection (a simulated fault) through
// the middleware; the exchange then has no answer to check.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("contract: underlying ResponseWriter cannot hijack")
	}
	r.hijacked = true
	return hj.Hijack()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
