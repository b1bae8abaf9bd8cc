package proxy

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics keeps mattermost-push-proxy's names and labels, so its
// "Notification Health" dashboards work, and adds the outbox's own. No
// label carries an id; every label value comes from a small fixed set.
type metrics struct {
	notifications        *prometheus.CounterVec // platform, type, transport
	success              *prometheus.CounterVec // platform, type, transport
	failure              *prometheus.CounterVec // platform, type, transport
	failureReason        *prometheus.CounterVec // platform, type, transport, reason
	removal              *prometheus.CounterVec // platform, transport, reason
	badRequest           prometheus.Counter
	delivered            *prometheus.CounterVec // platform, type, transport
	requestDuration      prometheus.Histogram
	notificationDuration *prometheus.HistogramVec // platform

	outboxDepth   prometheus.Gauge
	outboxOldest  prometheus.Gauge
	retries       *prometheus.CounterVec // reason
	expired       prometheus.Counter
	responses     *prometheus.CounterVec // code
	registrations prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	ptt := []string{"platform", "type", "transport"}
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_notifications_total", Help: "Number of notifications accepted for sending.",
		}, ptt),
		success: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_success_total", Help: "Number of notifications the push service accepted.",
		}, ptt),
		failure: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_failure_total", Help: "Number of notifications that failed for good.",
		}, ptt),
		failureReason: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_failure_with_reason_total", Help: "Number of notifications that failed for good, by reason.",
		}, append(ptt[:3:3], "reason")),
		removal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_removal_total", Help: "Number of devices reported as removed (REMOVE).",
		}, []string{"platform", "transport", "reason"}),
		badRequest: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "service_bad_request_total", Help: "Number of malformed send_push and ack requests.",
		}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "service_delivered_total", Help: "Number of notifications devices acknowledged (POST /api/v1/ack).",
		}, ptt),
		requestDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "service_request_duration_seconds", Help: "Time to answer send_push and ack.",
			Buckets: prometheus.DefBuckets,
		}),
		notificationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "service_notification_duration_seconds", Help: "Time from acceptance to the push service's final answer, retries included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 6 * 3600, 24 * 3600},
		}, []string{"platform"}),
		outboxDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_outbox_depth", Help: "Notifications in the outbox (pending or being sent), all proxies.",
		}),
		outboxOldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_outbox_oldest_seconds", Help: "Age of the oldest notification in the outbox.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_retries_total", Help: "Delivery attempts to be retried, by reason.",
		}, []string{"reason"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pushproxy_expired_total", Help: "Notifications dropped undelivered at the end of their TTL.",
		}),
		responses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pushproxy_webpush_responses_total", Help: "Push service answers, by status code bucket (neterr: no answer).",
		}, []string{"code"}),
		registrations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "pushproxy_registrations", Help: "Web Push registrations, all proxies.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.notifications, m.success, m.failure, m.failureReason, m.removal, m.badRequest, m.delivered,
		m.requestDuration, m.notificationDuration, m.outboxDepth, m.outboxOldest, m.retries, m.expired,
		m.responses, m.registrations,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// Label values. Anything outside the known sets is "other", so a sender
// cannot grow the series count.
func typeLabel(t string) string {
	switch t {
	case TypeMessage, TypeClear, TypeUpdateBadge, TypeSession, TypeTest:
		return t
	case "":
		return "none"
	}
	return "other"
}

func transportLabel(t string) string {
	switch t {
	case "", "voip":
		return t
	}
	return "other"
}

func platformLabel(p string) string {
	switch p {
	case PlatformWebPush, "apple", "apple_rn", "apple_rnbeta", "android", "android_rn", "android_rnbeta", "ios":
		return p
	}
	return "other"
}

// codeLabel buckets a push service status; 0 means no answer.
func codeLabel(status int) string {
	switch {
	case status == 0:
		return "neterr"
	case status >= 200 && status < 300:
		return "2xx"
	case status == 400, status == 401, status == 403, status == 404, status == 410, status == 413, status == 429:
		return strconv.Itoa(status)
	case status >= 400 && status < 500:
		return "4xx"
	case status >= 500 && status < 600:
		return "5xx"
	}
	return "other"
}
