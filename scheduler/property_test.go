package scheduler

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"pgregory.net/rapid"
)

// model is an engine driving a Run on a random DAG, checking every
// decision against what it knows.
type model struct {
	t        *rapid.T
	plan     *spec.Plan
	run      *Run
	state    []spec.TaskState
	outputs  []map[string]spec.Value
	finals   []int // times each task reached a final state
	running  []int
	canceled bool
	dones    int
	result   spec.RunState
}

func (m *model) depsSucceeded(i int) bool {
	for _, d := range m.plan.Tasks[i].Deps {
		if m.state[d] != spec.TaskSucceeded {
			return false
		}
	}
	return true
}

// mayRun: the task's dependencies allow it to start (all succeeded; or,
// for a task that ignores upstream failures, all final).
func (m *model) mayRun(i int) bool {
	if !m.plan.Tasks[i].IgnoreUpstreamFailure {
		return m.depsSucceeded(i)
	}
	for _, d := range m.plan.Tasks[i].Deps {
		if !m.state[d].Final() {
			return false
		}
	}
	return true
}

func (m *model) final(i int, s spec.TaskState) {
	m.state[i] = s
	m.finals[i]++
	if m.finals[i] > 1 {
		m.t.Fatalf("task %d reached a final state twice", i)
	}
}

func (m *model) apply(ds []Decision) {
	t := m.t
	for _, d := range ds {
		if m.dones > 0 {
			t.Fatalf("decision %v after done", d)
		}
		i := d.Task
		switch d.Action {
		case ActStart:
			if m.canceled {
				t.Fatalf("start %d after Cancel", i)
			}
			if m.state[i] != spec.TaskPending || !m.mayRun(i) {
				t.Fatalf("start %d: state %s, may run %v", i, m.state[i], m.mayRun(i))
			}
			if m.plan.Tasks[i].When == "false" {
				t.Fatalf("start %d whose condition is false", i)
			}
			for _, in := range m.plan.Tasks[i].Inputs {
				if want := m.outputs[in.From.TaskIndex]["out"]; !reflect.DeepEqual(d.Inputs[in.Name], want) {
					t.Fatalf("start %d: input %s = %v, want %v", i, in.Name, d.Inputs[in.Name], want)
				}
			}
			m.state[i] = spec.TaskRunning
			m.running = append(m.running, i)
		case ActSkip:
			blocked := false
			for _, dep := range m.plan.Tasks[i].Deps {
				blocked = blocked || (m.state[dep].Final() && m.state[dep] != spec.TaskSucceeded)
			}
			if m.plan.Tasks[i].IgnoreUpstreamFailure {
				blocked = false // never skipped for its upstream
			}
			condFalse := m.plan.Tasks[i].When == "false" && m.mayRun(i)
			if m.state[i] != spec.TaskPending || !(blocked || condFalse) {
				t.Fatalf("skip %d: state %s, blocked %v, condition false %v", i, m.state[i], blocked, condFalse)
			}
			m.final(i, spec.TaskSkipped)
		case ActFail:
			if m.state[i] != spec.TaskPending || !m.mayRun(i) || len(m.plan.Tasks[i].Inputs) == 0 {
				t.Fatalf("fail %d: %s", i, d.Reason)
			}
			m.final(i, spec.TaskFailed)
		case ActCancel:
			if !m.canceled || m.state[i] != spec.TaskPending {
				t.Fatalf("cancel %d: canceled %v, state %s", i, m.canceled, m.state[i])
			}
			m.final(i, spec.TaskCanceled)
		case ActStop:
			if !m.canceled || m.state[i] != spec.TaskRunning {
				t.Fatalf("stop %d: canceled %v, state %s", i, m.canceled, m.state[i])
			}
		case ActDone:
			m.dones++
			m.result = d.RunState
		default:
			t.Fatalf("unknown decision %v", d)
		}
	}
	var c Counts
	for i, s := range m.state {
		if got := m.run.State(i); got != s {
			t.Fatalf("State(%d) = %s, model says %s", i, got, s)
		}
		c.add(s, 1)
	}
	if got := m.run.Counts(); got != c {
		t.Fatalf("Counts = %+v, model says %+v", got, c)
	}
}

// restart rebuilds the Run from the model's states, as the engine does
// after a crash; nothing new may be decided.
func (m *model) restart() {
	m.run = New(m.plan, nil)
	for i, s := range m.state {
		m.run.Restore(i, s, m.outputs[i])
	}
	if m.canceled {
		m.apply(m.run.Cancel())
	}
	if ds := m.run.Start(); len(ds) != 0 {
		m.t.Fatalf("Start after restart decided %v", ds)
	}
}

func randomPlan(t *rapid.T) *spec.Plan {
	n := rapid.IntRange(0, 25).Draw(t, "tasks")
	p := &spec.Plan{Name: "random", Tasks: make([]spec.Task, n)}
	for i := range p.Tasks {
		tk := task(fmt.Sprintf("t%d", i))
		if i > 0 {
			for k := rapid.IntRange(0, 3).Draw(t, "deps"); k > 0; k-- {
				tk.After = append(tk.After, fmt.Sprintf("t%d", rapid.IntRange(0, i-1).Draw(t, "dep")))
			}
			if len(tk.After) > 0 && rapid.Bool().Draw(t, "input") {
				tk.Inputs = []spec.Input{fromIn("in", spec.TypeString, tk.After[0], "out")}
			}
			tk.IgnoreUpstreamFailure = len(tk.After) > 0 && rapid.IntRange(0, 3).Draw(t, "iuf") == 0
		}
		if c := rapid.IntRange(0, 7).Draw(t, "when"); c == 0 {
			tk.When = "false"
		} else if c == 1 {
			tk.When = "true"
		}
		p.Tasks[i] = tk
	}
	return finalize(t, p)
}

func TestRun_Properties(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		p := randomPlan(t)
		n := len(p.Tasks)
		m := &model{t: t, plan: p, run: New(p, nil), state: make([]spec.TaskState, n),
			outputs: make([]map[string]spec.Value, n), finals: make([]int, n)}
		m.apply(m.run.Start())
		restarts := 0
		for len(m.running) > 0 {
			switch op := rapid.IntRange(0, 19).Draw(t, "op"); {
			case op == 0 && !m.canceled:
				m.canceled = true
				m.apply(m.run.Cancel())
			case op == 1 && restarts < 3:
				restarts++
				m.restart()
			case op == 2:
				i := rapid.IntRange(0, n-1).Draw(t, "bogus")
				if m.state[i] != spec.TaskRunning {
					if ds := m.run.Finished(i, spec.TaskSucceeded, nil); ds != nil {
						t.Fatalf("Finished on %s task %d = %v", m.state[i], i, ds)
					}
				}
			default:
				k := rapid.IntRange(0, len(m.running)-1).Draw(t, "finish")
				i := m.running[k]
				m.running = append(m.running[:k], m.running[k+1:]...)
				st := rapid.SampledFrom([]spec.TaskState{spec.TaskSucceeded, spec.TaskSucceeded,
					spec.TaskSucceeded, spec.TaskSucceeded, spec.TaskFailed, spec.TaskCanceled}).Draw(t, "outcome")
				var out map[string]spec.Value
				if st == spec.TaskSucceeded && rapid.IntRange(0, 9).Draw(t, "drop") > 0 {
					out = paramOut(p.Tasks[i].Name)
				}
				m.final(i, st)
				m.outputs[i] = out
				m.apply(m.run.Finished(i, st, out))
			}
		}
		if m.dones != 1 {
			t.Fatalf("done %d times", m.dones)
		}
		want := spec.RunSucceeded
		failed, canceled := false, m.canceled
		for i, s := range m.state {
			if m.finals[i] != 1 {
				t.Fatalf("task %d is %s", i, s)
			}
			failed = failed || s == spec.TaskFailed
			canceled = canceled || s == spec.TaskCanceled
		}
		if failed {
			want = spec.RunFailed
		} else if canceled {
			want = spec.RunCanceled
		}
		if got, ok := m.run.Done(); m.result != want || got != want || !ok {
			t.Fatalf("run ended %s (Done() = %s, %v), want %s", m.result, got, ok, want)
		}
	})
}
