// Package metrics holds the daemon's Prometheus metrics. One Metrics value
// owns its registry (no package-level collectors), and it subscribes to the
// events seam, so the engine never calls a metrics API itself.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lakirotator/lakirotator/events"
)

// Metrics is the daemon's collector set.
type Metrics struct {
	Registry *prometheus.Registry

	Rotations        *prometheus.CounterVec   // result, cause
	StepDuration     *prometheus.HistogramVec // step, outcome
	LastSuccess      *prometheus.GaugeVec     // secret: unix time of the last successful rotation
	SecretAge        *prometheus.GaugeVec     // secret, environment: age of AWSCURRENT in seconds
	Alerts           *prometheus.CounterVec   // reason
	ProviderCalls    *prometheus.CounterVec   // provider, operation, status
	Triggers         *prometheus.CounterVec   // source, outcome
	RotationFailures *prometheus.CounterVec   // step, environment
	RefusedRequests  *prometheus.CounterVec   // door, code: every refused request, however few are recorded

	// Per-secret series name every managed secret, so they are opt-in
	// (WithSecretLabels) and bounded; past the bound, secrets go uncounted.
	secretLabels int
	mu           sync.Mutex
	labelled     map[string]bool
}

// Option configures New.
type Option func(*Metrics)

// WithSecretLabels turns on the per-secret series (age, last success) for
// at most max secrets.
func WithSecretLabels(max int) Option {
	return func(m *Metrics) { m.secretLabels = max }
}

// perSecret reports whether secret may have its own series.
func (m *Metrics) perSecret(secret string) bool {
	if m.secretLabels <= 0 {
		return false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.labelled[secret] {
		return true
	}
	if len(m.labelled) >= m.secretLabels {
		return false
	}
	m.labelled[secret] = true
	return true
}

// New builds the collectors and registers them, with the Go and process collectors.
func New(opts ...Option) *Metrics {
	m := &Metrics{
		labelled: map[string]bool{},
		Registry: prometheus.NewRegistry(),
		Rotations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_rotations_total", Help: "Rotations finished, by result and cause.",
		}, []string{"result", "cause"}),
		StepDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "lakirotator_step_duration_seconds", Help: "Duration of lifecycle steps.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"step", "outcome"}),
		LastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lakirotator_last_success_timestamp_seconds", Help: "Unix time of the last successful rotation of a secret.",
		}, []string{"secret"}),
		SecretAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lakirotator_secret_age_seconds", Help: "Age of the credential in AWSCURRENT.",
		}, []string{"secret", "environment"}),
		Alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_alerts_total", Help: "Alerts raised (401/403 spikes, old keys still in use, failures).",
		}, []string{"reason"}),
		ProviderCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_provider_calls_total", Help: "Calls to LakiConnect and AWS by operation and status.",
		}, []string{"provider", "operation", "status"}),
		Triggers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_triggers_total", Help: "Rotation triggers by source and outcome (accepted, refused).",
		}, []string{"source", "outcome"}),
		RotationFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_step_failures_total", Help: "Failed lifecycle steps by step and environment.",
		}, []string{"step", "environment"}),
		RefusedRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_refused_requests_total", Help: "Requests refused at the daemon's doors (API, security events, Slack) by door and reason code; every one is counted, though the audit keeps one record per source and reason a minute.",
		}, []string{"door", "code"}),
	}
	for _, o := range opts {
		o(m)
	}
	m.Registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.Rotations, m.StepDuration, m.LastSuccess, m.SecretAge,
		m.Alerts, m.ProviderCalls, m.Triggers, m.RotationFailures, m.RefusedRequests,
	)
	return m
}

// CountRefusal counts one refused request (inbound.Counter). The labels are
// the door and a code from a fixed set: never anything the caller wrote.
func (m *Metrics) CountRefusal(door, code string) {
	m.RefusedRequests.WithLabelValues(door, code).Inc()
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Emit updates the metrics from a lifecycle event (events.Sink). Labels
// carry names, steps and reasons only: never a value.
func (m *Metrics) Emit(_ context.Context, e events.Event) {
	if e.Duration > 0 && e.Outcome != events.OutcomeStarted {
		m.StepDuration.WithLabelValues(string(e.Step), string(e.Outcome)).Observe(e.Duration.Seconds())
	}
	switch {
	case e.Step == events.StepRotation && e.Outcome == events.OutcomeSucceeded:
		m.Rotations.WithLabelValues("succeeded", string(e.Cause)).Inc()
		if m.perSecret(e.Secret) {
			m.LastSuccess.WithLabelValues(e.Secret).Set(float64(e.Time.Unix()))
			m.SecretAge.WithLabelValues(e.Secret, e.Environment).Set(0)
		}
	case e.Step == events.StepRotation && e.Outcome == events.OutcomeFailed:
		m.Rotations.WithLabelValues("failed", string(e.Cause)).Inc()
	case e.Step == events.StepTrigger:
		m.Triggers.WithLabelValues(string(e.Source), string(e.Outcome)).Inc()
	case e.Step == events.StepAlert:
		m.Alerts.WithLabelValues(reasonOf(e)).Inc()
	}
	if e.Outcome == events.OutcomeFailed && e.Step != events.StepRotation && e.Step != events.StepTrigger {
		m.RotationFailures.WithLabelValues(string(e.Step), e.Environment).Inc()
	}
}

func reasonOf(e events.Event) string {
	// Only the stable reason code: free text would make unbounded label values.
	if r := e.Details["reason"]; r != "" {
		return r
	}
	return "unspecified"
}

// SetSecretAge records the age of a secret's current credential.
func (m *Metrics) SetSecretAge(secret, environment string, age time.Duration) {
	if m.perSecret(secret) {
		m.SecretAge.WithLabelValues(secret, environment).Set(age.Seconds())
	}
}

// ObserveCall counts one call to an outside system.
func (m *Metrics) ObserveCall(provider, operation, status string) {
	m.ProviderCalls.WithLabelValues(provider, operation, status).Inc()
}
