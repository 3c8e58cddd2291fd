package store

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are registered on the injected Registerer only (never the global
// one); with a nil Registerer they are still updated but not exported.
type metrics struct {
	reg        prometheus.Registerer
	applyLat   prometheus.Histogram
	entries    prometheus.Counter
	commands   *prometheus.CounterVec
	rejections prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		applyLat: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "skiff_store_apply_seconds",
			Help:    "Latency of Store.Apply from proposal to applied on this node.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms .. ~4s
		}),
		entries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_store_entries_total",
			Help: "Raft log entries applied to the state machine.",
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_store_commands_total",
			Help: "Commands applied to the state machine, by type.",
		}, []string{"type"}),
		rejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_store_rejections_total",
			Help: "Commands or batch items rejected by the state machine as stale or invalid.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, errors.Join(errors.New("store: register metrics"), err)
		}
		done = append(done, c)
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.applyLat, m.entries, m.commands, m.rejections}
}

func (m *metrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.collectors() {
		m.reg.Unregister(c)
	}
}

func (m *metrics) observeApplied(entries int, cmds map[CommandType]int, rejections int) {
	if m == nil {
		return
	}
	m.entries.Add(float64(entries))
	for t, n := range cmds {
		m.commands.WithLabelValues(commandName(t)).Add(float64(n))
	}
	m.rejections.Add(float64(rejections))
}

func (m *metrics) observeApply(start time.Time) {
	if m == nil {
		return
	}
	m.applyLat.Observe(time.Since(start).Seconds())
}
