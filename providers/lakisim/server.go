package lakisim

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/lakirotator/lakirotator/laki"
	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// maxBodyBytes bounds request bodies; the API's bodies are far smaller.
const maxBodyBytes = 1 << 20

// response is an answer before it is written, so that idempotent replays
// and faults that strike after processing can reuse or replace it.
type response struct {
	status     int
	body       []byte
	retryAfter int
	replayed   bool
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, lakiconnect.ErrTypeAPI, lakiconnect.CodeInternal, "encoding the answer failed", "")
	}
	return response{status: status, body: append(b, '\n')}
}

func errorResponse(status int, typ, code, msg, param string) response {
	d := lakiconnect.ErrorDetail{Type: typ, Code: code, Message: msg}
	if param != "" {
		d.Param = &param
	}
	b, _ := json.Marshal(lakiconnect.ErrorBody{Error: d})
	return response{status: status, body: append(b, '\n')}
}

func badRequest(param, format string, args ...any) response {
	return errorResponse(http.StatusBadRequest, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeParameterInvalid, fmt.Sprintf(format, args...), param)
}

func notFound(what, id string) response {
	return errorResponse(http.StatusNotFound, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeResourceMissing, fmt.Sprintf("no such %s: %q", what, id), "")
}

func conflict(code, msg string) response {
	return errorResponse(http.StatusConflict, lakiconnect.ErrTypeConflict, code, msg, "")
}

// Handler serves both environments: /sandbox/v1/... and /production/v1/....
func (s *Simulator) Handler() http.Handler {
	sandbox := s.EnvironmentHandler(laki.Sandbox)
	production := s.EnvironmentHandler(laki.Production)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/sandbox/"):
			http.StripPrefix("/sandbox", sandbox).ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/production/"):
			http.StripPrefix("/production", production).ServeHTTP(w, r)
		default:
			w.Header().Set(lakiconnect.RequestIDHeader, "req_"+randomAlnum(24))
			writeResponse(w, errorResponse(http.StatusNotFound, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeResourceMissing,
				"unknown path: the API is under /sandbox/v1 and /production/v1", ""))
		}
	})
}

// EnvironmentHandler serves one environment under /v1/..., for a listener
// of its own.
func (s *Simulator) EnvironmentHandler(env laki.Environment) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(env, w, r) })
}

func writeResponse(w http.ResponseWriter, resp response) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if resp.replayed {
		h.Set(lakiconnect.IdempotentReplayedHeader, "true")
	}
	if resp.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(resp.retryAfter))
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func (s *Simulator) serve(env laki.Environment, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	reqID := "req_" + randomAlnum(24)
	w.Header().Set(lakiconnect.RequestIDHeader, reqID)
	path, ok := strings.CutPrefix(r.URL.Path, "/v1")
	if !ok || (path != "" && path[0] != '/') {
		writeResponse(w, errorResponse(http.StatusNotFound, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeResourceMissing, "unknown path: the API is under /v1", ""))
		return
	}

	// A faulted request is recorded before the fault strikes, so that a
	// client that sees the failure and asks at once finds it recorded.
	before, after := s.takeFaults(r.Method, path)
	if before != nil {
		if !before.wait(r) {
			s.record(env, r, path, reqID, "", 0, false, true)
			return
		}
		if before.breaks() {
			s.record(env, r, path, reqID, "", 0, false, true)
			before.act(w)
			return
		}
	}

	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	var resp response
	var keyID string
	switch {
	case err != nil:
		resp = badRequest("", "reading the request body failed")
	case len(body) > maxBodyBytes:
		resp = badRequest("", "request body over %d bytes", maxBodyBytes)
	default:
		resp, keyID = s.handle(env, path, r, body)
	}

	if after != nil {
		if !after.wait(r) {
			s.record(env, r, path, reqID, keyID, resp.status, resp.replayed, true)
			return
		}
		if after.breaks() {
			s.record(env, r, path, reqID, keyID, resp.status, resp.replayed, true)
			after.act(w)
			return
		}
	}
	s.record(env, r, path, reqID, keyID, resp.status, resp.replayed, false)
	writeResponse(w, resp)
	s.log.Info("lakisim: request", "request_id", reqID, "environment", env, "method", r.Method, "path", path,
		"status", resp.status, "key_id", keyID, "replayed", resp.replayed, "duration", time.Since(start))
}

func (s *Simulator) record(env laki.Environment, r *http.Request, path, reqID, keyID string, status int, replayed, faulted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, RecordedRequest{
		Environment: env, Method: r.Method, Path: path, Status: status, KeyID: keyID,
		IdempotencyKey: r.Header.Get(lakiconnect.IdempotencyKeyHeader), Replayed: replayed, Faulted: faulted,
		RequestID: reqID, At: s.now(),
	})
}

// call is one authenticated request on its way to an operation.
type call struct {
	env    laki.Environment
	key    *apiKey
	now    time.Time
	params []string
	query  url.Values
	body   []byte
}

// handle answers one API request; it holds the lock throughout, so that
// every request sees and leaves a consistent state (and concurrent
// retries with one idempotency key cannot both create).
func (s *Simulator) handle(env laki.Environment, path string, r *http.Request, body []byte) (response, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.refreshLocked(now)

	key, refused := s.authenticateLocked(env, r, now)
	if refused != nil {
		return *refused, ""
	}
	if !s.allowLocked(key.id) {
		resp := errorResponse(http.StatusTooManyRequests, lakiconnect.ErrTypeRateLimit, lakiconnect.CodeRateLimited,
			fmt.Sprintf("over %g requests per second for this key", s.rateLimit), "")
		resp.retryAfter = 1
		return resp, key.id
	}
	rt, params, methodOK := matchRoute(s.routes, r.Method, path)
	if rt == nil {
		if methodOK {
			return errorResponse(http.StatusMethodNotAllowed, lakiconnect.ErrTypeInvalidRequest, "method_not_allowed",
				fmt.Sprintf("%s is not allowed on %s", r.Method, path), ""), key.id
		}
		return errorResponse(http.StatusNotFound, lakiconnect.ErrTypeInvalidRequest, lakiconnect.CodeResourceMissing,
			fmt.Sprintf("unknown path %s", path), ""), key.id
	}
	if rt.scope != "" && !key.has(rt.scope) {
		s.recordFailureLocked(env, key.merchant, &key.id, prefixOf(key.secret.Reveal()), http.StatusForbidden, now)
		return errorResponse(http.StatusForbidden, lakiconnect.ErrTypePermission, lakiconnect.CodeMissingScope,
			fmt.Sprintf("this key lacks the scope %s", rt.scope), ""), key.id
	}

	var ik idemKey
	var fingerprint [32]byte
	idemHeader := r.Header.Get(lakiconnect.IdempotencyKeyHeader)
	if r.Method == http.MethodPost && idemHeader != "" {
		if !validIdempotencyKey(idemHeader) {
			return badRequest(lakiconnect.IdempotencyKeyHeader, "Idempotency-Key must be 1-255 printable ASCII characters"), key.id
		}
		ik = idemKey{keyID: key.id, value: idemHeader}
		fingerprint = sha256.Sum256(append([]byte(r.Method+" "+path+"\n"), body...))
		if e, ok := s.idem[ik]; ok {
			if e.fingerprint != fingerprint {
				return errorResponse(http.StatusUnprocessableEntity, lakiconnect.ErrTypeIdempotency, lakiconnect.CodeIdempotencyKeyReused,
					"this Idempotency-Key was used with another request in the last 24 hours", lakiconnect.IdempotencyKeyHeader), key.id
			}
			resp := e.resp
			resp.replayed = true
			key.lastUsedAt = timePtr(now.Truncate(time.Minute))
			return resp, key.id
		}
	}

	resp := rt.op(s, &call{env: env, key: key, now: now, params: params, query: r.URL.Query(), body: body})
	if resp.status < 300 {
		key.lastUsedAt = timePtr(now.Truncate(time.Minute))
	}
	// The operation ran, so its answer is the first response of this key,
	// error or not: a retry gets it again, byte for byte (the contract's
	// "returns the first response again"), even once the cause is gone.
	if ik.value != "" {
		s.idem[ik] = &idemEntry{fingerprint: fingerprint, resp: resp, at: now}
	}
	return resp, key.id
}

type idemKey struct{ keyID, value string }

type idemEntry struct {
	fingerprint [32]byte
	resp        response
	at          time.Time
}

func validIdempotencyKey(v string) bool {
	if len(v) < 1 || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

func prefixOf(token string) string {
	if len(token) > laki.AuthFailureKeyPrefixLength {
		return token[:laki.AuthFailureKeyPrefixLength]
	}
	return token
}

// authenticateLocked finds the calling key, or answers 401 and counts it.
func (s *Simulator) authenticateLocked(env laki.Environment, r *http.Request, now time.Time) (*apiKey, *response) {
	refuse := func(msg string) *response {
		resp := errorResponse(http.StatusUnauthorized, lakiconnect.ErrTypeAuthentication, lakiconnect.CodeInvalidAPIKey, msg, "")
		return &resp
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		s.recordFailureLocked(env, "", nil, "", http.StatusUnauthorized, now)
		return nil, refuse("no API key: send Authorization: Bearer <key>")
	}
	k, ok := s.keyByHash[sha256.Sum256([]byte(token))]
	switch {
	case !ok:
		s.recordFailureLocked(env, "", nil, prefixOf(token), http.StatusUnauthorized, now)
		return nil, refuse("unknown API key")
	case k.env != env:
		s.recordFailureLocked(env, k.merchant, nil, prefixOf(token), http.StatusUnauthorized, now)
		return nil, refuse(fmt.Sprintf("this API key belongs to %s, not %s", k.env, env))
	case k.status == laki.StatusRevoked:
		s.recordFailureLocked(env, k.merchant, &k.id, prefixOf(token), http.StatusUnauthorized, now)
		return nil, refuse(fmt.Sprintf("API key %s is revoked", k.id))
	}
	return k, nil
}

func (s *Simulator) allowLocked(keyID string) bool {
	if s.rateLimit < 0 {
		return true
	}
	l, ok := s.limiters[keyID]
	if !ok {
		burst := max(int(s.rateLimit), 1)
		l = rate.NewLimiter(rate.Limit(s.rateLimit), burst)
		s.limiters[keyID] = l
	}
	return l.Allow()
}

// decodeStrict decodes a JSON object body, refusing unknown fields so that
// a client bug shows as a 400 naming the field.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}
