package scheduler

import (
	"fmt"
	"math"

	"github.com/skiffml/skiff/engine/spec"
)

// graph is the successor lists of a plan in compressed form: the
// successors of task i are succ[off[i]:off[i+1]], in increasing order.
type graph struct {
	off  []int32
	succ []int32
}

func (g *graph) successors(i int) []int32 { return g.succ[g.off[i]:g.off[i+1]] }

// Validate reports whether plan is finalized well enough for New: every
// dependency and reference index is in range and names the right task,
// every From reference is among the task's Deps, and the dependencies form
// no cycle. It costs O(tasks + edges + inputs). New panics with the same
// error; call Validate first where a bad plan must not crash the caller.
func Validate(plan *spec.Plan) error {
	r := &Run{graphs: map[*spec.Plan]planGraph{}}
	return r.addGraphs(plan, "plan")
}

func buildGraph(plan *spec.Plan, field string) (graph, error) {
	if plan == nil {
		return graph{}, &PlanError{Field: field, Msg: "nil"}
	}
	n := len(plan.Tasks)
	if n >= math.MaxInt32 {
		return graph{}, &PlanError{Field: field + ".tasks", Msg: fmt.Sprintf("%d tasks is too many", n)}
	}
	if err := checkRefs(plan); err != nil {
		if pe, ok := err.(*PlanError); ok && field != "plan" {
			pe.Field = field + "." + pe.Field
		}
		return graph{}, err
	}
	off := make([]int32, n+1)
	for i := range plan.Tasks {
		for _, d := range plan.Tasks[i].Deps {
			off[d+1]++
		}
	}
	for i := 0; i < n; i++ {
		off[i+1] += off[i]
	}
	g := graph{off: off, succ: make([]int32, off[n])}
	fill := make([]int32, n)
	copy(fill, off[:n])
	for i := range plan.Tasks {
		for _, d := range plan.Tasks[i].Deps {
			g.succ[fill[d]] = int32(i)
			fill[d]++
		}
	}
	if err := checkAcyclic(plan, &g, fill); err != nil {
		return graph{}, err
	}
	return g, nil
}

// checkRefs checks the indices filled by Finalize.
func checkRefs(plan *spec.Plan) error {
	n := len(plan.Tasks)
	isDep := make([]int, n) // isDep[d] == i+1: d is a dep of task i
	for i := range plan.Tasks {
		t := &plan.Tasks[i]
		for j, d := range t.Deps {
			if d < 0 || d >= n {
				return &PlanError{Field: fmt.Sprintf("tasks[%d].deps[%d]", i, j), Msg: fmt.Sprintf("index %d out of range", d)}
			}
			if d == i {
				return &PlanError{Field: fmt.Sprintf("tasks[%d].deps[%d]", i, j), Msg: "task depends on itself"}
			}
			isDep[d] = i + 1
		}
		for j := range t.Inputs {
			ref := t.Inputs[j].From
			if ref == nil {
				continue
			}
			field := fmt.Sprintf("tasks[%d].inputs[%d].from", i, j)
			if err := checkRef(plan, ref, field); err != nil {
				return err
			}
			if isDep[ref.TaskIndex] != i+1 {
				return &PlanError{Field: field, Msg: fmt.Sprintf("task %q is not in deps", ref.Task)}
			}
		}
	}
	for j := range plan.Outputs {
		o := &plan.Outputs[j]
		if len(o.OneOf) == 0 {
			if err := checkRef(plan, &o.From, fmt.Sprintf("outputs[%d].from", j)); err != nil {
				return err
			}
		}
		for k := range o.OneOf {
			if err := checkRef(plan, &o.OneOf[k], fmt.Sprintf("outputs[%d].oneOf[%d]", j, k)); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkRef(plan *spec.Plan, ref *spec.Ref, field string) error {
	if ref.TaskIndex < 0 || ref.TaskIndex >= len(plan.Tasks) {
		return &PlanError{Field: field, Msg: fmt.Sprintf("taskIndex %d out of range", ref.TaskIndex)}
	}
	if got := plan.Tasks[ref.TaskIndex].Name; got != ref.Task {
		return &PlanError{Field: field, Msg: fmt.Sprintf("taskIndex %d is task %q, not %q", ref.TaskIndex, got, ref.Task)}
	}
	return nil
}

// checkAcyclic runs Kahn's algorithm; scratch (len n) is overwritten.
func checkAcyclic(plan *spec.Plan, g *graph, scratch []int32) error {
	indeg := scratch
	queue := make([]int32, 0, len(plan.Tasks))
	for i := range plan.Tasks {
		indeg[i] = int32(len(plan.Tasks[i].Deps))
		if indeg[i] == 0 {
			queue = append(queue, int32(i))
		}
	}
	for k := 0; k < len(queue); k++ {
		for _, s := range g.successors(int(queue[k])) {
			indeg[s]--
			if indeg[s] == 0 {
				queue = append(queue, s)
			}
		}
	}
	if len(queue) == len(plan.Tasks) {
		return nil
	}
	for i := range plan.Tasks {
		if indeg[i] > 0 {
			return &PlanError{Field: fmt.Sprintf("tasks[%d].deps", i), Msg: fmt.Sprintf("dependency cycle through task %q", plan.Tasks[i].Name)}
		}
	}
	return nil // unreachable
}
