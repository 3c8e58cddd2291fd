package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

type apiMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	created  prometheus.Counter
	refused  prometheus.Counter
	forwards *prometheus.CounterVec
}

func newAPIMetrics(reg prometheus.Registerer, st *store.Store) (*apiMetrics, error) {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_api_requests_total", Help: "API requests, by route and HTTP status code."}, []string{"route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "skiff_api_request_duration_seconds", Help: "API request latency, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"route"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_api_runs_created_total", Help: "Runs created through the API."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_api_requests_refused_total", Help: "Requests refused before routing: a Host that is not the server's, a foreign Origin or a body that is not JSON."}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_api_forwards_total", Help: "Requests a follower forwarded to the leader, by outcome: ok, retry (the leader changed), no_leader."}, []string{"outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.created, m.refused, m.forwards, &runsCollector{st: st}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// runsCollector reports the number of runs by state at scrape time.
type runsCollector struct{ st *store.Store }

var runsDesc = prometheus.NewDesc("skiff_runs", "Runs in the store, by state.", []string{"state"}, nil)

func (c *runsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- runsDesc }

func (c *runsCollector) Collect(ch chan<- prometheus.Metric) {
	counts, err := c.st.CountRunsByState()
	if err != nil {
		return
	}
	for s := spec.RunPending; s <= spec.RunCanceled; s++ {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(counts[s.String()]), s.String())
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush lets streaming handlers (SSE, log follow) flush through.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = http.StatusOK
		}
		s.m.requests.WithLabelValues(route, strconv.Itoa(sw.code)).Inc()
		s.m.seconds.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}
