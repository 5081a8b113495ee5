package httpapi

import "net/http"

// NewMetricsHandler serves only /metrics, for a listener of its own (a
// loopback or VPC-only address); with MetricsAuth it asks for the API's
// credentials. Refusals are summarised as the API's are.
func NewMetricsHandler(o Options) http.Handler {
	o = withDefaults(o)
	s := &server{o: o}
	mux := http.NewServeMux()
	h := o.Metrics
	if o.MetricsAuth {
		h = s.authenticated(o.Metrics.ServeHTTP)
	}
	mux.Handle("GET /metrics", h)
	return mux
}
