package digest

import "github.com/prometheus/client_golang/prometheus"

// Metrics count the digests' outcomes. They exist whether or not email is on, so that an
// alert on failures has its series from the start.
type Metrics struct {
	sent, failed prometheus.Counter
}

// NewMetrics registers messenger_digest_emails_total on reg, both outcomes at zero.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "messenger_digest_emails_total",
		Help: "Digest emails by outcome: sent (the SMTP server took it), failed (it refused or did not answer; the job retries).",
	}, []string{"outcome"})
	reg.MustRegister(v)
	return &Metrics{sent: v.WithLabelValues("sent"), failed: v.WithLabelValues("failed")}
}

// SetMetrics makes the service count its digests on m.
func (s *Service) SetMetrics(m *Metrics) { s.metrics = m }

func (m *Metrics) outcome(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.failed.Inc()
	} else {
		m.sent.Inc()
	}
}
