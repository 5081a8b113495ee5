package httpapi

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/inbound"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/trigger"
)

// Controller is what the API drives: the daemon implements it. Triggers go
// through the daemon's one trigger path; the API only maps JSON.
type Controller interface {
	trigger.Path
	Inventory(ctx context.Context) (Inventory, error)
}

// TokenMatcher tells whether a presented bearer token is one of the
// configured ones, returning the token's name. Implementations compare
// hashes in constant time.
type TokenMatcher interface {
	Match(presented string) (name string, ok bool)
}

// Options configures the API server.
type Options struct {
	Controller Controller
	Tokens     TokenMatcher
	// ClientCAs, when set, turns on mutual TLS: a request must present a
	// verified client certificate that ClientCerts names, or a bearer
	// token. The TLS listener does the verifying.
	ClientCAs   *x509.CertPool
	ClientCerts []ClientCert
	// Ready answers /readyz (computed in the background); nil is always ready.
	Ready *Readiness
	// Metrics is served at /metrics when set (leave it out when metrics
	// have their own listener); MetricsAuth asks for a token or certificate.
	Metrics     http.Handler
	MetricsAuth bool
	// Refusals summarises refused requests (bounded records, every one
	// counted); when nil, one is made that records to Events.
	Refusals     RefusalSink
	Events       events.Sink
	Logger       *slog.Logger
	MaxBodyBytes int64
	// Extra handlers that authenticate by themselves (LakiConnect event
	// receiver, Slack slash command), mounted as given.
	Mounts map[string]http.Handler
	// Clock times the default Refusals' windows (real time when nil).
	Clock clock.Clock
	// AllowedClients, when not empty, are the only addresses served; others
	// get 403 and are recorded.
	AllowedClients []netip.Prefix
}

// RefusalSink is told of each request refused at the API's door.
type RefusalSink interface {
	Refuse(ctx context.Context, r inbound.Refusal)
}

// DefaultMaxBodyBytes limits request bodies.
const DefaultMaxBodyBytes = 64 << 10

// withDefaults fills in what Options leaves out.
func withDefaults(o Options) Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = events.SinkFunc(func(context.Context, events.Event) {})
	}
	if o.Refusals == nil {
		o.Refusals = inbound.NewRefusals(inbound.RefusalsOptions{Events: o.Events, Clock: o.Clock, Logger: o.Logger})
	}
	return o
}

// NewHandler builds the API's routes.
func NewHandler(o Options) http.Handler {
	o = withDefaults(o)
	s := &server{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	if o.Metrics != nil {
		if o.MetricsAuth {
			mux.Handle("GET /metrics", s.authenticated(o.Metrics.ServeHTTP))
		} else {
			mux.Handle("GET /metrics", o.Metrics)
		}
	}
	mux.Handle("POST /v1/triggers", s.authenticated(s.postTrigger))
	mux.Handle("GET /v1/triggers/{id}", s.authenticated(s.getTrigger))
	mux.Handle("GET /v1/inventory", s.authenticated(s.getInventory))
	mux.HandleFunc("GET /v1/openapi.yaml", serveOpenAPI)
	for pattern, h := range o.Mounts {
		mux.Handle(pattern, http.MaxBytesHandler(h, o.MaxBodyBytes))
	}
	if len(o.AllowedClients) == 0 {
		return mux
	}
	return s.allowedClientsOnly(mux)
}

// allowedClientsOnly refuses requests from addresses outside the allowed list.
func (s *server) allowedClientsOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			for _, p := range s.o.AllowedClients {
				if p.Contains(ap.Addr().Unmap()) {
					next.ServeHTTP(w, r)
					return
				}
			}
		}
		s.o.Refusals.Refuse(r.Context(), inbound.Refusal{
			Door: events.SourceHTTP, Remote: r.RemoteAddr, Code: "client_address_not_allowed",
			Reason: "client address not in http.allowed_clients", Status: http.StatusForbidden,
		})
		writeError(w, http.StatusForbidden, "client address not allowed")
	})
}

type server struct{ o Options }

type principalKey struct{}

// Principal returns who the request authenticated as.
func Principal(ctx context.Context) string {
	p, _ := ctx.Value(principalKey{}).(string)
	return p
}

func (s *server) authenticated(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		principal, ref := s.authenticate(r)
		if ref != nil {
			// Bounded: no path (it may be 500 KB), no header; the door,
			// the address and a fixed code.
			status, why := ref.Status, ref.Reason
			ref.Door, ref.Remote = events.SourceHTTP, r.RemoteAddr
			s.o.Refusals.Refuse(r.Context(), *ref)
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="lakirotator"`)
			}
			writeError(w, status, why)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.o.MaxBodyBytes)
		h(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal)))
	})
}

// authenticate returns the principal, or the refusal to answer with.
func (s *server) authenticate(r *http.Request) (string, *inbound.Refusal) {
	refuse := func(status int, code, why string) (string, *inbound.Refusal) {
		return "", &inbound.Refusal{Status: status, Code: code, Reason: why}
	}
	if s.o.ClientCAs != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return s.certPrincipal(r.TLS.VerifiedChains[0][0])
	}
	h := r.Header.Get("Authorization")
	if h == "" && s.o.ClientCAs != nil {
		return refuse(http.StatusUnauthorized, "missing_credentials", "no client certificate and no bearer token")
	}
	if h == "" {
		return refuse(http.StatusUnauthorized, "missing_token", "missing bearer token")
	}
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return refuse(http.StatusUnauthorized, "not_bearer", "authorization is not a bearer token")
	}
	if s.o.Tokens == nil {
		return refuse(http.StatusForbidden, "no_tokens_configured", "no API tokens are configured")
	}
	name, ok := s.o.Tokens.Match(token)
	if !ok {
		return refuse(http.StatusUnauthorized, "unknown_token", "unknown bearer token")
	}
	return "token:" + name, nil
}

func (s *server) postTrigger(w http.ResponseWriter, r *http.Request) {
	var req TriggerRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		writeError(w, statusForDecode(err), err.Error())
		return
	}
	// A client that hangs up does not cut the recording of its trigger short.
	st, err := s.o.Controller.Trigger(context.WithoutCancel(r.Context()), req.ToTrigger(Principal(r.Context()), events.SourceHTTP))
	if ref, ok := trigger.Refused(err); ok {
		writeError(w, http.StatusBadRequest, ref.Error())
		return
	}
	if err != nil {
		s.o.Logger.Error("trigger failed", "err", err)
		writeError(w, http.StatusInternalServerError, "trigger could not be queued: "+err.Error())
		return
	}
	w.Header().Set("Location", "/v1/triggers/"+st.ID)
	writeJSON(w, http.StatusAccepted, StatusJSON(st))
}

func (s *server) getTrigger(w http.ResponseWriter, r *http.Request) {
	st, ok := s.o.Controller.TriggerStatus(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no trigger %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, StatusJSON(st))
}

func (s *server) getInventory(w http.ResponseWriter, r *http.Request) {
	inv, err := s.o.Controller.Inventory(r.Context())
	if err != nil {
		s.o.Logger.Error("inventory failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "inventory unavailable: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, inv)
}

// decodeJSON reads exactly one JSON object with no unknown fields, and says
// what is wrong (field, position) when it cannot.
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return fmt.Errorf("request body is larger than %d bytes: %w", tooBig.Limit, err)
		case errors.As(err, &syn):
			return fmt.Errorf("request body is not valid JSON at byte %d", syn.Offset)
		case errors.As(err, &typ):
			return fmt.Errorf("request body field %q must be a %s", typ.Field, typ.Type)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("request body is not valid JSON: it ends before the object is complete")
		case errors.Is(err, io.EOF):
			return errors.New("request body is empty; send a JSON object")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("request body has %s", strings.TrimPrefix(err.Error(), "json: "))
		}
		return fmt.Errorf("request body: %v", err)
	}
	if dec.More() {
		return errors.New("request body has more than one JSON value")
	}
	return nil
}

func statusForDecode(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, ErrorBody{Error: msg})
}
