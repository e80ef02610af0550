package server

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sesameauth/sesame"
)

// metrics holds the server's Prometheus collectors.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	logins   *prometheus.CounterVec
	forward  *prometheus.CounterVec
	// cache holds the observers of each (route, status) seen; routes are
	// mux patterns (bounded) and statuses few, so it stays small.
	cache sync.Map
}

// HashStats is implemented by a password hasher that can say how busy it
// is (password.Hasher does).
type HashStats interface {
	Waiting() int
	Running() int
}

// liveSampleEvery is how old the sesame_sessions_live figure may get: a
// scrape within it is answered from the last count, so however often
// /metrics is scraped (it is public unless --metrics-addr moves it), the
// store counts its sessions at most once in that time.
const liveSampleEvery = 10 * time.Second

func newMetrics(reg prometheus.Registerer, counter sesame.SessionCounter, hasher sesame.Hasher, now func() time.Time) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_http_requests_total",
			Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sesame_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_logins_total",
			Help: "Login attempts by outcome: succeeded, failed, rate_limited, busy, error.",
		}, []string{"outcome"}),
		forward: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sesame_forward_auth_decisions_total",
			Help: "Forward-auth decisions by result (allowed, redirected, unauthenticated, forbidden, invalid, untrusted, unavailable) and the rule that decided (its name, \"default\", or \"none\" before any rule was reached).",
		}, []string{"result", "rule"}),
	}
	reg.MustRegister(m.requests, m.duration, m.logins, m.forward)
	for _, o := range []string{"succeeded", "failed", "rate_limited", "busy", "error"} {
		m.logins.WithLabelValues(o)
	}
	if c := counter; c != nil {
		live := &sampled{count: c.CountSessions, every: liveSampleEvery, now: now}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sesame_sessions_live",
			Help: "Live sessions in the session store, counted at most every 10 s (-1 when the store cannot answer).",
		}, live.value))
	}
	if hs, ok := hasher.(HashStats); ok {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sesame_password_hashes_waiting",
				Help: "Password hashes waiting for a slot.",
			}, func() float64 { return float64(hs.Waiting()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "sesame_password_hashes_running",
				Help: "Password hashes being computed.",
			}, func() float64 { return float64(hs.Running()) }),
		)
	}
	return m
}

// sampled is a count that is taken again only when the last one is older
// than every; concurrent readers of a stale value wait for one count.
type sampled struct {
	count func(context.Context) (int, error)
	every time.Duration
	now   func() time.Time

	mu  sync.Mutex
	at  time.Time
	val float64
}

func (s *sampled) value() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if !s.at.IsZero() && now.Sub(s.at) < s.every {
		return s.val
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := s.count(ctx)
	s.at, s.val = now, float64(n)
	if err != nil {
		s.val = -1
	}
	return s.val
}

// registerProcess adds the standard Go and process collectors.
func registerProcess(reg prometheus.Registerer) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	k := routeStatus{route, status}
	o, ok := m.cache.Load(k)
	if !ok {
		// Resolve the label values once per route and status: the hot
		// path then costs two atomic adds, no hashing, no allocation.
		o, _ = m.cache.LoadOrStore(k, observers{
			count:   m.requests.WithLabelValues(route, strconv.Itoa(status)),
			latency: m.duration.WithLabelValues(route),
		})
	}
	ob := o.(observers)
	ob.count.Inc()
	ob.latency.Observe(d.Seconds())
}

// forwardDecision counts a forward-auth decision. Rules are few and named
// by the operator, so the label values stay bounded.
func (m *metrics) forwardDecision(result, rule string) {
	k := resultRule{result, rule}
	c, ok := m.cache.Load(k)
	if !ok {
		c, _ = m.cache.LoadOrStore(k, m.forward.WithLabelValues(result, rule))
	}
	c.(prometheus.Counter).Inc()
}

type resultRule struct{ result, rule string }

type routeStatus struct {
	route  string
	status int
}

type observers struct {
	count   prometheus.Counter
	latency prometheus.Observer
}
