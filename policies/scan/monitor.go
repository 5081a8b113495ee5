package scan

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lakirotator/lakirotator/events"
	"github.com/lakirotator/lakirotator/internal/clock"
	"github.com/lakirotator/lakirotator/policies"
)

// Metrics are the scan's Prometheus series. Labels are reason and severity
// only: bounded, and free of names and ids.
type Metrics struct {
	violations *prometheus.GaugeVec
	scans      *prometheus.CounterVec
}

// NewMetrics registers the scan's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "lakirotator_policy_violations",
			Help: "Policy violations found by the last policy scan, per reason.",
		}, []string{"reason", "severity"}),
		scans: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_policy_scans_total",
			Help: "Policy scans run, by result (ok, error).",
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.violations, m.scans} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(vs []policies.Violation, err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.scans.WithLabelValues("error").Inc()
		return
	}
	m.scans.WithLabelValues("ok").Inc()
	// Every documented reason is set, so a resolved reason drops to 0
	// instead of keeping its last value.
	counts := map[[2]string]int{}
	for _, v := range vs {
		counts[[2]string{string(v.Reason), string(v.Severity)}]++
	}
	m.violations.Reset()
	for _, r := range policies.Reasons() {
		m.violations.WithLabelValues(string(r.Reason), string(r.Severity)).Set(0)
	}
	for k, n := range counts {
		m.violations.WithLabelValues(k[0], k[1]).Set(float64(n))
	}
}

// Monitor is the daemon's scheduled policy scan: it scans, raises an event
// for each violation not seen in the previous scan, and updates metrics.
type Monitor struct {
	Scanner   *Scanner
	Inventory func(ctx context.Context) ([]Managed, error)
	Clock     clock.Clock
	Sink      events.Sink
	Metrics   *Metrics // optional
	Logger    *slog.Logger

	mu    sync.Mutex
	known []policies.Violation
}

// ScanOnce runs one scan. It emits events only for new violations, so a
// violation that persists is reported once, and again only after it was
// resolved and came back.
func (m *Monitor) ScanOnce(ctx context.Context) ([]policies.Violation, error) {
	now := m.Clock.Now()
	managed, err := m.Inventory(ctx)
	var vs []policies.Violation
	if err == nil {
		vs, err = m.Scanner.Scan(ctx, managed, now)
	}
	m.Metrics.observe(vs, err)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	added, _ := policies.Diff(m.known, vs)
	m.known = vs
	m.mu.Unlock()
	for _, v := range added {
		m.Sink.Emit(ctx, Event(v, now))
	}
	return vs, nil
}

// Run scans every interval until ctx ends. Scan errors are logged and the
// next scan runs on time.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) error {
	log := m.Logger
	if log == nil {
		log = slog.Default()
	}
	for {
		if _, err := m.ScanOnce(ctx); err != nil && ctx.Err() == nil {
			log.WarnContext(ctx, "policy scan failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.Clock.After(interval):
		}
	}
}
