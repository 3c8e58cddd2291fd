package scheduler

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"pgregory.net/rapid"
)

// groupModel drives a Run whose plan has loops and groups (nested once) and
// checks every decision: no task starts before its deps allow, each task
// ends once, a group ends only after all its body, the parallelism limit
// of every loop holds at every step, and a restart decides nothing new.
type groupModel struct {
	t        *rapid.T
	plan     *spec.Plan
	run      *Run
	state    []spec.TaskState
	outputs  []map[string]spec.Value
	finals   []int
	running  []int
	exps     [][3]int // task, base, count
	canceled bool
	dones    int
	more     bool // ActContinue seen: call Continue
	chunk    int
}

func (m *groupModel) grow(n int) {
	m.state = append(m.state, make([]spec.TaskState, n)...)
	m.outputs = append(m.outputs, make([]map[string]spec.Value, n)...)
	m.finals = append(m.finals, make([]int, n)...)
}

func (m *groupModel) final(i int, s spec.TaskState) {
	m.state[i] = s
	m.finals[i]++
	if m.finals[i] > 1 {
		m.t.Fatalf("task %d (%s) reached a final state twice", i, m.run.Name(i))
	}
}

func (m *groupModel) mayRun(i int) bool {
	ok := true
	iuf := m.run.Task(i).IgnoreUpstreamFailure
	m.run.forDeps(i, func(d int) {
		if iuf && !m.state[d].Final() || !iuf && m.state[d] != spec.TaskSucceeded {
			ok = false
		}
	})
	return ok
}

func (m *groupModel) apply(ds []Decision) {
	t := m.t
	for _, d := range ds {
		if m.dones > 0 {
			t.Fatalf("decision %v after done", d)
		}
		i := d.Task
		switch d.Action {
		case ActStart, ActExpand:
			if m.canceled {
				t.Fatalf("%v after Cancel", d)
			}
			if m.state[i] != spec.TaskPending || !m.mayRun(i) {
				t.Fatalf("%v: state %s, may run %v", d, m.state[i], m.mayRun(i))
			}
			if g, _ := m.run.Group(i); g >= 0 && m.state[g] != spec.TaskRunning {
				t.Fatalf("%v: its group %d is %s", d, g, m.state[g])
			}
			m.state[i] = spec.TaskRunning
			if d.Action == ActStart {
				if m.run.Task(i).IsGroup() {
					t.Fatalf("start of group %d", i)
				}
				m.running = append(m.running, i)
				break
			}
			if d.Base != len(m.state) {
				t.Fatalf("%v: the run has %d tasks", d, len(m.state))
			}
			if want := m.itemsOf(i); d.Count != want {
				t.Fatalf("%v: want %d instances", d, want)
			}
			m.grow(d.Count * len(m.run.Task(i).Body.Tasks))
			m.exps = append(m.exps, [3]int{i, d.Base, d.Count})
		case ActGroupDone:
			if m.state[i] != spec.TaskRunning || !m.run.Task(i).IsGroup() {
				t.Fatalf("%v: state %s", d, m.state[i])
			}
			for j := range m.state {
				if g, _ := m.run.Group(j); g == i && !m.state[j].Final() {
					t.Fatalf("%v while body task %d is %s", d, j, m.state[j])
				}
			}
			m.final(i, d.State)
			m.outputs[i] = d.Outputs
		case ActSkip:
			m.final(i, spec.TaskSkipped)
		case ActFail:
			m.final(i, spec.TaskFailed)
		case ActCancel:
			if !m.canceled {
				t.Fatalf("%v without Cancel", d)
			}
			m.final(i, spec.TaskCanceled)
		case ActStop:
			if !m.canceled || m.state[i] != spec.TaskRunning {
				t.Fatalf("%v: canceled %v, state %s", d, m.canceled, m.state[i])
			}
		case ActDone:
			m.dones++
		case ActContinue:
			m.more = true
		default:
			t.Fatalf("unknown decision %v", d)
		}
	}
	m.checkParallelism()
	for i, s := range m.state {
		if got := m.run.State(i); got != s {
			t.Fatalf("State(%d) = %s, model says %s", i, got, s)
		}
	}
}

// itemsOf is the number of items of loop i (literal lists only here).
func (m *groupModel) itemsOf(i int) int {
	l := m.run.Task(i).ParallelFor
	if l == nil {
		return 1
	}
	var items []any
	if err := json.Unmarshal(l.Items.Value, &items); err != nil {
		m.t.Fatalf("items: %v", err)
	}
	return len(items)
}

// checkParallelism counts, per loop, the iterations with a task that left
// PENDING but is not final.
func (m *groupModel) checkParallelism() {
	busy := map[int]map[int]bool{}
	for i, s := range m.state {
		if s == spec.TaskPending || s.Final() {
			continue
		}
		g, k := m.run.Group(i)
		if g < 0 {
			continue
		}
		if busy[g] == nil {
			busy[g] = map[int]bool{}
		}
		busy[g][k] = true
	}
	for g, ks := range busy {
		if l := m.run.Task(g).ParallelFor; l != nil && l.Parallelism > 0 && len(ks) > l.Parallelism {
			m.t.Fatalf("loop %s has %d iterations active, parallelism %d", m.run.Name(g), len(ks), l.Parallelism)
		}
	}
}

func (m *groupModel) restart() {
	m.run = New(m.plan, nil)
	m.run.chunk = m.chunk
	for _, x := range m.exps {
		if err := m.run.RestoreExpansion(x[0], x[1], x[2]); err != nil {
			m.t.Fatalf("RestoreExpansion: %v", err)
		}
	}
	for i, s := range m.state {
		m.run.Restore(i, s, m.outputs[i])
	}
	if m.canceled {
		m.apply(m.run.Cancel())
	}
	ds := m.run.Start()
	if m.more {
		// Iterations left for Continue are activated by Start instead.
		m.more = false
		m.apply(ds)
		return
	}
	if len(ds) != 0 {
		m.t.Fatalf("Start after restart decided %v", ds)
	}
}

// randomBody is 1-3 tasks in a chain or side by side, maybe with a nested
// group when depth allows.
func randomBody(t *rapid.T, name string, depth int) *spec.Plan {
	n := rapid.IntRange(1, 3).Draw(t, "body")
	b := &spec.Plan{Name: name}
	for j := 0; j < n; j++ {
		var tk spec.Task
		if depth > 0 && rapid.IntRange(0, 3).Draw(t, "nested") == 0 {
			tk = randomGroup(t, fmt.Sprintf("g%d", j), depth-1)
		} else {
			tk = task(fmt.Sprintf("b%d", j))
		}
		if j > 0 && rapid.Bool().Draw(t, "chain") {
			tk.After = []string{b.Tasks[j-1].Name}
		}
		b.Tasks = append(b.Tasks, tk)
	}
	return b
}

func randomGroup(t *rapid.T, name string, depth int) spec.Task {
	g := spec.Task{Name: name, Body: randomBody(t, name, depth)}
	if rapid.IntRange(0, 2).Draw(t, "loop") > 0 {
		n := rapid.IntRange(0, 6).Draw(t, "items")
		items := make([]int, n)
		for k := range items {
			items[k] = k
		}
		raw, _ := json.Marshal(items)
		g.ParallelFor = &spec.Loop{Items: spec.Input{Type: spec.TypeList, Value: raw}, ItemParam: "item",
			Parallelism: rapid.IntRange(0, 3).Draw(t, "parallelism")}
		g.Body.Params = []spec.Param{{Name: "item", Type: spec.TypeInt}}
	}
	return g
}

func TestRun_GroupProperties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 6).Draw(t, "tasks")
		p := &spec.Plan{Name: "random"}
		for i := 0; i < n; i++ {
			var tk spec.Task
			if rapid.Bool().Draw(t, "group") {
				tk = randomGroup(t, fmt.Sprintf("t%d", i), 1)
			} else {
				tk = task(fmt.Sprintf("t%d", i))
			}
			if i > 0 && rapid.Bool().Draw(t, "dep") {
				tk.After = []string{fmt.Sprintf("t%d", rapid.IntRange(0, i-1).Draw(t, "dep"))}
				tk.IgnoreUpstreamFailure = rapid.IntRange(0, 3).Draw(t, "iuf") == 0
			}
			p.Tasks = append(p.Tasks, tk)
		}
		finalize(t, p)
		m := &groupModel{t: t, plan: p, run: New(p, nil), chunk: rapid.IntRange(1, 8).Draw(t, "chunk")}
		m.run.chunk = m.chunk
		m.grow(n)
		m.apply(m.run.Start())
		restarts := 0
		for len(m.running) > 0 || m.more {
			op := rapid.IntRange(0, 24).Draw(t, "op")
			if len(m.running) == 0 {
				op = 3 // only Continue can make progress
			}
			switch {
			case op == 3 && m.more:
				m.more = false
				m.apply(m.run.Continue())
			case op == 0 && !m.canceled:
				m.canceled = true
				m.apply(m.run.Cancel())
			case op == 1 && restarts < 3:
				restarts++
				m.restart()
			default:
				k := rapid.IntRange(0, len(m.running)-1).Draw(t, "finish")
				i := m.running[k]
				m.running = append(m.running[:k], m.running[k+1:]...)
				st := rapid.SampledFrom([]spec.TaskState{spec.TaskSucceeded, spec.TaskSucceeded,
					spec.TaskSucceeded, spec.TaskSucceeded, spec.TaskSucceeded, spec.TaskFailed, spec.TaskCanceled}).Draw(t, "outcome")
				var out map[string]spec.Value
				if st == spec.TaskSucceeded {
					out = paramOut(m.run.Name(i))
				}
				m.final(i, st)
				m.outputs[i] = out
				m.apply(m.run.Finished(i, st, out))
			}
		}
		if m.dones != 1 {
			t.Fatalf("done %d times; states %v", m.dones, m.state)
		}
		failed := false
		for i, s := range m.state {
			if m.finals[i] != 1 {
				t.Fatalf("task %d (%s) is %s", i, m.run.Name(i), s)
			}
			failed = failed || s == spec.TaskFailed
		}
		if got, _ := m.run.Done(); failed != (got == spec.RunFailed) {
			t.Fatalf("run %s with a failed task: %v", got, failed)
		}
	})
}
