package ui

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// taskPanel is the side panel of one task.
type taskPanel struct {
	Index      int
	Name       string
	State      string
	Error      string
	Started    time.Time
	Duration   time.Duration
	Inputs     []ioRow
	Outputs    []ioRow
	Attempts   []attemptRow
	CachedFrom string // a link to the run and task the result came from
	CachedText string
	LogURL     string // "" when the task has not run
	Follow     bool
	Group      bool
	GroupURL   string
	Command    string
	Executor   string
	Waiting    string // why a PENDING task has not started
}

// ioRow is one input or output of a task.
type ioRow struct {
	Name, Type, Source, Value string
	Href                      string // a task or artifact page
	Artifact                  *spec.ArtifactRef
	Download                  string
}

type attemptRow struct {
	N         int           `json:"n"`
	Executor  string        `json:"executor"`
	State     string        `json:"state"`
	Started   time.Time     `json:"-"`
	Duration  time.Duration `json:"-"`
	Took      string        `json:"took"`
	Error     string        `json:"reason"`
	Execution string        `json:"-"`
}

// attemptRows are task t's attempts as the panel lists them; a running
// attempt's duration counts up to now.
func attemptRows(t *store.Task, now time.Time) []attemptRow {
	var out []attemptRow
	for _, a := range t.Attempts {
		row := attemptRow{N: a.N, Executor: a.Executor, State: a.State.String(), Started: a.StartedAt, Error: a.Error, Execution: a.ExecutionID}
		switch {
		case a.StartedAt.IsZero():
		case !a.FinishedAt.IsZero():
			row.Duration = a.FinishedAt.Sub(a.StartedAt)
		case !a.State.Final():
			row.Duration = now.Sub(a.StartedAt)
		}
		row.Took = formatDuration(row.Duration)
		out = append(out, row)
	}
	return out
}

func (m *runModel) taskPanel(i int, now time.Time) *taskPanel {
	t := m.tasks[i]
	p := &taskPanel{Index: i, Name: t.Name, State: t.State.String(), Error: t.Error, Started: t.StartedAt, Group: m.groups[i]}
	switch {
	case t.StartedAt.IsZero():
	case !t.FinishedAt.IsZero():
		p.Duration = t.FinishedAt.Sub(t.StartedAt)
	case !t.State.Final():
		p.Duration = now.Sub(t.StartedAt) // so far
	}
	if p.Group {
		p.GroupURL = fmt.Sprintf("/runs/%s?group=%d", m.run.ID, i)
	}
	pt := m.planTask[i]
	if pt != nil {
		p.Command = strings.Join(append(slices.Clone(pt.Command), pt.Args...), " ")
		p.Executor = pt.Executor
		for _, in := range pt.Inputs {
			p.Inputs = append(p.Inputs, m.inputRow(i, in))
		}
	}
	for _, name := range sortedKeys(t.Outputs) {
		p.Outputs = append(p.Outputs, m.valueRow(i, name, t.Outputs[name]))
	}
	p.Attempts = attemptRows(t, now)
	p.Waiting = m.waitReason(i, now)
	if t.Cached() {
		p.CachedText = t.CachedFrom
		if run, task, ok := parseExecutionID(t.CachedFrom); ok {
			p.CachedFrom = fmt.Sprintf("/runs/%s?task=%d", run, task)
		}
	}
	if len(t.Attempts) > 0 || !p.Group && !t.State.Final() {
		// a task yet to start gets an empty log that fills when it does
		p.LogURL = fmt.Sprintf("/_api/apis/skiff/v1/runs/%s/tasks/%d/logs", m.run.ID, i)
		p.Follow = !t.State.Final()
	}
	return p
}

// parseExecutionID splits RUN-TASK-ATTEMPT (executors.ExecutionID).
func parseExecutionID(id string) (string, int, bool) {
	a := strings.LastIndexByte(id, '-')
	if a <= 0 {
		return "", 0, false
	}
	b := strings.LastIndexByte(id[:a], '-')
	if b <= 0 {
		return "", 0, false
	}
	task, err := strconv.Atoi(id[b+1 : a])
	return id[:b], task, err == nil
}

// inputRow says where input in of task i comes from and, when known,
// its value.
func (m *runModel) inputRow(i int, in spec.Input) ioRow {
	row := ioRow{Name: in.Name, Type: string(in.Type)}
	switch {
	case in.From != nil:
		row.Source = in.From.Task + "." + in.From.Output
		if up, ok := m.upstream(i, in.From); ok {
			row.Href = fmt.Sprintf("/runs/%s?task=%d", m.run.ID, up)
			if t := m.tasks[up]; t != nil {
				if v, ok := t.Outputs[in.From.Output]; ok {
					vr := m.valueRow(up, in.From.Output, v)
					row.Value, row.Artifact, row.Download = vr.Value, vr.Artifact, vr.Download
					if vr.Artifact != nil {
						row.Href = vr.Href
					}
				}
			}
		}
	case in.Param != "":
		row.Source = "parameter " + in.Param
		p, nested := m.place[i]
		switch {
		case !nested:
			if v, ok := m.run.Params[in.Param]; ok {
				row.Value = shortJSON(v)
			}
		case m.isItemParam(p.x.Task, in.Param):
			row.Source = "loop item " + in.Param
			row.Value, _ = m.loopItem(p.x.Task, p.k)
		}
	case in.UpstreamStatus:
		row.Source = "upstream status"
	default:
		row.Source = "value"
		row.Value = shortJSON(in.Value)
	}
	if in.Field != "" {
		row.Source += " → " + in.Field
	}
	return row
}

// upstream is the task index that ref names, seen from task i: a
// top-level task, or a sibling in the same iteration.
func (m *runModel) upstream(i int, ref *spec.Ref) (int, bool) {
	p, ok := m.place[i]
	if !ok {
		return ref.TaskIndex, ref.TaskIndex >= 0 && ref.TaskIndex < len(m.plan.Tasks)
	}
	j := slices.Index(p.x.Names, ref.Task)
	if j < 0 {
		return 0, false
	}
	return p.x.Base + p.k*len(p.x.Names) + j, true
}

// valueRow renders output name of task i.
func (m *runModel) valueRow(i int, name string, v spec.Value) ioRow {
	row := ioRow{Name: name}
	base := fmt.Sprintf("/runs/%s/tasks/%d/outputs/%s", m.run.ID, i, name)
	switch {
	case v.Artifact != nil:
		row.Artifact = v.Artifact
		row.Type = string(v.Artifact.Type)
		row.Value = formatBytes(v.Artifact.Size)
		row.Href = base
		row.Download = base + "/raw?download=1"
	case v.IsArtifactList():
		row.Type = "artifact list"
		row.Value = fmt.Sprintf("%d artifacts", len(v.Artifacts))
	default:
		row.Type = "parameter"
		row.Value = shortJSON(v.Param)
	}
	return row
}

// groupPanel lists a group's iterations (loop) or tasks, failed first,
// a page at a time.
type groupPanel struct {
	Index      int
	Name       string
	Loop       bool
	Iterations []iterationRow
	Counts     []stateCount
	Total      int
	Page       int
	Pages      int
	PrevURL    string
	NextURL    string
}

type iterationRow struct {
	K     int
	State string
	Tasks []taskLink
}

type taskLink struct {
	Index       int
	Name, State string
	Href        string
}

// groupPageSize is how many iterations a group panel shows at once.
const groupPageSize = 50

func (m *runModel) groupPanel(g, page int) *groupPanel {
	p := &groupPanel{Index: g}
	if t := m.tasks[g]; t != nil {
		p.Name = t.Name
	} else if pt := m.planTask[g]; pt != nil {
		p.Name = pt.Name
	}
	p.Counts, p.Total = m.counts(g)
	// rank every iteration by its worst state, then build rows for the
	// page only: a 10,000-iteration loop costs one pass
	type iter struct {
		x    store.Expansion
		k    int
		rank int
	}
	var iters []iter
	for _, x := range m.run.Expansions {
		if x.Task != g {
			continue
		}
		p.Loop = x.Loop
		for k := range x.Count {
			rank := len(stateOrder)
			for j := range x.Names {
				rank = min(rank, stateRank(taskState(m.tasks[x.Base+k*len(x.Names)+j])))
			}
			iters = append(iters, iter{x, k, rank})
		}
	}
	slices.SortStableFunc(iters, func(a, b iter) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.k, b.k))
	})
	p.Pages = max(1, (len(iters)+groupPageSize-1)/groupPageSize)
	p.Page = min(max(page, 1), p.Pages)
	lo := (p.Page - 1) * groupPageSize
	for _, it := range iters[lo:min(lo+groupPageSize, len(iters))] {
		row := iterationRow{K: it.k}
		for j, name := range it.x.Names {
			i := it.x.Base + it.k*len(it.x.Names) + j
			st := taskState(m.tasks[i])
			row.Tasks = append(row.Tasks, taskLink{Index: i, Name: name, State: st, Href: fmt.Sprintf("/runs/%s?task=%d", m.run.ID, i)})
			if row.State == "" || stateRank(st) < stateRank(row.State) {
				row.State = st
			}
		}
		p.Iterations = append(p.Iterations, row)
	}
	link := func(n int) string { return fmt.Sprintf("/runs/%s?group=%d&page=%d", m.run.ID, g, n) }
	if p.Page > 1 {
		p.PrevURL = link(p.Page - 1)
	}
	if p.Page < p.Pages {
		p.NextURL = link(p.Page + 1)
	}
	return p
}

// taskOf returns task i of the model, or an error naming it.
func (m *runModel) taskOf(s string) (*store.Task, error) {
	i, err := strconv.Atoi(s)
	if err != nil || m.tasks[i] == nil {
		return nil, fmt.Errorf("%w: task %q of run %s", ErrNotFound, s, m.run.ID)
	}
	return m.tasks[i], nil
}

// isItemParam reports whether param is loop g's item.
func (m *runModel) isItemParam(g int, param string) bool {
	pt := m.planTask[g]
	return pt != nil && pt.ParallelFor != nil && pt.ParallelFor.ItemParam == param
}
