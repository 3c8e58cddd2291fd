package engine

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	decisions      prometheus.Counter
	transitions    prometheus.Counter
	started        prometheus.Counter
	executorErrors prometheus.Counter
	executions     *prometheus.CounterVec
	queueDepth     prometheus.Gauge
	commitSeconds  prometheus.Histogram
	cache          *prometheus.CounterVec
	rejected       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_engine_decisions_total", Help: "Scheduler decisions acted on."}),
		transitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_engine_task_transitions_total", Help: "Task transitions committed."}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_engine_executions_started_total", Help: "Executions reported started by executors."}),
		executorErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_engine_executor_errors_total", Help: "Executor calls that failed or passed their deadline (start, stop, adopt, cleanup)."}),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_engine_executions_finished_total", Help: "Executions finished, by final state."}, []string{"state"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "skiff_engine_queue_depth", Help: "Messages taken by the last loop turn."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "skiff_engine_commit_seconds", Help: "Time to commit one loop turn's batch.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		cache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "skiff_engine_cache_lookups_total", Help: "Cache lookups by result: hit, miss, or wait (an identical execution was in flight)."}, []string{"result"}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "skiff_engine_rejected_changes_total", Help: "Changes the store rejected (each makes the engine refresh that run)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.transitions, m.started, m.executorErrors, m.executions, m.queueDepth, m.commitSeconds, m.cache, m.rejected} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
