package api

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are pkid's Prometheus series, on a registry of its own. Labels
// are bounded (route templates, roles, error kinds): never a serial, a
// name or a token.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	issued   *prometheus.CounterVec
	refused  *prometheus.CounterVec
	revoked  *prometheus.CounterVec
	limited  *prometheus.CounterVec
}

// newMetrics makes the series; writeFailing (may be nil) reports whether
// the store's writes are failing now, for pkid_store_write_failing, and
// diskFree (may be nil) the free space on the store's filesystem, for
// pkid_store_disk_free_bytes.
func newMetrics(writeFailing func() bool, diskFree func() (uint64, error)) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pkid_http_requests_total", Help: "HTTP requests by route template and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "pkid_http_request_duration_seconds", Help: "HTTP request latency by route template.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pkid_certificates_issued_total", Help: "Certificates issued by role and door (api, renew, acme).",
		}, []string{"role", "via"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pkid_issuance_refused_total", Help: "Refused REST issuance and renewal requests by role.",
		}, []string{"role", "request"}),
		revoked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pkid_revocations_total", Help: "Revocations by reason.",
		}, []string{"reason"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "pkid_rate_limited_total", Help: "Requests refused by a rate limit (429), by the pkid.yaml setting that refused them: acme.new_accounts, acme.unfinished_orders, acme.failed_validations, roles.<name>.rate_limit.",
		}, []string{"limit"}),
	}
	// The settings every CA has start at 0, so a rate over them reads 0,
	// not nothing, before the first refusal.
	for _, l := range []string{"acme.new_accounts", "acme.unfinished_orders", "acme.failed_validations"} {
		m.limited.WithLabelValues(l)
	}
	m.reg.MustRegister(m.requests, m.latency, m.issued, m.refused, m.revoked, m.limited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if writeFailing != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "pkid_store_write_failing", Help: "1 while the store's last commit failed (a full disk, say): nothing is issued or revoked until one succeeds.",
		}, func() float64 {
			if writeFailing() {
				return 1
			}
			return 0
		}))
	}
	if diskFree != nil {
		if _, err := diskFree(); err == nil {
			m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "pkid_store_disk_free_bytes", Help: "Free space on the store's filesystem: when it runs out, nothing is issued or revoked (alert well before; /healthz warns below storage.min_free_mb).",
			}, func() float64 {
				n, err := diskFree()
				if err != nil {
					return math.NaN()
				}
				return float64(n)
			}))
		}
	}
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe records one request under its route template ("unmatched" for
// 404s, so random paths cannot grow the label set).
func (m *metrics) observe(route string, status int, took time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(took.Seconds())
}

// routeSlot is where the router tells the outer middleware which route
// matched: the outer middleware runs before routing and cannot see it.
type routeSlot struct {
	template string
	// limit is the setting that refused the request, if a rate limit did
	// (writeProblem sets it): counted with the request.
	limit string
}

// recordRoute is router middleware (it runs after a route matched).
func recordRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slot, ok := r.Context().Value(keyRoute).(*routeSlot); ok {
			if cur := mux.CurrentRoute(r); cur != nil {
				slot.template, _ = cur.GetPathTemplate()
			}
		}
		next.ServeHTTP(w, r)
	})
}
