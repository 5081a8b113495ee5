package notify

import "github.com/prometheus/client_golang/prometheus"

// PrometheusMetrics counts notifications on a registry the caller owns.
type PrometheusMetrics struct {
	sent, failed, dropped *prometheus.CounterVec
	suppressed            prometheus.Counter
}

// NewPrometheusMetrics registers the notification counters on reg.
func NewPrometheusMetrics(reg prometheus.Registerer) (*PrometheusMetrics, error) {
	m := &PrometheusMetrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_notifications_sent_total", Help: "Notifications delivered, by receiver.",
		}, []string{"receiver"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_notifications_failed_total", Help: "Notifications given up after retries, by receiver.",
		}, []string{"receiver"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lakirotator_notifications_dropped_total", Help: "Notifications dropped before delivery, by reason.",
		}, []string{"reason"}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "lakirotator_notifications_suppressed_total", Help: "Repeats suppressed within the dedup window.",
		}),
	}
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.dropped, m.suppressed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *PrometheusMetrics) Sent(receiver string)   { m.sent.WithLabelValues(receiver).Inc() }
func (m *PrometheusMetrics) Failed(receiver string) { m.failed.WithLabelValues(receiver).Inc() }
func (m *PrometheusMetrics) Dropped(reason string)  { m.dropped.WithLabelValues(reason).Inc() }
func (m *PrometheusMetrics) Suppressed()            { m.suppressed.Inc() }
