package push

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sent     prometheus.Counter
	failures *prometheus.CounterVec
}

// failureReasons are the values of messenger_push_failures_total's reason label.
var failureReasons = []string{"gone", "too_large", "rate_limited", "server_error", "timeout", "network", "canceled",
	"refused_address", "refused_endpoint", "invalid_subscription", "rejected"}

func newMetrics() *metrics {
	m := &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "messenger_push_sent_total", Help: "Pushes a push service accepted.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "messenger_push_failures_total",
			Help: "Pushes not accepted, by reason (gone, too_large, rate_limited, server_error, timeout, network, canceled, refused_address, refused_endpoint, invalid_subscription, rejected).",
		}, []string{"reason"}),
	}
	for _, r := range failureReasons {
		m.failures.WithLabelValues(r) // every series from the start, at zero
	}
	return m
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.sent, m.failures} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
