// Package dashboard is the security team's read-only view served by the
// daemon at /ui/: inventory, timeline, emergencies and violations, rendered
// on the server with html/template and a small embedded stylesheet and
// script, so that it works with no build step and no network beyond the
// daemon. It reads through Backend and shows ids' last 4, ages and states,
// never a secret value.
package dashboard

import (
	"context"
	"crypto/x509"
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/audit"
	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/httpapi"
)

// Backend is what the dashboard reads from the daemon.
type Backend interface {
	// Inventory is every managed secret now (ids, ages, stages).
	Inventory(ctx context.Context) (httpapi.Inventory, error)
	// AuditRecords is the audit trail so far (nil when none is kept).
	AuditRecords(ctx context.Context) ([]audit.Record, error)
	// SecretStates is each secret's current key id and scopes against its
	// policy (the daemon may answer from a short cache: it reads the store).
	SecretStates(ctx context.Context) ([]audit.SecretState, error)
}

// Options configures the dashboard.
type Options struct {
	Backend   Backend
	Tokens    httpapi.TokenMatcher
	ClientCAs *x509.CertPool
	// SessionTTL is how long a browser session lasts after a token login (default 15m).
	SessionTTL time.Duration
	// Refresh is how often pages poll for fresh content (default 30s).
	Refresh time.Duration
	Now     func() time.Time
	Logger  *slog.Logger
	// Events receives a refused login or bearer token, as the API records its
	// refusals (a browser without a session is sent to the login, not recorded).
	Events events.Sink
}

//go:embed assets
var assets embed.FS

//go:embed templates.html
var templatesHTML string

// Handler serves /ui/.
type Handler struct {
	o    Options
	auth *auth
	tmpl *template.Template
	mux  *http.ServeMux
}

// New builds the dashboard handler. It is meant to be mounted at "/ui/".
func New(o Options) (*Handler, error) {
	if o.Backend == nil {
		return nil, fmt.Errorf("dashboard: no source")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 15 * time.Minute
	}
	if o.Refresh <= 0 {
		o.Refresh = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Events == nil {
		o.Events = events.SinkFunc(func(context.Context, events.Event) {})
	}
	a, err := newAuth(o.Tokens, o.ClientCAs, o.SessionTTL, o.Now)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("ui").Funcs(funcs).Parse(templatesHTML)
	if err != nil {
		return nil, fmt.Errorf("dashboard: templates: %w", err)
	}
	h := &Handler{o: o, auth: a, tmpl: tmpl, mux: http.NewServeMux()}
	static, _ := fs.Sub(assets, "assets")
	h.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/login", h.loginForm)
	h.mux.HandleFunc("POST /ui/login", h.login)
	h.mux.HandleFunc("POST /ui/logout", h.logout)
	h.mux.Handle("GET /ui/{$}", h.authenticated(h.inventory))
	h.mux.Handle("GET /ui/timeline", h.authenticated(h.timeline))
	h.mux.Handle("GET /ui/emergencies", h.authenticated(h.emergencies))
	h.mux.Handle("GET /ui/violations", h.authenticated(h.violations))
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Nothing but the daemon itself: no CDN, no inline script, no framing.
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

type principalKey struct{}

func (h *Handler) authenticated(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who, why := h.auth.principal(r)
		if who == "" {
			// No log line per request (a flood would grow the log): a
			// presented credential is recorded, summarised, through Events.
			if r.Header.Get("Authorization") != "" {
				h.refused(r, why)
			}
			if r.URL.Query().Get("format") != "" || r.Header.Get("Authorization") != "" {
				w.Header().Set("WWW-Authenticate", `Bearer realm="lakirotator"`)
				http.Error(w, why, http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, "/ui/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, who)))
	})
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, "login", map[string]any{"Next": safeNext(r.URL.Query().Get("next")), "Error": ""})
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	// A cross-site form cannot log a browser in as someone else.
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		if u, err := url.Parse(o); err != nil || u.Host != r.Host {
			http.Error(w, "login from another origin", http.StatusForbidden)
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	next := safeNext(r.PostFormValue("next"))
	who, why := h.auth.matchToken(r.PostFormValue("token"))
	if who == "" {
		h.refused(r, "dashboard login: "+why)
		w.WriteHeader(http.StatusUnauthorized)
		h.render(w, r, "login", map[string]any{"Next": next, "Error": "That token is not accepted."})
		return
	}
	http.SetCookie(w, h.auth.cookie(r, h.auth.newSession(who)))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	c := h.auth.cookie(r, "")
	c.MaxAge = -1
	http.SetCookie(w, c)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

// refused records a refused credential, as the API records its refusals.
func (h *Handler) refused(r *http.Request, why string) {
	h.o.Events.Emit(r.Context(), events.Event{
		Time: h.o.Now(), Step: events.StepAuth, Outcome: events.OutcomeRefused, Severity: events.SeverityWarning,
		Source: events.SourceHTTP, Reason: why,
		Details: map[string]string{"method": r.Method, "path": r.URL.Path, "remote": r.RemoteAddr, "status": "401"},
	})
}

// safeNext keeps a redirect target inside the dashboard.
func safeNext(n string) string {
	if strings.HasPrefix(n, "/ui/") && !strings.HasPrefix(n, "//") && !strings.Contains(n, "\\") {
		return n
	}
	return "/ui/"
}

// table is what a page shows as its main table, in the form downloads take.
type table struct {
	Header []string
	Rows   [][]string
	JSON   any
}

// download writes t as CSV or JSON when the request asks for one, and says whether it did.
func download(w http.ResponseWriter, r *http.Request, name string, t func() table) bool {
	switch r.URL.Query().Get("format") {
	case "csv":
		tb := t()
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		cw := csv.NewWriter(w)
		_ = cw.Write(tb.Header)
		_ = cw.WriteAll(tb.Rows)
		return true
	case "json":
		tb := t()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.json"`)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(tb.JSON)
		return true
	case "":
		return false
	default:
		http.Error(w, "format must be csv or json", http.StatusBadRequest)
		return true
	}
}

func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	data["Page"] = name
	data["Refresh"] = int(h.o.Refresh / time.Second)
	data["Now"] = h.o.Now().UTC()
	data["Principal"], _ = r.Context().Value(principalKey{}).(string)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := h.tmpl.ExecuteTemplate(w, name, data); err != nil {
		h.o.Logger.Error("dashboard render failed", "page", name, "err", err)
	}
}

func (h *Handler) facts(ctx context.Context) (facts, error) {
	recs, err := h.o.Backend.AuditRecords(ctx)
	if err != nil {
		return facts{}, err
	}
	return buildFacts(recs, h.o.Now()), nil
}

func (h *Handler) fail(w http.ResponseWriter, what string, err error) {
	h.o.Logger.Error("dashboard data unavailable", "what", what, "err", err)
	http.Error(w, what+" unavailable", http.StatusServiceUnavailable)
}

// options are the distinct values of a field, for the filter menus.
func options(secrets []httpapi.SecretStatus, get func(httpapi.SecretStatus) []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range secrets {
		for _, v := range get(s) {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	slices.Sort(out)
	return out
}
