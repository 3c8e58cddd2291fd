package ui

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

type experimentRow struct {
	store.Experiment
	Runs    int
	Last    time.Time
	Counts  []stateCount
	RunsURL string
}

func (s *Server) experimentsPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	exps, err := s.cfg.Store.ListExperiments(v.listNamespace())
	if err != nil {
		return err
	}
	runs, err := s.cfg.Store.ListRunsBy(store.RunFilter{Namespace: v.listNamespace()})
	if err != nil {
		return err
	}
	byExp := map[string][]store.Run{}
	for _, run := range runs {
		byExp[run.ExperimentID] = append(byExp[run.ExperimentID], run)
	}
	var rows []experimentRow
	for _, e := range exps {
		if !v.sees(e.Namespace) {
			continue
		}
		row := experimentRow{Experiment: e, Runs: len(byExp[e.ID]), RunsURL: "/runs?q=" + urlQuery("experiment:"+quoteTerm(e.Name))}
		by := map[string]int{}
		for _, run := range byExp[e.ID] {
			by[run.State.String()]++
			if run.CreatedAt.After(row.Last) {
				row.Last = run.CreatedAt
			}
		}
		for st, n := range by {
			row.Counts = append(row.Counts, stateCount{st, n})
		}
		slices.SortFunc(row.Counts, func(a, b stateCount) int { return cmp.Compare(stateRank(a.State), stateRank(b.State)) })
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b experimentRow) int { return b.Last.Compare(a.Last) })
	s.render(w, r, http.StatusOK, "experiments", v, rows)
	return nil
}

func quoteTerm(s string) string {
	if strings.ContainsAny(s, " \t") {
		return `"` + s + `"`
	}
	return s
}

type compareData struct {
	Runs     []store.Run
	Legend   []legendItem
	Charts   []barChart
	Parallel *parallelChart
	Params   []compareRow
	Metrics  []compareRow
	DiffOnly bool
	Toggle   string
	Error    string
}

// compareRow is one parameter or metric across the compared runs.
type compareRow struct {
	Key    string
	Values []string
	Same   bool
	Best   int // index of the highest numeric value, -1 if none
}

func (s *Server) comparePage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	var ids []string
	for id := range strings.SplitSeq(q.Get("runs"), ",") {
		if id = strings.TrimSpace(id); id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) > s.cfg.MaxCompare {
		return fmt.Errorf("%w: runs: %d runs given, compare takes at most %d", errBadRequest, len(ids), s.cfg.MaxCompare)
	}
	d := compareData{DiffOnly: q.Get("diff") == "1"}
	nq := r.URL.Query()
	if d.DiffOnly {
		nq.Del("diff")
	} else {
		nq.Set("diff", "1")
	}
	d.Toggle = "/compare?" + nq.Encode()
	params := map[string][]string{}
	metrics := map[string][]string{}
	for n, id := range ids {
		m, err := s.loadRun(id, v)
		if err != nil {
			return err
		}
		d.Runs = append(d.Runs, m.run)
		for k, val := range m.run.Params {
			put(params, k, n, len(ids), compactJSON(val))
		}
		for k, val := range s.metricsOf(r.Context(), m.run) {
			put(metrics, k, n, len(ids), val)
		}
	}
	if len(ids) < 2 {
		d.Error = "Pick two or more runs on the Runs page (up to " + fmt.Sprint(s.cfg.MaxCompare) + ") and press Compare."
	}
	d.Params = compareRows(params, d.DiffOnly)
	d.Metrics = compareRows(metrics, d.DiffOnly)
	if len(d.Runs) >= 2 {
		names := make([]string, len(d.Runs))
		for i, run := range d.Runs {
			names[i] = run.Name
			d.Legend = append(d.Legend, legendItem{Name: run.Name, ID: run.ID, Color: runColor(i)})
		}
		d.Charts = metricCharts(d.Metrics, names)
		d.Parallel = parallelCoords(d.Params, d.Metrics, names)
	}
	s.render(w, r, http.StatusOK, "compare", v, d)
	return nil
}

func put(m map[string][]string, k string, i, n int, v string) {
	if m[k] == nil {
		m[k] = make([]string, n)
	}
	m[k][i] = v
}

func compareRows(m map[string][]string, diffOnly bool) []compareRow {
	var out []compareRow
	for _, k := range sortedKeys(m) {
		vals := m[k]
		row := compareRow{Key: k, Values: vals, Same: true, Best: -1}
		best, lower := 0.0, lowerIsBetter(k)
		for i, x := range vals {
			row.Same = row.Same && x == vals[0]
			var f float64
			if _, err := fmt.Sscanf(x, "%g", &f); err == nil && (row.Best < 0 || !lower && f > best || lower && f < best) {
				row.Best, best = i, f
			}
		}
		if row.Same {
			row.Best = -1
		}
		if diffOnly && row.Same {
			continue
		}
		out = append(out, row)
	}
	return out
}

// metricsOf is run's scalar metrics (runMetrics), cached once the run is
// final; {} when its tasks cannot be read.
func (s *Server) metricsOf(ctx context.Context, run store.Run) map[string]string {
	if run.State.Final() {
		s.metricsMu.Lock()
		got, ok := s.metrics[run.ID]
		s.metricsMu.Unlock()
		if ok {
			return got
		}
	}
	if len(run.Plan) == 0 { // a list's summary: read the whole run
		full, err := s.cfg.Store.GetRun(run.ID)
		if err != nil {
			return map[string]string{}
		}
		run = full
	}
	tasks, err := s.cfg.Store.Tasks(run.ID)
	if err != nil {
		return map[string]string{}
	}
	m, err := newRunModel(run, tasks)
	if err != nil {
		return map[string]string{}
	}
	out := s.runMetrics(ctx, m)
	if run.State.Final() {
		s.metricsMu.Lock()
		if len(s.metrics) >= 4096 {
			clear(s.metrics)
		}
		s.metrics[run.ID] = out
		s.metricsMu.Unlock()
	}
	return out
}

// lowerIsBetter guesses from a metric's name that its best value is the
// lowest (a loss or an error).
func lowerIsBetter(key string) bool {
	k := strings.ToLower(key[strings.LastIndexByte(key, '.')+1:])
	for _, w := range []string{"loss", "error", "err", "mse", "rmse", "mae", "perplexity", "latency"} {
		if k == w || strings.HasSuffix(k, "_"+w) || strings.HasPrefix(k, w+"_") {
			return true
		}
	}
	return false
}

// runMetrics collects a run's scalar metrics: numeric parameter outputs
// and the scalars of Metrics artifacts, keyed task.output[.key].
func (s *Server) runMetrics(ctx context.Context, m *runModel) map[string]string {
	out := map[string]string{}
	for i := range m.plan.Tasks { // top level only: a loop's values are lists
		t := m.tasks[i]
		if t == nil {
			continue
		}
		for name, v := range t.Outputs {
			key := t.Name + "." + name
			switch {
			case v.Artifact != nil && v.Artifact.Type == spec.TypeMetrics:
				vals := flatten(unwrapKFP(decodeJSON(v.Artifact.Metadata)), "")
				if s.cfg.Blobs != nil && v.Artifact.Size <= s.cfg.PreviewBytes {
					if rc, err := s.cfg.Blobs.Open(ctx, v.Artifact.Digest); err == nil {
						data, _ := io.ReadAll(io.LimitReader(rc, s.cfg.PreviewBytes))
						rc.Close()
						vals = append(vals, flatten(unwrapKFP(decodeJSON(data)), "")...)
					}
				}
				for _, e := range vals {
					out[key+"."+e.Key] = e.Value
				}
			case v.Artifact == nil && len(v.Param) > 0:
				if f, ok := decodeJSON(v.Param).(float64); ok {
					out[key] = formatNumber(f)
				}
			}
		}
	}
	return out
}

type pipelineRow struct {
	store.Pipeline
	Versions []store.PipelineVersion
}

func (s *Server) pipelinesPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	ps, err := s.cfg.Store.ListPipelines(v.listNamespace())
	if err != nil {
		return err
	}
	var rows []pipelineRow
	for _, p := range ps {
		if !v.sees(p.Namespace) {
			continue
		}
		vs, err := s.cfg.Store.ListPipelineVersions(p.ID)
		if err != nil {
			return err
		}
		rows = append(rows, pipelineRow{Pipeline: p, Versions: vs})
	}
	s.render(w, r, http.StatusOK, "pipelines", v, rows)
	return nil
}

type recurringRow struct {
	store.RecurringRun
	Schedule string
}

func (s *Server) recurringPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	rrs, err := s.cfg.Store.ListRecurringRuns(v.listNamespace())
	if err != nil {
		return err
	}
	var rows []recurringRow
	for _, rr := range rrs {
		if !v.sees(rr.Namespace) {
			continue
		}
		row := recurringRow{RecurringRun: rr, Schedule: "cron " + rr.Cron}
		if rr.Cron == "" {
			row.Schedule = "every " + (time.Duration(rr.IntervalSeconds) * time.Second).String()
		}
		rows = append(rows, row)
	}
	s.render(w, r, http.StatusOK, "recurring", v, rows)
	return nil
}

func urlQuery(s string) string { return url.QueryEscape(s) }
