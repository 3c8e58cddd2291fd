package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// task returns a task named name that runs after the named tasks and
// declares one parameter output "out".
func task(name string, after ...string) spec.Task {
	return spec.Task{Name: name, After: after, Outputs: []spec.Output{{Name: "out", Type: spec.TypeString}}}
}

// withInputs adds inputs to t.
func withInputs(t spec.Task, in ...spec.Input) spec.Task {
	t.Inputs = append(t.Inputs, in...)
	return t
}

func fromIn(name string, typ spec.Type, taskName, output string) spec.Input {
	return spec.Input{Name: name, Type: typ, From: &spec.Ref{Task: taskName, Output: output}}
}

// finalize fills Task.Deps (After plus From references, sorted, unique)
// and every Ref.TaskIndex, as spec's Finalize will. Tests do not depend
// on it.
func finalize(tb fataler, p *spec.Plan) *spec.Plan {
	tb.Helper()
	idx := func(name string) int {
		i := p.TaskIndex(name)
		if i < 0 {
			tb.Fatalf("finalize: no task %q", name)
		}
		return i
	}
	for i := range p.Tasks {
		t := &p.Tasks[i]
		set := map[int]bool{}
		for _, a := range t.After {
			set[idx(a)] = true
		}
		for j := range t.Inputs {
			if ref := t.Inputs[j].From; ref != nil {
				ref.TaskIndex = idx(ref.Task)
				set[ref.TaskIndex] = true
			}
		}
		if l := t.ParallelFor; l != nil && l.Items.From != nil {
			l.Items.From.TaskIndex = idx(l.Items.From.Task)
			set[l.Items.From.TaskIndex] = true
		}
		if t.Body != nil {
			finalizeBody(tb, t.Body)
		}
		t.Deps = nil
		for d := range set {
			t.Deps = append(t.Deps, d)
		}
		sort.Ints(t.Deps)
	}
	for j := range p.Outputs {
		o := &p.Outputs[j]
		if len(o.OneOf) == 0 {
			o.From.TaskIndex = idx(o.From.Task)
		}
		for k := range o.OneOf {
			o.OneOf[k].TaskIndex = idx(o.OneOf[k].Task)
		}
	}
	if err := Validate(p); err != nil {
		tb.Fatalf("finalize: %v", err)
	}
	return p
}

// finalizeBody is finalize for a group's body.
func finalizeBody(tb fataler, b *spec.Plan) { finalize(tb, b) }

func plan(tb testing.TB, tasks ...spec.Task) *spec.Plan {
	tb.Helper()
	return finalize(tb, &spec.Plan{Name: "p", Tasks: tasks})
}

// fataler is what finalize needs of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// paramOut is the output a simulated task produces by default.
func paramOut(taskName string) map[string]spec.Value {
	return map[string]spec.Value{"out": {Param: json.RawMessage(fmt.Sprintf("%q", taskName))}}
}

// engine drives a Run as the real engine would, one running task at a
// time in FIFO order, and records a readable trace of the decisions.
type engine struct {
	tb      testing.TB
	plan    *spec.Plan
	run     *Run
	queue   []int // dispatched, not finished, in start order
	trace   []string
	outcome map[string]spec.TaskState        // default SUCCEEDED
	outputs map[string]map[string]spec.Value // default paramOut
	inputs  map[string]map[string]spec.Value // inputs of each started task
}

func newEngine(tb testing.TB, p *spec.Plan, params map[string]json.RawMessage) *engine {
	return &engine{tb: tb, plan: p, run: New(p, params), outcome: map[string]spec.TaskState{},
		outputs: map[string]map[string]spec.Value{}, inputs: map[string]map[string]spec.Value{}}
}

func (e *engine) apply(ds []Decision) {
	for _, d := range ds {
		name := ""
		if d.Action != ActDone {
			name = e.plan.Tasks[d.Task].Name
		}
		switch d.Action {
		case ActStart:
			e.queue = append(e.queue, d.Task)
			e.inputs[name] = d.Inputs
			e.trace = append(e.trace, "start "+name)
		case ActStop:
			e.trace = append(e.trace, "stop "+name)
		case ActDone:
			e.trace = append(e.trace, "done "+d.RunState.String())
		default:
			e.trace = append(e.trace, fmt.Sprintf("%s %s: %s", d.Action, name, d.Reason))
		}
	}
}

// finish finishes the oldest running task with its configured outcome.
func (e *engine) finish() {
	i := e.queue[0]
	e.queue = e.queue[1:]
	name := e.plan.Tasks[i].Name
	st, ok := e.outcome[name]
	if !ok {
		st = spec.TaskSucceeded
	}
	out, ok := e.outputs[name]
	if !ok {
		out = paramOut(name)
	}
	e.trace = append(e.trace, fmt.Sprintf("finished %s %s", name, st))
	e.apply(e.run.Finished(i, st, out))
}

func (e *engine) runAll() {
	e.apply(e.run.Start())
	for len(e.queue) > 0 {
		e.finish()
	}
}

func (e *engine) states() string {
	var b strings.Builder
	for i, t := range e.plan.Tasks {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", t.Name, e.run.State(i))
	}
	return b.String()
}

func sameTrace(tb testing.TB, got, want []string) {
	tb.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		tb.Errorf("trace:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
