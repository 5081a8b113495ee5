package metrics

import "github.com/prometheus/client_golang/prometheus"

// Audit holds the audit trail's health metrics: the Terraform alarms fire
// on the gauge and on any increase of the counter.
type Audit struct {
	WriteFailures prometheus.Counter // every failed write to an audit sink
	Writable      prometheus.Gauge   // 1 while at least one sink writes, 0 while the audit fails closed
}

// NewAudit registers the audit metrics in m's registry. The gauge starts at 1.
func (m *Metrics) NewAudit() (*Audit, error) {
	a := &Audit{
		WriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lakirotator_audit_write_failures_total",
			Help: "Failed writes to an audit sink (each attempt, including retries of queued records).",
		}),
		Writable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "lakirotator_audit_writable",
			Help: "1 while at least one audit sink can write; 0 while the audit fails closed (scheduled and manual rotations paused).",
		}),
	}
	for _, c := range []prometheus.Collector{a.WriteFailures, a.Writable} {
		if err := m.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	a.Writable.Set(1)
	return a, nil
}
