package ui

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// graphView is a run's DAG as the page draws it.
type graphView struct {
	Width, Height       float64
	ViewBox             string
	SVGWidth, SVGHeight string
	Nodes               []nodeView
	Edges               []string // SVG path data
}

// nodeView is one top-level task of the plan; a group (loop,
// sub-pipeline, condition) is one node with counts by state.
type nodeView struct {
	Index      int
	Name       string
	X, Y, W, H float64
	State      string
	Kind       string // "task", "loop" or "group"
	Counts     []stateCount
	Total      int
	Summary    string        // a group's line of counts
	Progress   []progressSeg // a group's progress bar
	Cached     bool
	Href       string
	Selected   bool
}

// progressSeg is one state's share of a group node's progress bar.
type progressSeg struct {
	X, Y, W float64
	State   string
}

// Where a group node's progress bar sits, relative to the node.
const (
	progressLeft  = 16.0
	progressRight = 12.0
)

// nodeSummary is a group node's one line: its steps and its most telling
// state ("10000 steps · 21 failed"); the tooltip has every count.
func nodeSummary(counts []stateCount, total int) string {
	s := fmt.Sprintf("%d steps", total)
	if len(counts) > 0 {
		s += fmt.Sprintf(" · %d %s", counts[0].N, shortState(counts[0].State))
	}
	return s
}

// shortState is a state's word in a node's summary.
func shortState(st string) string {
	switch st {
	case "SUCCEEDED":
		return "done"
	case "PENDING":
		return "waiting"
	}
	return strings.ToLower(st)
}

// progress splits a node's progress bar by state, in display order.
func progress(n *nodeView) []progressSeg {
	if n.Total == 0 {
		return nil
	}
	width := n.W - progressLeft - progressRight
	x := n.X + progressLeft
	var out []progressSeg
	for _, c := range n.Counts {
		w := width * float64(c.N) / float64(n.Total)
		out = append(out, progressSeg{X: x, Y: n.Y + n.H - 5, W: w, State: c.State})
		x += w
	}
	return out
}

type stateCount struct {
	State string `json:"state"`
	N     int    `json:"n"`
}

// runModel is a run with its plan and tasks, indexed for the page.
type runModel struct {
	run   store.Run
	plan  *spec.Plan
	tasks map[int]*store.Task
	// members are each group's descendant tasks (nested groups included).
	members map[int][]int
	groups  map[int]bool
	// place says where an expanded task sits: its expansion and iteration.
	place map[int]placement
	// planTask is each task's definition in the plan (or a body).
	planTask map[int]*spec.Task
}

type placement struct {
	x store.Expansion
	k int
}

func (s *Server) loadRun(id string, v *viewer) (*runModel, error) {
	run, err := s.cfg.Store.GetRun(id)
	if err != nil || !v.sees(store.RunNamespace(run)) {
		return nil, fmt.Errorf("%w: run %s", ErrNotFound, id)
	}
	key := fmt.Sprintf("%s/%s/%d/%s", run.ID, run.State, run.TaskCount, run.FinishedAt.Format(time.RFC3339Nano))
	if run.State.Final() {
		s.modelMu.Lock()
		m, ok := s.models[key]
		s.modelMu.Unlock()
		if ok {
			return m, nil
		}
	}
	tasks, err := s.cfg.Store.Tasks(run.ID)
	if err != nil {
		return nil, err
	}
	m, err := newRunModel(run, tasks)
	if err == nil && run.State.Final() {
		// a final run's tasks no longer change (a retry makes it
		// non-final, and final again with a new end): keep the model
		s.modelMu.Lock()
		if len(s.models) >= maxCachedModels {
			clear(s.models)
		}
		s.models[key] = m
		s.modelMu.Unlock()
	}
	return m, err
}

// maxCachedModels bounds the final runs whose models the server keeps
// (a 10,000-task run's is a few MB).
const maxCachedModels = 16

// newRunModel indexes a run and its tasks. The model is read-only once
// built: the server shares final runs' models between requests.
func newRunModel(run store.Run, tasks []store.Task) (*runModel, error) {
	m := &runModel{run: run, plan: &spec.Plan{}, tasks: make(map[int]*store.Task, len(tasks)),
		members: map[int][]int{}, groups: store.Groups(run), place: map[int]placement{}, planTask: map[int]*spec.Task{}}
	if err := json.Unmarshal(run.Plan, m.plan); err != nil {
		return nil, fmt.Errorf("run %s: plan: %w", run.ID, err)
	}
	for i := range tasks {
		m.tasks[tasks[i].Index] = &tasks[i]
	}
	for i := range m.plan.Tasks {
		m.planTask[i] = &m.plan.Tasks[i]
	}
	children := map[int][]store.Expansion{}
	for _, x := range run.Expansions {
		children[x.Task] = append(children[x.Task], x)
		parent := m.planTask[x.Task]
		for k := range x.Count {
			for j, name := range x.Names {
				i := x.Base + k*len(x.Names) + j
				m.place[i] = placement{x: x, k: k}
				if parent != nil && parent.Body != nil {
					if bi := parent.Body.TaskIndex(name); bi >= 0 {
						m.planTask[i] = &parent.Body.Tasks[bi]
					}
				}
			}
		}
	}
	var collect func(g int, into *[]int)
	collect = func(g int, into *[]int) {
		for _, x := range children[g] {
			for i := x.Base; i < x.Base+x.Count*len(x.Names); i++ {
				*into = append(*into, i)
				collect(i, into)
			}
		}
	}
	for g := range m.groups {
		var ms []int
		collect(g, &ms)
		m.members[g] = ms
	}
	return m, nil
}

// counts tallies a group's descendant steps (not sub-groups) by state.
func (m *runModel) counts(g int) ([]stateCount, int) {
	by := map[string]int{}
	total := 0
	for _, i := range m.members[g] {
		if m.groups[i] {
			continue
		}
		if t := m.tasks[i]; t != nil {
			by[t.State.String()]++
			total++
		}
	}
	out := make([]stateCount, 0, len(by))
	for st, n := range by {
		out = append(out, stateCount{State: st, N: n})
	}
	slices.SortFunc(out, func(a, b stateCount) int { return cmp.Compare(stateRank(a.State), stateRank(b.State)) })
	return out, total
}

// stateRank orders states for display: trouble first.
func stateRank(st string) int {
	if i := slices.Index(stateOrder, st); i >= 0 {
		return i
	}
	return len(stateOrder)
}

var stateOrder = []string{"FAILED", "RUNNING", "CANCELING", "CANCELED", "PENDING", "SUCCEEDED", "CACHED", "SKIPPED"}

func taskState(t *store.Task) string {
	if t == nil {
		return "PENDING"
	}
	return t.State.String()
}

// scope is what a DAG drawing shows: the run's top level, or one
// instance (a loop iteration) of a group.
type scope struct {
	Group int // -1 = the top level
	Iter  int
	plan  *spec.Plan
	base  int // absolute index of the instance's first task
	names []string
}

// topScope is the run's top level.
func (m *runModel) topScope() scope { return scope{Group: -1, plan: m.plan} }

// groupScope is instance k of group g, or false when g has not expanded
// (or has no instance k).
func (m *runModel) groupScope(g, k int) (scope, bool) {
	pt := m.planTask[g]
	if pt == nil || pt.Body == nil {
		return scope{}, false
	}
	for _, x := range m.run.Expansions {
		if x.Task == g && k >= 0 && k < x.Count {
			return scope{Group: g, Iter: k, plan: pt.Body, base: x.Base + k*len(x.Names), names: x.Names}, true
		}
	}
	return scope{}, false
}

// abs is the run's task index of the scope's plan task j, or -1.
func (sc scope) abs(j int) int {
	if sc.Group < 0 {
		return j
	}
	if k := indexOf(sc.names, sc.plan.Tasks[j].Name); k >= 0 {
		return sc.base + k
	}
	return -1
}

// layout returns the layout of plan p, cached by p's digest.
func (s *Server) layout(p *spec.Plan) (*Layout, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	key := string(sum[:])
	s.layoutMu.Lock()
	l, ok := s.layouts[key]
	s.layoutMu.Unlock()
	if ok {
		return l, nil
	}
	l, err = LayoutDAG(planGraph(p), DefaultLayoutConfig())
	if err != nil {
		return nil, err
	}
	s.layoutMu.Lock()
	if len(s.layouts) >= 256 {
		clear(s.layouts)
	}
	s.layouts[key] = l
	s.layoutMu.Unlock()
	return l, nil
}

// planGraph is the plan's top level as a graph: one node per task.
func planGraph(p *spec.Plan) Graph {
	g := Graph{Nodes: len(p.Tasks)}
	for i, t := range p.Tasks {
		for _, d := range t.Deps {
			g.Edges = append(g.Edges, [2]int{d, i})
		}
	}
	return g
}

// graph draws the top level at l's positions.
func (m *runModel) graph(l *Layout, selected int) graphView {
	return m.scopeGraph(m.topScope(), l, selected)
}

// scopeGraph draws scope sc at l's positions; nodes carry the run's task
// indices.
func (m *runModel) scopeGraph(sc scope, l *Layout, selected int) graphView {
	return drawGraph(sc.plan, l, func(j int, n *nodeView) {
		i := sc.abs(j)
		if i < 0 {
			return
		}
		t := m.tasks[i]
		n.Index, n.State, n.Selected = i, taskState(t), i == selected
		n.Href = fmt.Sprintf("/runs/%s?task=%d", m.run.ID, i)
		n.Cached = t != nil && t.Cached()
		if n.Kind != "task" {
			n.Counts, n.Total = m.counts(i)
			n.Href = fmt.Sprintf("/runs/%s?group=%d", m.run.ID, i)
			n.Summary, n.Progress = nodeSummary(n.Counts, n.Total), progress(n)
		}
	})
}

// drawGraph draws plan p at l's positions; fill adds each node's run
// facts (state, links).
func drawGraph(p *spec.Plan, l *Layout, fill func(j int, n *nodeView)) graphView {
	cfg := DefaultLayoutConfig()
	const pad = 12
	gv := graphView{Width: l.Width, Height: l.Height,
		ViewBox:  fmt.Sprintf("%d %d %.0f %.0f", -pad, -pad, l.Width+2*pad, l.Height+2*pad),
		SVGWidth: fmt.Sprintf("%.0f", l.Width+2*pad), SVGHeight: fmt.Sprintf("%.0f", l.Height+2*pad)}
	for j := range p.Tasks {
		pt := &p.Tasks[j]
		n := nodeView{Index: j, Name: pt.Name, X: l.Pos[j].X, Y: l.Pos[j].Y, W: float64(cfg.NodeWidth), H: float64(cfg.NodeHeight),
			State: "PENDING", Kind: "task"}
		if pt.IsGroup() {
			n.Kind = "group"
			if pt.ParallelFor != nil {
				n.Kind = "loop"
			}
		}
		fill(j, &n)
		gv.Nodes = append(gv.Nodes, n)
	}
	for _, route := range l.Routes {
		gv.Edges = append(gv.Edges, edgePath(route))
	}
	return gv
}

// edgePath is a smooth vertical path through pts.
func edgePath(pts []Point) string {
	var b strings.Builder
	fmt.Fprintf(&b, "M%.1f,%.1f", pts[0].X, pts[0].Y)
	for i := 1; i < len(pts); i++ {
		a, c := pts[i-1], pts[i]
		my := (a.Y + c.Y) / 2
		fmt.Fprintf(&b, " C%.1f,%.1f %.1f,%.1f %.1f,%.1f", a.X, my, c.X, my, c.X, c.Y)
	}
	return b.String()
}

type runPageData struct {
	Run        store.Run
	Experiment string
	Duration   time.Duration
	Graph      graphView
	Params     []kv
	Task       *taskPanel
	Group      *groupPanel
	Scope      *scopeView // the drawn group instance; nil at the top level
	CanCancel  bool
	CanRetry   bool
	Final      bool
	CanEdit    bool
}

type kv struct{ Key, Value string }

func (s *Server) runPage(w http.ResponseWriter, r *http.Request, v *viewer) error {
	m, err := s.loadRun(r.PathValue("id"), v)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	d := runPageData{Run: m.run, Duration: runDuration(m.run, s.now()), Final: m.run.State.Final(), CanEdit: v.CanEdit()}
	d.CanCancel = d.CanEdit && !d.Final
	d.CanRetry = d.CanEdit && (m.run.State == spec.RunFailed || m.run.State == spec.RunCanceled)
	if e, err := s.cfg.Store.GetExperiment(m.run.ExperimentID); err == nil {
		d.Experiment = e.Name
	}
	for _, k := range sortedKeys(m.run.Params) {
		d.Params = append(d.Params, kv{k, shortJSON(m.run.Params[k])})
	}
	sc, selected, err := m.pageScope(q)
	if err != nil {
		return err
	}
	if ts := q.Get("task"); ts != "" {
		d.Task = m.taskPanel(selected, s.now())
	}
	if gs := q.Get("group"); gs != "" {
		g, _ := strconv.Atoi(gs)
		page, _ := strconv.Atoi(q.Get("page"))
		d.Group = m.groupPanel(g, page)
	}
	l, err := s.layout(sc.plan)
	if err != nil {
		return err
	}
	d.Graph = m.scopeGraph(sc, l, selected)
	d.Scope = m.scopeView(sc)
	s.render(w, r, http.StatusOK, "run", v, d)
	return nil
}

// pageScope reads which part of the DAG a run page draws and which task
// it selects: a task (?task=N) is drawn among its iteration's siblings; a
// group (?group=N) opens its iteration ?iter=K, a sub-pipeline its one
// instance, a loop without ?iter shows among its own siblings.
func (m *runModel) pageScope(q url.Values) (scope, int, error) {
	if ts := q.Get("task"); ts != "" {
		i, err := strconv.Atoi(ts)
		if err != nil || m.tasks[i] == nil {
			return scope{}, 0, fmt.Errorf("%w: task %q of run %s", ErrNotFound, ts, m.run.ID)
		}
		return m.scopeOf(i), i, nil
	}
	if gs := q.Get("group"); gs != "" {
		g, err := strconv.Atoi(gs)
		if err != nil || !m.groups[g] && m.planTask[g] == nil {
			return scope{}, 0, fmt.Errorf("%w: group %q of run %s", ErrNotFound, gs, m.run.ID)
		}
		if is := q.Get("iter"); is != "" {
			k, err := strconv.Atoi(is)
			sc, ok := m.groupScope(g, k)
			if err != nil || !ok {
				return scope{}, 0, fmt.Errorf("%w: iteration %q of group %s", ErrNotFound, is, m.shortName(g))
			}
			return sc, -1, nil
		}
		if pt := m.planTask[g]; pt != nil && pt.ParallelFor == nil {
			if sc, ok := m.groupScope(g, 0); ok {
				return sc, -1, nil
			}
		}
		return m.scopeOf(g), g, nil
	}
	return m.topScope(), -1, nil
}

// scopeOf is the scope that holds task i.
func (m *runModel) scopeOf(i int) scope {
	if p, ok := m.place[i]; ok {
		if sc, ok := m.groupScope(p.x.Task, p.k); ok {
			return sc
		}
	}
	return m.topScope()
}

// scopeView is the bar above a drawn group instance: where it sits
// (links up to the top level) and the neighbouring iterations.
type scopeView struct {
	Crumbs     []crumb
	Prev, Next string
	Of         int    // iterations of the loop
	Query      string // group=G&iter=K, for the live state
	Item       string // the drawn iteration's item, when known
}

type crumb struct{ Text, Href string }

func (m *runModel) scopeView(sc scope) *scopeView {
	if sc.Group < 0 {
		return nil
	}
	sv := &scopeView{Query: fmt.Sprintf("group=%d&iter=%d", sc.Group, sc.Iter)}
	for cur := sc; cur.Group >= 0; {
		pt := m.planTask[cur.Group]
		text := pt.Name
		if pt.ParallelFor != nil {
			text = fmt.Sprintf("%s · iteration %d", pt.Name, cur.Iter)
			if item, ok := m.loopItem(cur.Group, cur.Iter); ok && cur.Group == sc.Group {
				sv.Item = item
			}
		}
		sv.Crumbs = append(sv.Crumbs, crumb{Text: text, Href: fmt.Sprintf("/runs/%s?group=%d&iter=%d", m.run.ID, cur.Group, cur.Iter)})
		cur = m.scopeOf(cur.Group)
	}
	sv.Crumbs = append(sv.Crumbs, crumb{Text: m.plan.Name, Href: "/runs/" + m.run.ID})
	slices.Reverse(sv.Crumbs)
	if m.planTask[sc.Group].ParallelFor != nil {
		link := func(k int) string { return fmt.Sprintf("/runs/%s?group=%d&iter=%d", m.run.ID, sc.Group, k) }
		for _, x := range m.run.Expansions {
			if x.Task == sc.Group {
				sv.Of = x.Count
			}
		}
		if sc.Iter > 0 {
			sv.Prev = link(sc.Iter - 1)
		}
		if sc.Iter+1 < sv.Of {
			sv.Next = link(sc.Iter + 1)
		}
	}
	return sv
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// liveState is what the run page polls when the event stream says
// something changed: the run's state, each node's state and counts.
type liveState struct {
	State string              `json:"state"`
	Final bool                `json:"final"`
	Nodes map[string]liveNode `json:"nodes"`
	Tasks map[string]string   `json:"tasks,omitempty"` // the asked-for tasks' states
	// Panel is the first asked-for task's panel facts, for the open panel.
	Panel *livePanel `json:"panel,omitempty"`
}

// livePanel is what the open task panel refreshes live.
type livePanel struct {
	State    string       `json:"state"`
	Error    string       `json:"error,omitempty"`
	Waiting  string       `json:"waiting,omitempty"`
	Attempts []attemptRow `json:"attempts"`
}

type liveNode struct {
	State  string       `json:"state"`
	Counts []stateCount `json:"counts,omitempty"`
	Total  int          `json:"total,omitempty"`
}

func (s *Server) runState(w http.ResponseWriter, r *http.Request, v *viewer) error {
	m, err := s.loadRun(r.PathValue("id"), v)
	if err != nil {
		return err
	}
	out := liveState{State: m.run.State.String(), Final: m.run.State.Final(), Nodes: map[string]liveNode{}}
	sc := m.topScope()
	if gs := r.URL.Query().Get("group"); gs != "" {
		g, err1 := strconv.Atoi(gs)
		k, err2 := strconv.Atoi(r.URL.Query().Get("iter"))
		var ok bool
		if sc, ok = m.groupScope(g, k); err1 != nil || err2 != nil || !ok {
			return fmt.Errorf("%w: group %q iteration %q", errBadRequest, gs, r.URL.Query().Get("iter"))
		}
	}
	for j := range sc.plan.Tasks {
		i := sc.abs(j)
		if i < 0 {
			continue
		}
		n := liveNode{State: taskState(m.tasks[i])}
		if sc.plan.Tasks[j].IsGroup() {
			n.Counts, n.Total = m.counts(i)
		}
		out.Nodes[strconv.Itoa(i)] = n
	}
	if ts := r.URL.Query().Get("tasks"); ts != "" {
		out.Tasks = map[string]string{}
		for t := range strings.SplitSeq(ts, ",") {
			if i, err := strconv.Atoi(t); err == nil && m.tasks[i] != nil {
				out.Tasks[t] = taskState(m.tasks[i])
				if out.Panel == nil {
					tk := m.tasks[i]
					out.Panel = &livePanel{State: tk.State.String(), Error: tk.Error, Waiting: m.waitReason(i, s.now()), Attempts: attemptRows(tk, s.now())}
				}
			}
		}
	}
	writeJSON(w, out)
	return nil
}
