package lakisim

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/laki"
)

// AdminPrefix is where AdminHandler serves.
const AdminPrefix = "/_sim/"

// AdminHandler serves the simulator's control API under /_sim/, for tests
// that run the simulator as a separate process. It answers only loopback
// clients, since it hands out secrets and breaks things on request.
//
//	POST   /_sim/merchants          {"id":""}                                   → {"id":"mm_..."}
//	POST   /_sim/keys               {"environment","master_merchant_id","name","scopes"} → key with "secret"
//	POST   /_sim/keys/{id}/revoke   {"reason":"revoked_by_dashboard"}
//	POST   /_sim/keys/{id}/expose   {"source":"public_repository","url":""}     → {"event_id":"evt_..."}
//	POST   /_sim/webhook_endpoints  {"environment","master_merchant_id","url","enabled_events"} → endpoint and "secret"
//	POST   /_sim/faults             {"method","path_prefix","status","retry_after":"2s","latency":"250ms","drop","after_processing","times"}
//	DELETE /_sim/faults
//	GET    /_sim/requests | /_sim/events | /_sim/deliveries
func (s *Simulator) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_sim/merchants", s.adminMerchant)
	mux.HandleFunc("POST /_sim/keys", s.adminCreateKey)
	mux.HandleFunc("POST /_sim/keys/{id}/revoke", s.adminRevoke)
	mux.HandleFunc("POST /_sim/keys/{id}/expose", s.adminExpose)
	mux.HandleFunc("POST /_sim/webhook_endpoints", s.adminEndpoint)
	mux.HandleFunc("POST /_sim/faults", s.adminFault)
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		s.ClearFaults()
		adminJSON(w, http.StatusOK, map[string]bool{"cleared": true})
	})
	mux.HandleFunc("GET /_sim/requests", func(w http.ResponseWriter, r *http.Request) { adminJSON(w, 200, s.Requests()) })
	mux.HandleFunc("GET /_sim/events", func(w http.ResponseWriter, r *http.Request) { adminJSON(w, 200, s.Events()) })
	mux.HandleFunc("GET /_sim/deliveries", func(w http.ResponseWriter, r *http.Request) { adminJSON(w, 200, s.Deliveries()) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fromLoopback(r) {
			adminError(w, http.StatusForbidden, "the simulator's admin API answers loopback clients only")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		mux.ServeHTTP(w, r)
	})
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, msg string) {
	adminJSON(w, status, map[string]string{"error": msg})
}

func adminDecode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		adminError(w, http.StatusBadRequest, "reading body: "+err.Error())
		return false
	}
	if strings.TrimSpace(string(body)) == "" {
		body = []byte("{}")
	}
	if err := decodeStrict(body, v); err != nil {
		adminError(w, http.StatusBadRequest, fmt.Sprintf("%s %s: invalid JSON body: %v", r.Method, r.URL.Path, err))
		return false
	}
	return true
}

func (s *Simulator) adminMerchant(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID string `json:"id"`
	}
	if !adminDecode(w, r, &req) {
		return
	}
	adminJSON(w, http.StatusCreated, map[string]string{"id": s.AddMasterMerchant(req.ID)})
}

func (s *Simulator) adminCreateKey(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Environment      laki.Environment `json:"environment"`
		MasterMerchantID string           `json:"master_merchant_id"`
		Name             string           `json:"name"`
		Scopes           []laki.Scope     `json:"scopes"`
	}
	if !adminDecode(w, r, &req) {
		return
	}
	k, err := s.CreateKey(req.Environment, req.MasterMerchantID, req.Name, req.Scopes)
	if err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	adminJSON(w, http.StatusCreated, createKeyResponse{APIKey: k.APIKey, Secret: k.Secret.Reveal()})
}

func (s *Simulator) adminRevoke(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason string `json:"reason"`
	}
	if !adminDecode(w, r, &req) {
		return
	}
	if req.Reason == "" {
		req.Reason = "revoked_by_dashboard"
	}
	if err := s.RevokeKey(r.PathValue("id"), req.Reason); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	k, _ := s.Key(r.PathValue("id"))
	adminJSON(w, http.StatusOK, k)
}

func (s *Simulator) adminExpose(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Source string `json:"source"`
		URL    string `json:"url"`
	}
	if !adminDecode(w, r, &req) {
		return
	}
	id, err := s.ExposeKey(r.PathValue("id"), req.Source, req.URL)
	if err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	adminJSON(w, http.StatusCreated, map[string]string{"event_id": id})
}

func (s *Simulator) adminEndpoint(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Environment      laki.Environment `json:"environment"`
		MasterMerchantID string           `json:"master_merchant_id"`
		URL              string           `json:"url"`
		EnabledEvents    []string         `json:"enabled_events"`
	}
	if !adminDecode(w, r, &req) {
		return
	}
	ep, ws, err := s.AddWebhookEndpoint(req.Environment, req.MasterMerchantID, req.URL, req.EnabledEvents)
	if err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	adminJSON(w, http.StatusCreated, struct {
		Endpoint laki.WebhookEndpoint `json:"endpoint"`
		Secret   createSecretResponse `json:"secret"`
	}{ep, createSecretResponse{WebhookSecretInfo: ws.WebhookSecretInfo, EndpointID: ws.EndpointID, Secret: ws.Secret.Reveal()}})
}

func (s *Simulator) adminFault(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Method          string `json:"method"`
		PathPrefix      string `json:"path_prefix"`
		Status          int    `json:"status"`
		RetryAfter      string `json:"retry_after"`
		Latency         string `json:"latency"`
		Drop            bool   `json:"drop"`
		AfterProcessing bool   `json:"after_processing"`
		Times           int    `json:"times"`
	}
	if !adminDecode(w, r, &req) {
		return
	}
	f := Fault{Method: req.Method, PathPrefix: req.PathPrefix, Status: req.Status, Drop: req.Drop, AfterProcessing: req.AfterProcessing, Times: req.Times}
	for field, d := range map[string]*time.Duration{"retry_after": &f.RetryAfter, "latency": &f.Latency} {
		v := req.RetryAfter
		if field == "latency" {
			v = req.Latency
		}
		if v == "" {
			continue
		}
		parsed, err := time.ParseDuration(v)
		if err != nil {
			adminError(w, http.StatusBadRequest, fmt.Sprintf("fault field %s: %q is not a duration like 250ms or 2s", field, v))
			return
		}
		*d = parsed
	}
	if err := s.InjectFault(f); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	adminJSON(w, http.StatusCreated, f)
}
