package ui

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skiffml/skiff/store"
)

// filterKeys are the keys the runs filter box knows.
var filterKeys = []string{"state", "experiment", "name", "pipeline", "namespace", "id", "label"}

// runFilter is a parsed filter box: terms with the same key are
// alternatives (state:failed state:canceled), different keys all apply.
type runFilter map[string][]string

// parseFilter reads the filter box: space-separated key:pattern terms
// (a pattern may be "quoted" and use * as a wildcard) and bare words,
// which match the run name anywhere.
func parseFilter(text string) (runFilter, error) {
	f := runFilter{}
	rest := strings.TrimSpace(text)
	for rest != "" {
		var tok string
		tok, rest = nextToken(rest)
		key, val, ok := strings.Cut(tok, ":")
		if !ok {
			key, val = "name", "*"+tok+"*"
		}
		key = strings.ToLower(key)
		if !slices.Contains(filterKeys, key) {
			return nil, fmt.Errorf("%w: %q: unknown key %q (use %s)", ErrBadFilter, tok, key, strings.Join(filterKeys, ", "))
		}
		val = strings.Trim(val, `"`)
		if val == "" {
			return nil, fmt.Errorf("%w: %q: %s needs a value, as in %s:value", ErrBadFilter, tok, key, key)
		}
		f[key] = append(f[key], val)
		rest = strings.TrimSpace(rest)
	}
	return f, nil
}

// nextToken cuts one term off s; a double-quoted part may hold spaces.
func nextToken(s string) (string, string) {
	inQuote := false
	for i, c := range s {
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == ' ' && !inQuote:
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

// globMatch matches s against pattern, where * is any run of characters;
// case does not matter.
func globMatch(pattern, s string) bool {
	pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// match reports whether the run passes; fields gives a key's values.
func (f runFilter) match(fields func(key string) []string) bool {
	for key, pats := range f {
		vals := fields(key)
		ok := false
		for _, p := range pats {
			for _, v := range vals {
				ok = ok || globMatch(p, v)
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// sortKeys are the runs table's sortable columns.
var sortKeys = []string{"created", "name", "state", "pipeline", "experiment", "duration"}

type runRow struct {
	store.Run
	Experiment string
	Duration   time.Duration
	Params     []string // the chosen parameter columns' values
	Metrics    []string // the chosen metric columns' values
	key        string   // the sort column's value, as a sortable string
}

type runsData struct {
	Query, Sort   string
	Desc          bool
	Rows          []runRow
	ParamCols     []string
	Next          string // URL of the next page; "" on the last
	First         string // URL of the first page, when not on it
	Total         int
	Columns       []sortColumn
	ParamsString  string
	MetricCols    []string
	Extra         []sortColumn // the parameter and metric columns' headers
	MetricsString string
}

type sortColumn struct {
	Key, Label, URL, Arrow string
	Num                    bool // a metric column: right-aligned
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	q := r.URL.Query()
	d := runsData{Query: q.Get("q"), Sort: "created", Desc: true, ParamsString: q.Get("params"), MetricsString: q.Get("metrics")}
	d.ParamCols, d.MetricCols = splitList(d.ParamsString), splitList(d.MetricsString)
	if srt := q.Get("sort"); srt != "" {
		d.Desc = strings.HasPrefix(srt, "-")
		d.Sort = strings.TrimPrefix(srt, "-")
		col, name, _ := strings.Cut(d.Sort, ":")
		ok := slices.Contains(sortKeys, d.Sort) ||
			col == "param" && slices.Contains(d.ParamCols, name) || col == "metric" && slices.Contains(d.MetricCols, name)
		if !ok {
			return fmt.Errorf("%w: sort %q: use one of %s, param:NAME or metric:NAME of a shown column, with - for descending",
				errBadRequest, srt, strings.Join(sortKeys, ", "))
		}
	}
	f, err := parseFilter(d.Query)
	if err != nil {
		return err
	}
	rows, err := s.filteredRuns(v, f, d.Sort, d.ParamCols)
	if err != nil {
		return err
	}
	if strings.HasPrefix(d.Sort, "metric:") {
		// sorting by a metric needs every matching run's metrics
		for i := range rows {
			s.fillMetrics(r.Context(), &rows[i], d.MetricCols, d.Sort)
		}
	}
	d.Total = len(rows)
	slices.SortStableFunc(rows, func(a, b runRow) int { return rowOrder(a.key, a.ID, b.key, b.ID, d.Desc) })
	if after := q.Get("after"); after != "" {
		key, id, err := decodeCursor(after)
		if err != nil {
			return err
		}
		i, _ := slices.BinarySearchFunc(rows, [2]string{key, id}, func(row runRow, c [2]string) int {
			return rowOrder(row.key, row.ID, c[0], c[1], d.Desc)
		})
		for i < len(rows) && rows[i].key == key && rows[i].ID == id {
			i++
		}
		rows = rows[i:]
		d.First = pageURL(q, "")
	}
	if len(rows) > s.cfg.PageSize {
		last := rows[s.cfg.PageSize-1]
		d.Next = pageURL(q, encodeCursor(last.key, last.ID))
		rows = rows[:s.cfg.PageSize]
	}
	if len(d.MetricCols) > 0 && !strings.HasPrefix(d.Sort, "metric:") {
		for i := range rows {
			s.fillMetrics(r.Context(), &rows[i], d.MetricCols, "")
		}
	}
	d.Rows = rows
	for _, k := range sortKeys {
		d.Columns = append(d.Columns, sortColumnOf(q, d, k, strings.ToUpper(k[:1])+k[1:], k == "created" || k == "duration"))
	}
	for _, p := range d.ParamCols {
		d.Extra = append(d.Extra, sortColumnOf(q, d, "param:"+p, p, false))
	}
	for _, m := range d.MetricCols {
		c := sortColumnOf(q, d, "metric:"+m, m, true)
		c.Num = true
		d.Extra = append(d.Extra, c)
	}
	s.render(w, r, http.StatusOK, "runs", v, d)
	return nil
}

// sortColumnOf is a column header that sorts by k (descending first when
// descFirst), or flips the order when the page is sorted by k.
func sortColumnOf(q url.Values, d runsData, k, label string, descFirst bool) sortColumn {
	c := sortColumn{Key: k, Label: label}
	nq := url.Values{}
	for key, vals := range q {
		nq[key] = vals
	}
	nq.Del("after")
	next := k
	if k == d.Sort {
		c.Arrow = "↑"
		if d.Desc {
			c.Arrow = "↓"
		} else {
			next = "-" + k
		}
	} else if descFirst {
		next = "-" + k
	}
	nq.Set("sort", next)
	c.URL = "/runs?" + nq.Encode()
	return c
}

// splitList reads a comma-separated list of names.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// fillMetrics sets row's metric columns (and, when sorting by metric
// column sortBy, its sort key).
func (s *Server) fillMetrics(ctx context.Context, row *runRow, cols []string, sortBy string) {
	all := s.metricsOf(ctx, row.Run)
	row.Metrics = row.Metrics[:0]
	for _, c := range cols {
		val := pickMetric(all, c)
		row.Metrics = append(row.Metrics, val)
		if sortBy == "metric:"+c {
			row.key = valueKey(val)
		}
	}
}

// pickMetric is metric name of a run: the exact key (task.output.key) or
// else the first key ending in "."+name; "" when there is none.
func pickMetric(all map[string]string, name string) string {
	if v, ok := all[name]; ok {
		return v
	}
	for _, k := range sortedKeys(all) {
		if strings.HasSuffix(k, "."+name) {
			return all[k]
		}
	}
	return ""
}

// missingKey is the sort key of a run without a value in the sorted
// column: such runs come last either way.
const missingKey = "~"

// rowOrder orders two rows by sort key and id (descending when desc),
// runs without a value last.
func rowOrder(ak, aid, bk, bid string, desc bool) int {
	if am, bm := ak == missingKey, bk == missingKey; am != bm {
		if am {
			return 1
		}
		return -1
	}
	c := cmp.Or(strings.Compare(ak, bk), strings.Compare(aid, bid))
	if desc {
		return -c
	}
	return c
}

// valueKey is a sortable string of a column's value: numbers in numeric
// order before any text, an empty value last.
func valueKey(v string) string {
	if v == "" {
		return missingKey
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		b := math.Float64bits(f)
		if f < 0 {
			b = ^b
		} else {
			b |= 1 << 63
		}
		return fmt.Sprintf("0%016x", b)
	}
	return "1" + strings.ToLower(v)
}

// filteredRuns reads the viewer's runs once and keeps those f matches.
func (s *Server) filteredRuns(v *viewer, f runFilter, sortBy string, params []string) ([]runRow, error) {
	runs, err := s.cfg.Store.ListRunsBy(store.RunFilter{Namespace: v.listNamespace()})
	if err != nil {
		return nil, err
	}
	exps, err := s.cfg.Store.ListExperiments(v.listNamespace())
	if err != nil {
		return nil, err
	}
	expName := make(map[string]string, len(exps))
	for _, e := range exps {
		expName[e.ID] = e.Name
	}
	now := s.now()
	rows := make([]runRow, 0, len(runs))
	for _, run := range runs {
		if !v.sees(store.RunNamespace(run)) {
			continue
		}
		row := runRow{Run: run, Experiment: expName[run.ExperimentID], Duration: runDuration(run, now)}
		ok := f.match(func(key string) []string {
			switch key {
			case "state":
				return []string{run.State.String()}
			case "experiment":
				return []string{row.Experiment, run.ExperimentID}
			case "name":
				return []string{run.Name}
			case "pipeline":
				return []string{run.PipelineName}
			case "namespace":
				return []string{store.RunNamespace(run)}
			case "id":
				return []string{run.ID}
			case "label": // label:team=vision, label:team=* or label:team
				return s.labelTerms(run)
			}
			return nil
		})
		if !ok {
			continue
		}
		for _, p := range params {
			val := ""
			if raw, ok := run.Params[p]; ok {
				val = compactJSON(raw)
			}
			row.Params = append(row.Params, val)
			if sortBy == "param:"+p {
				row.key = valueKey(strings.Trim(val, `"`))
			}
		}
		if !strings.Contains(sortBy, ":") {
			row.key = sortKey(row, sortBy)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func runDuration(r store.Run, now time.Time) time.Duration {
	switch {
	case r.StartedAt.IsZero():
		return 0
	case r.FinishedAt.IsZero():
		return now.Sub(r.StartedAt)
	}
	return r.FinishedAt.Sub(r.StartedAt)
}

func sortKey(row runRow, by string) string {
	switch by {
	case "name":
		return strings.ToLower(row.Name)
	case "state":
		return row.State.String()
	case "pipeline":
		return strings.ToLower(row.PipelineName)
	case "experiment":
		return strings.ToLower(row.Experiment)
	case "duration":
		return fmt.Sprintf("%020d", row.Duration)
	}
	return row.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000000")
}

func encodeCursor(key, id string) string {
	b, _ := json.Marshal([2]string{key, id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (string, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c [2]string
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: after: not a page cursor of this list", errBadRequest)
	}
	return c[0], c[1], nil
}

func pageURL(q url.Values, after string) string {
	nq := url.Values{}
	for k, v := range q {
		nq[k] = v
	}
	nq.Del("after")
	if after != "" {
		nq.Set("after", after)
	}
	return "/runs?" + nq.Encode()
}

// labelTerms are a run's labels as the filter box matches them: k=v, and
// k alone (label:k asks for the label whatever its value).
func (s *Server) labelTerms(run store.Run) []string {
	if run.RequestID == "" {
		return nil
	}
	meta, err := s.cfg.Store.RunMetaFor(run.RequestID)
	if err != nil {
		return nil
	}
	out := make([]string, 0, 2*len(meta.Labels))
	for k, v := range meta.Labels {
		out = append(out, k+"="+v, k)
	}
	return out
}
