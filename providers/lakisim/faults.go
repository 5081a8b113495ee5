package lakisim

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lakirotator/lakirotator/providers/lakiconnect"
)

// Fault is a failure to inject into matching API requests (both
// environments).
type Fault struct {
	// Method to match; empty matches every method.
	Method string `json:"method,omitempty"`
	// PathPrefix to match against the path after /v1 (e.g. "/api_keys");
	// empty matches every path.
	PathPrefix string `json:"path_prefix,omitempty"`
	// Status, when set (e.g. 500, 503, 429), is answered instead, with an
	// Error body (rate_limit_error for 429, api_error otherwise).
	Status int `json:"status,omitempty"`
	// RetryAfter is sent as Retry-After (whole seconds, at least 1) with Status.
	RetryAfter time.Duration `json:"retry_after,omitempty"`
	// Latency is waited (real time) before the request goes on.
	Latency time.Duration `json:"latency,omitempty"`
	// Drop closes the connection without an answer.
	Drop bool `json:"drop,omitempty"`
	// AfterProcessing lets the API process the request first and then
	// replaces its answer (Status or Drop): the change happens, the caller
	// never learns it, as when a response is lost.
	AfterProcessing bool `json:"after_processing,omitempty"`
	// Times is how many requests the fault hits; 0 means until ClearFaults.
	Times int `json:"times,omitempty"`
}

func (f Fault) validate() error {
	if f.Status != 0 && (f.Status < 400 || f.Status > 599) {
		return fmt.Errorf("fault status %d is not an error status (400-599)", f.Status)
	}
	if f.Status != 0 && f.Drop {
		return fmt.Errorf("fault sets both status %d and drop", f.Status)
	}
	if f.Status == 0 && !f.Drop && f.Latency <= 0 {
		return fmt.Errorf("fault does nothing: set status, drop or latency")
	}
	if f.Times < 0 || f.Latency < 0 || f.RetryAfter < 0 {
		return fmt.Errorf("fault times, latency and retry_after must not be negative")
	}
	if f.PathPrefix != "" && !strings.HasPrefix(f.PathPrefix, "/") {
		return fmt.Errorf("fault path_prefix %q must start with / (the path after /v1)", f.PathPrefix)
	}
	return nil
}

type faultState struct {
	f    Fault
	left int // for Times > 0
}

// InjectFault adds a fault; faults are tried in the order they were added
// and the first match for each phase (before, after processing) applies.
func (s *Simulator) InjectFault(f Fault) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("lakisim: inject fault: %w", err)
	}
	f.Method = strings.ToUpper(f.Method)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{f: f, left: f.Times})
	return nil
}

// ClearFaults removes every fault.
func (s *Simulator) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFaults finds the faults that apply to this request and counts them used.
func (s *Simulator) takeFaults(method, path string) (before, after *Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.faults[:0]
	for _, fs := range s.faults {
		f := fs.f
		matches := (f.Method == "" || f.Method == method) && strings.HasPrefix(path, f.PathPrefix)
		slot := &before
		if f.AfterProcessing {
			slot = &after
		}
		if matches && *slot == nil {
			*slot = &f
			if f.Times > 0 {
				fs.left--
				if fs.left == 0 {
					continue
				}
			}
		}
		kept = append(kept, fs)
	}
	s.faults = kept
	return before, after
}

// wait sleeps the fault's latency; false means the client went away.
func (f *Fault) wait(r *http.Request) bool {
	if f.Latency <= 0 {
		return true
	}
	t := time.NewTimer(f.Latency)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

// breaks reports whether the fault replaces the answer (not only delays it).
func (f *Fault) breaks() bool { return f.Drop || f.Status != 0 }

// act drops the connection or answers the fault's status.
func (f *Fault) act(w http.ResponseWriter) {
	if f.Drop {
		dropConnection(w)
		return
	}
	typ, code := lakiconnect.ErrTypeAPI, lakiconnect.CodeInternal
	if f.Status == http.StatusTooManyRequests {
		typ, code = lakiconnect.ErrTypeRateLimit, lakiconnect.CodeRateLimited
	}
	resp := errorResponse(f.Status, typ, code, fmt.Sprintf("injected fault: %d", f.Status), "")
	if f.RetryAfter > 0 || f.Status == http.StatusTooManyRequests {
		resp.retryAfter = max(1, int((f.RetryAfter+time.Second-1)/time.Second))
	}
	writeResponse(w, resp)
}

// dropConnection closes the connection under the request without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a wrapped writer: aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}
