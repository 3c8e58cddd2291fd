package ui

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
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
	Cached     bool
	Href       string
	Selected   bool
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
	tasks, err := s.cfg.Store.Tasks(run.ID)
	if err != nil {
		return nil, err
	}
	return newRunModel(run, tasks)
}

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
	order := []string{"FAILED", "RUNNING", "CANCELING", "CANCELED", "PENDING", "SUCCEEDED", "CACHED", "SKIPPED"}
	if i := slices.Index(order, st); i >= 0 {
		return i
	}
	return len(order)
}

func taskState(t *store.Task) string {
	if t == nil {
		return "PENDING"
	}
	return t.State.String()
}

// layout returns the plan's layout, cached by the plan's digest.
func (s *Server) layout(m *runModel) (*Layout, error) {
	sum := sha256.Sum256(m.run.Plan)
	key := string(sum[:])
	s.layoutMu.Lock()
	l, ok := s.layouts[key]
	s.layoutMu.Unlock()
	if ok {
		return l, nil
	}
	g := planGraph(m.plan)
	l, err := LayoutDAG(g, DefaultLayoutConfig())
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

// graph draws the run's top level at l's positions.
func (m *runModel) graph(l *Layout, selected int) graphView {
	cfg := DefaultLayoutConfig()
	const pad = 12
	gv := graphView{Width: l.Width, Height: l.Height,
		ViewBox:  fmt.Sprintf("%d %d %.0f %.0f", -pad, -pad, l.Width+2*pad, l.Height+2*pad),
		SVGWidth: fmt.Sprintf("%.0f", l.Width+2*pad), SVGHeight: fmt.Sprintf("%.0f", l.Height+2*pad)}
	for i := range m.plan.Tasks {
		pt := &m.plan.Tasks[i]
		t := m.tasks[i]
		n := nodeView{Index: i, Name: pt.Name, X: l.Pos[i].X, Y: l.Pos[i].Y, W: float64(cfg.NodeWidth), H: float64(cfg.NodeHeight),
			State: taskState(t), Kind: "task", Href: fmt.Sprintf("/runs/%s?task=%d", m.run.ID, i), Selected: i == selected}
		if t != nil && t.Cached() {
			n.Cached = true
		}
		if pt.IsGroup() {
			n.Kind = "group"
			if pt.ParallelFor != nil {
				n.Kind = "loop"
			}
			n.Counts, n.Total = m.counts(i)
			n.Href = fmt.Sprintf("/runs/%s?group=%d", m.run.ID, i)
		}
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
	l, err := s.layout(m)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	selected := -1
	d := runPageData{Run: m.run, Duration: runDuration(m.run, s.now()), Final: m.run.State.Final(), CanEdit: v.CanEdit()}
	d.CanCancel = d.CanEdit && !d.Final
	d.CanRetry = d.CanEdit && (m.run.State == spec.RunFailed || m.run.State == spec.RunCanceled)
	if e, err := s.cfg.Store.GetExperiment(m.run.ExperimentID); err == nil {
		d.Experiment = e.Name
	}
	for _, k := range sortedKeys(m.run.Params) {
		d.Params = append(d.Params, kv{k, compactJSON(m.run.Params[k])})
	}
	if ts := q.Get("task"); ts != "" {
		i, err := strconv.Atoi(ts)
		if err != nil || m.tasks[i] == nil {
			return fmt.Errorf("%w: task %q of run %s", ErrNotFound, ts, m.run.ID)
		}
		d.Task = m.taskPanel(i, s.now())
		selected = i
		if p, ok := m.place[i]; ok {
			selected = m.topLevel(p.x.Task)
		}
	}
	if gs := q.Get("group"); gs != "" {
		i, err := strconv.Atoi(gs)
		if err != nil || !m.groups[i] && m.planTask[i] == nil {
			return fmt.Errorf("%w: group %q of run %s", ErrNotFound, gs, m.run.ID)
		}
		page, _ := strconv.Atoi(q.Get("page"))
		d.Group = m.groupPanel(i, page)
		selected = m.topLevel(i)
	}
	d.Graph = m.graph(l, selected)
	s.render(w, r, http.StatusOK, "run", v, d)
	return nil
}

// topLevel is the top-level task that holds task i.
func (m *runModel) topLevel(i int) int {
	for {
		p, ok := m.place[i]
		if !ok {
			return i
		}
		i = p.x.Task
	}
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
	for i := range m.plan.Tasks {
		n := liveNode{State: taskState(m.tasks[i])}
		if m.plan.Tasks[i].IsGroup() {
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
