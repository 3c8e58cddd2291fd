package scheduler

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/skiffml/skiff/engine/spec"
)

// A scope is one expansion of a plan's tasks into the run's task list: the
// root plan (owner -1), or a started group's body, once per instance (a
// loop's iterations; one instance otherwise). Task base+k*size+j is
// template task j of instance k. Scopes are appended as groups start, so
// their bases only grow.
type scope struct {
	plan  *spec.Plan
	g     *graph
	roots []int32 // template tasks without deps
	base  int
	size  int // len(plan.Tasks)
	n     int // instances
	owner int // the group's task index; -1 for the root

	loop        bool
	itemParam   string
	parallelism int
	inputs      map[string]spec.Value // the group's resolved inputs
	items       itemList              // a loop's items, one per instance
	broken      string                // why they are not known, after a restart

	hungry   bool    // in Run.hungry: instances wait for Continue
	left     []int32 // per instance: tasks not final yet
	next     int     // instances activated (always a prefix)
	active   int     // activated instances not complete
	done     int     // complete instances
	failed   int     // body tasks that FAILED
	canceled int     // body tasks that were CANCELED
}

// loc returns the scope of task i, its instance and its template index.
func (r *Run) loc(i int) (*scope, int, int) {
	x := sort.Search(len(r.scopes), func(x int) bool { return r.scopes[x].base > i }) - 1
	s := r.scopes[x]
	off := i - s.base
	return s, off / s.size, off % s.size
}

// Task returns the template of task i: a task of the plan, or of a group's
// body. It panics when i is out of range.
func (r *Run) Task(i int) *spec.Task {
	s, _, j := r.loc(i)
	return &s.plan.Tasks[j]
}

// Len is the number of tasks the run has now: the plan's, and those every
// started group added.
func (r *Run) Len() int { return len(r.state) }

// Name is task i's name as the store records it: the template's name, and
// for a body task GROUP[k].NAME (loop) or GROUP.NAME.
func (r *Run) Name(i int) string {
	s, k, j := r.loc(i)
	name := s.plan.Tasks[j].Name
	if s.owner < 0 {
		return name
	}
	if s.loop {
		return fmt.Sprintf("%s[%d].%s", r.Name(s.owner), k, name)
	}
	return r.Name(s.owner) + "." + name
}

// Group says which group task i belongs to (-1 for the plan's own tasks)
// and in which instance (loop iteration).
func (r *Run) Group(i int) (group, instance int) {
	s, k, _ := r.loc(i)
	return s.owner, k
}

// abs is the run index of template task j in the same instance as task i.
func (s *scope) abs(k, j int) int { return s.base + k*s.size + j }

// forSucc calls fn for every successor of task i.
func (r *Run) forSucc(i int, fn func(int)) {
	s, k, j := r.loc(i)
	for _, t := range s.g.successors(j) {
		fn(s.abs(k, int(t)))
	}
}

// forDeps calls fn for every dependency of task i.
func (r *Run) forDeps(i int, fn func(int)) {
	s, k, j := r.loc(i)
	for _, d := range s.plan.Tasks[j].Deps {
		fn(s.abs(k, d))
	}
}

// newScope makes the scope of plan p expanded n times at base.
func (r *Run) newScope(p *spec.Plan, owner, base, n int) *scope {
	g := r.graphs[p]
	s := &scope{plan: p, g: g.g, roots: g.roots, base: base, size: len(p.Tasks), n: n, owner: owner}
	if owner >= 0 {
		t := r.Task(owner)
		if l := t.ParallelFor; l != nil {
			s.loop, s.itemParam, s.parallelism = true, l.ItemParam, l.Parallelism
		}
		s.left = make([]int32, n)
		for k := range s.left {
			s.left[k] = int32(s.size)
		}
	}
	return s
}

// grow adds the n*size PENDING tasks of a new scope.
func (r *Run) grow(s *scope) {
	total := s.n * s.size
	r.state = append(r.state, make([]spec.TaskState, total)...)
	r.outputs = append(r.outputs, make([]map[string]spec.Value, total)...)
	if r.started {
		r.remaining = append(r.remaining, make([]int32, total)...)
		for k := 0; k < s.n; k++ {
			for j := range s.plan.Tasks {
				r.remaining[s.abs(k, j)] = int32(len(s.plan.Tasks[j].Deps))
			}
		}
	}
	r.counts.Pending += total
	r.scopes = append(r.scopes, s)
}

// RestoreExpansion re-creates, before Start, a group that had started:
// task's body expanded count times at base, as the store recorded it.
// Expansions must be restored in the order they happened (bases grow);
// a mismatch is an error and changes nothing.
func (r *Run) RestoreExpansion(task, base, count int) error {
	switch {
	case r.started:
		return fmt.Errorf("restore expansion after Start")
	case task < 0 || task >= len(r.state):
		return fmt.Errorf("expansion of task %d: no such task", task)
	case base != len(r.state):
		return fmt.Errorf("expansion of task %d at %d: the run has %d tasks", task, base, len(r.state))
	case count < 0:
		return fmt.Errorf("expansion of task %d: negative count", task)
	}
	t := r.Task(task)
	if !t.IsGroup() {
		return fmt.Errorf("expansion of task %d: %s is not a group", task, t.Name)
	}
	if count > 1 && t.ParallelFor == nil {
		return fmt.Errorf("expansion of task %d: %d instances of a group that is not a loop", task, count)
	}
	if count > 0 {
		r.grow(r.newScope(t.Body, task, base, count))
	} else {
		r.emptyDone = append(r.emptyDone, task)
	}
	return nil
}

// expand starts group task i: it resolves a loop's items, adds the body's
// tasks and activates the first instances.
func (r *Run) expand(ds []Decision, i int, inputs map[string]spec.Value) []Decision {
	t := r.Task(i)
	n := 1
	var items itemList
	if t.ParallelFor != nil {
		var reason string
		if items, reason = r.loopItems(i, t); reason != "" {
			r.set(i, spec.TaskFailed)
			ds = append(ds, Decision{Action: ActFail, Task: i, Reason: reason})
			return r.cascade(ds, i)
		}
		n = items.len()
	}
	base := len(r.state)
	r.set(i, spec.TaskRunning)
	ds = append(ds, Decision{Action: ActExpand, Task: i, Base: base, Count: n})
	if n == 0 {
		return r.groupDone(ds, i, nil)
	}
	s := r.newScope(t.Body, i, base, n)
	s.inputs, s.items = inputs, items
	r.grow(s)
	return r.activate(ds, s)
}

// ActivateChunk is the most loop iterations one call activates; the rest
// wait for Continue (ActContinue says so). It keeps a huge loop's
// decisions, and the memory they hold, bounded per call.
const ActivateChunk = 1024

// activate starts instances of s while its parallelism (and this call's
// budget) allows.
func (r *Run) activate(ds []Decision, s *scope) []Decision {
	for s.next < s.n && (s.parallelism <= 0 || s.active < s.parallelism) && !r.canceled {
		if r.budget <= 0 {
			if !s.hungry {
				s.hungry = true
				r.hungry = append(r.hungry, s)
			}
			return ds
		}
		r.budget--
		k := s.next
		s.next++
		s.active++
		for _, j := range s.roots {
			if i := s.abs(k, int(j)); r.state[i] == spec.TaskPending {
				ds = r.ready(ds, i)
			}
		}
	}
	return ds
}

// activated reports whether task i may be dispatched: its instance was
// activated (a loop's parallelism not exceeded).
func (r *Run) activated(i int) bool {
	s, k, _ := r.loc(i)
	return s.owner < 0 || k < s.next
}

// settle does the bookkeeping of tasks that became final: an instance whose
// tasks are all final lets the next one start; a group whose instances are
// all complete ends, and its own successors move on.
func (r *Run) settle(ds []Decision) []Decision {
	for len(r.finals) > 0 {
		i := int(r.finals[0])
		r.finals = r.finals[1:]
		s, k, _ := r.loc(i)
		if s.owner < 0 {
			continue
		}
		switch r.state[i] {
		case spec.TaskFailed:
			s.failed++
		case spec.TaskCanceled:
			s.canceled++
		}
		s.left[k]--
		if s.left[k] > 0 {
			continue
		}
		if k < s.next {
			s.active--
		}
		s.done++
		ds = r.activate(ds, s)
		if s.done == s.n && r.state[s.owner] == spec.TaskRunning {
			ds = r.groupDone(ds, s.owner, s)
		}
	}
	return ds
}

// groupDone ends group task i whose body tasks (in scope s; nil for an
// empty loop) are all final.
func (r *Run) groupDone(ds []Decision, i int, s *scope) []Decision {
	state, reason := spec.TaskSucceeded, ""
	var outs map[string]spec.Value
	switch {
	case s != nil && s.failed > 0:
		state, reason = spec.TaskFailed, r.groupFailure(s)
	case s != nil && s.canceled > 0:
		state, reason = spec.TaskCanceled, "canceled"
	default:
		outs = r.groupOutputs(i, s)
	}
	r.set(i, state)
	r.outputs[i] = outs
	ds = append(ds, Decision{Action: ActGroupDone, Task: i, State: state, Outputs: outs, Reason: reason})
	return r.after(ds, i, state)
}

// groupFailure names the first failed task of a group's body.
func (r *Run) groupFailure(s *scope) string {
	for i := s.base; i < s.base+s.n*s.size; i++ {
		if r.state[i] == spec.TaskFailed {
			if s.failed == 1 {
				return fmt.Sprintf("task %s failed", r.Name(i))
			}
			return fmt.Sprintf("%d tasks failed, first %s", s.failed, r.Name(i))
		}
	}
	return "a task failed"
}

// groupOutputs collects a group's outputs from its body: a loop's are lists
// ordered by iteration (iterations that did not produce it are left out);
// the artifact lists of a loop's iterations (an inner loop's) are joined
// into one flat list, as KFP's driver gathers them. Parameter lists nest.
func (r *Run) groupOutputs(i int, s *scope) map[string]spec.Value {
	t := r.Task(i)
	if len(t.Body.Outputs) == 0 {
		return nil
	}
	outs := make(map[string]spec.Value, len(t.Body.Outputs))
	n := 0
	if s != nil {
		n = s.n
	}
	for _, o := range t.Body.Outputs {
		if t.ParallelFor == nil {
			if v, ok := r.bodyOutput(s, 0, o); ok {
				outs[o.Name] = v
			}
			continue
		}
		if k := o.Type.Kind(); k == spec.KindArtifact || k == spec.KindArtifactList {
			arts := make([]spec.ArtifactRef, 0, n)
			for k := 0; k < n; k++ {
				v, ok := r.bodyOutput(s, k, o)
				switch {
				case !ok:
				case v.Artifact != nil:
					arts = append(arts, *v.Artifact)
				default:
					arts = append(arts, v.Artifacts...)
				}
			}
			outs[o.Name] = spec.Value{Artifacts: arts, List: true}
			continue
		}
		list := make([]json.RawMessage, 0, n)
		for k := 0; k < n; k++ {
			if v, ok := r.bodyOutput(s, k, o); ok && v.Param != nil {
				list = append(list, v.Param)
			}
		}
		b, _ := json.Marshal(list)
		outs[o.Name] = spec.Value{Param: b}
	}
	return outs
}

// bodyOutput is output o of a body in instance k: its From, or the first
// of its OneOf that was produced.
func (r *Run) bodyOutput(s *scope, k int, o spec.PlanOutput) (spec.Value, bool) {
	refs := o.OneOf
	if len(refs) == 0 {
		refs = []spec.Ref{o.From}
	}
	for _, ref := range refs {
		i := s.abs(k, ref.TaskIndex)
		if r.state[i] != spec.TaskSucceeded {
			continue
		}
		if v, ok := r.outputs[i][ref.Output]; ok && !v.IsZero() {
			return v, true
		}
	}
	return spec.Value{}, false
}

// loopItems resolves the items of loop task i.
func (r *Run) loopItems(i int, t *spec.Task) (itemList, string) {
	in := t.ParallelFor.Items
	in.Name = "parallelFor.items"
	v, reason := r.resolveInput(i, &in)
	if reason != "" {
		return itemList{}, reason
	}
	if v.IsArtifactList() {
		return itemList{artifacts: true, arts: v.Artifacts}, ""
	}
	raw := v.Param
	var s string
	if json.Unmarshal(raw, &s) == nil {
		raw = json.RawMessage(s) // a list passed as JSON text
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return itemList{}, fmt.Sprintf("parallelFor items: expected a list, got %s", shorten(string(v.Param)))
	}
	typ := spec.Type("")
	if p := t.Body.Param(t.ParallelFor.ItemParam); p != nil {
		typ = p.Type
	}
	items := itemList{ends: make([]uint32, len(list))}
	for k, it := range list {
		if typ == spec.TypeString && len(it) > 0 && it[0] != '"' {
			// A string item parameter takes any item as its JSON text
			// (KFP declares loop items STRING, objects included).
			it, _ = json.Marshal(string(it))
		}
		norm, err := spec.NormValue(typ, it)
		if err != nil {
			return itemList{}, fmt.Sprintf("parallelFor item %d: %v", k, err)
		}
		items.params = append(items.params, norm...)
		items.ends[k] = uint32(len(items.params))
	}
	return items, ""
}

// itemList is a loop's items, kept compact (a ParallelFor of 100,000
// items holds them for its whole run): parameter items' JSON one after
// another in one buffer, item k ending at ends[k]; or the artifacts of an
// artifact list.
type itemList struct {
	params    []byte
	ends      []uint32
	artifacts bool
	arts      []spec.ArtifactRef
}

func (l *itemList) len() int {
	if l.artifacts {
		return len(l.arts)
	}
	return len(l.ends)
}

// at is item k as a value (its bytes are shared: read them, never write).
func (l *itemList) at(k int) spec.Value {
	if l.artifacts {
		return spec.Value{Artifact: &l.arts[k]}
	}
	var start uint32
	if k > 0 {
		start = l.ends[k-1]
	}
	end := l.ends[k]
	return spec.Value{Param: json.RawMessage(l.params[start:end:end])}
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
