package pushservice

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pushproxy_ps_* series. Labels never carry identifiers.
type metrics struct {
	received   prometheus.Counter
	rejects    *prometheus.CounterVec // {code}: HTTP status of a refused push request
	depth      prometheus.Gauge       // whole database, refreshed by the sweeper
	connected  prometheus.Gauge       // this process
	delivered  prometheus.Counter     // notification frames queued to a socket
	acks       *prometheus.CounterVec // {code}
	nacks      *prometheus.CounterVec // {code}
	latency    prometheus.Histogram
	expired    prometheus.Counter
	slow       prometheus.Counter
	reconnects prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushproxy_ps_messages_received_total",
			Help: "Push messages accepted (201) by the push resource, TTL 0 ones included.",
		}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_ps_rejects_total",
			Help: "Requests to the push resource and message resources refused, by HTTP status.",
		}, []string{"code"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_ps_mailbox_depth",
			Help: "Messages waiting in the mailbox (the whole database, as of the last sweep).",
		}),
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_ps_devices_connected",
			Help: "Devices holding a push WebSocket to this process.",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushproxy_ps_notifications_sent_total",
			Help: "Notification frames sent to devices, replays included.",
		}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_ps_acks_total",
			Help: "Acknowledgements from devices, by code (100 delivered, 101 decryption error, 102 not delivered).",
		}, []string{"code"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_ps_nacks_total",
			Help: "Negative acknowledgements from devices, by code (301 handler threw, 302 promise rejected, 303 internal error).",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pushproxy_ps_delivery_latency_seconds",
			Help:    "Time from a message's receipt to the device's acknowledgement.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 6 * 3600, 86400, 7 * 86400},
		}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushproxy_ps_messages_expired_total",
			Help: "Messages deleted by this process's sweeper because their TTL ran out.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushproxy_ps_slow_sockets_closed_total",
			Help: "Device sockets closed because they could not take frames fast enough.",
		}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushproxy_ps_listen_reconnects_total",
			Help: "Times the LISTEN connection to Postgres was lost and reopened.",
		}),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		m.received, m.rejects, m.depth, m.connected, m.delivered, m.acks, m.nacks,
		m.latency, m.expired, m.slow, m.reconnects,
	} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// codeLabel keeps a label's values to a known set, so a client sending odd
// codes cannot grow the series.
func codeLabel(code int, known ...int) string {
	for _, k := range known {
		if code == k {
			return strconv.Itoa(code)
		}
	}
	return "other"
}
