package scheduler

import (
	"encoding/json"
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
)

// Run is the incremental scheduling state of one run. It is not safe for
// concurrent use: the engine drives it from one goroutine.
//
// Tasks are numbered as the store numbers them: the plan's tasks first,
// then, each time a group (a task with a body: a loop, a sub-pipeline, a
// condition branch) starts, its body's tasks once per instance, appended
// (ActExpand says where).
//
// Lifecycle: New, then RestoreExpansion for each recorded expansion (in
// order) and Restore for each task whose state was recorded (after a
// restart), then Start once, then Finished for every outcome and Cancel
// when the run is cancelled. Every returned decision is already applied to
// the Run's own view (a started task counts as RUNNING, a skipped one as
// SKIPPED, ...); the engine records them durably and acts.
type Run struct {
	plan   *spec.Plan
	params map[string]json.RawMessage
	graphs map[*spec.Plan]planGraph
	scopes []*scope // scopes[0] is the plan's own

	state     []spec.TaskState
	outputs   []map[string]spec.Value
	remaining []int32 // deps not SUCCEEDED yet; valid once started

	counts    Counts
	started   bool // Start or Cancel ran: Restore is over
	canceled  bool // Cancel ran
	done      bool // ActDone was returned
	result    spec.RunState
	stack     []int32  // scratch for skip cascades
	finals    []int32  // tasks that became final, for their scope's bookkeeping
	emptyDone []int    // restored empty loops whose end was not recorded
	budget    int      // iterations this call may still activate
	chunk     int      // ActivateChunk (tests make it small)
	hungry    []*scope // loops with iterations left for Continue
}

// call starts a public call: it resets the activation budget.
func (r *Run) call() { r.budget = r.chunk }

// end finishes a public call: ActContinue when loops wait for Continue.
func (r *Run) end(ds []Decision) []Decision {
	ds = r.checkDone(ds)
	if len(r.hungry) > 0 && !r.done && !r.canceled {
		ds = append(ds, Decision{Action: ActContinue})
	}
	return ds
}

// Continue activates the loop iterations a previous call left for later
// (it returned ActContinue), up to ActivateChunk of them, and returns the
// decisions as any call does (ActContinue again when more wait).
func (r *Run) Continue() []Decision {
	if !r.started || r.done {
		return nil
	}
	r.call()
	var ds []Decision
	waiting := r.hungry
	r.hungry = nil
	for x, s := range waiting {
		s.hungry = false
		if r.budget <= 0 {
			for _, rest := range waiting[x:] {
				rest.hungry = true
			}
			r.hungry = append(r.hungry, waiting[x:]...)
			break
		}
		ds = r.activate(ds, s)
	}
	return r.end(r.settle(ds))
}

// planGraph is the dependency graph of one plan or body, shared by all its
// instances.
type planGraph struct {
	g     *graph
	roots []int32
}

// New returns the state of a fresh run of plan with every task PENDING.
// plan must be finalized (Task.Deps and Ref.TaskIndex filled) and must not
// change afterwards; New panics with a *PlanError when Validate would
// reject it. params should hold a value for every declared pipeline
// parameter; a missing one falls back to the parameter's default, and an
// input that still has no value fails its task (ActFail).
func New(plan *spec.Plan, params map[string]json.RawMessage) *Run {
	r := &Run{plan: plan, params: params, graphs: map[*spec.Plan]planGraph{}, chunk: ActivateChunk}
	if err := r.addGraphs(plan, "plan"); err != nil {
		panic(err)
	}
	r.grow(r.newScope(plan, -1, 0, 1))
	return r
}

// addGraphs builds the graph of p and of every body in it.
func (r *Run) addGraphs(p *spec.Plan, field string) error {
	g, err := buildGraph(p, field)
	if err != nil {
		return err
	}
	pg := planGraph{g: &g}
	for j := range p.Tasks {
		if len(p.Tasks[j].Deps) == 0 {
			pg.roots = append(pg.roots, int32(j))
		}
	}
	r.graphs[p] = pg
	for j := range p.Tasks {
		if b := p.Tasks[j].Body; b != nil {
			if len(b.Tasks) == 0 {
				return &PlanError{Field: fmt.Sprintf("%s.tasks[%d].body", field, j), Msg: "a body needs at least one task"}
			}
			if err := r.addGraphs(b, fmt.Sprintf("%s.tasks[%d].body", field, j)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Restore sets a task's recorded state and outputs before Start, when the
// engine rebuilds a run after a restart. A RUNNING task stays running: the
// engine re-dispatches or adopts it itself, and reports it through
// Finished (a RUNNING group goes on by itself). Restore after Start (or
// Cancel), with an index out of range (restore expansions first) or with
// an unknown state is ignored.
func (r *Run) Restore(task int, state spec.TaskState, outputs map[string]spec.Value) {
	if r.started || task < 0 || task >= len(r.state) || state > spec.TaskCanceled {
		return
	}
	r.set(task, state)
	r.outputs[task] = outputs
}

// Start returns the first decisions: ActSkip for every PENDING task below a
// restored task that did not succeed, ActStart (or ActFail) for every
// PENDING task whose deps all SUCCEEDED, and ActDone when the run is
// already complete. Call it once, after the Restore calls; later calls, and
// calls after Cancel, return nil.
func (r *Run) Start() []Decision {
	if r.started {
		return nil
	}
	r.call()
	var ds []Decision
	ds = r.begin(ds)
	// Fresh reads: a group that starts grows r.state.
	n := len(r.state)
	for i := 0; i < n; i++ {
		if s := r.state[i]; s.Final() && s != spec.TaskSucceeded {
			ds = r.cascade(ds, i)
		}
	}
	for i := 0; i < n; i++ {
		if r.state[i] == spec.TaskPending && r.activated(i) && (r.remaining[i] == 0 || r.Task(i).IgnoreUpstreamFailure && r.depsFinal(i)) {
			ds = r.ready(ds, i)
		}
	}
	for _, s := range r.scopes[1:] {
		ds = r.activate(ds, s)
		if s.done == s.n && r.state[s.owner] == spec.TaskRunning {
			ds = r.groupDone(ds, s.owner, s)
		}
	}
	for _, i := range r.emptyDone {
		if r.state[i] == spec.TaskRunning {
			ds = r.groupDone(ds, i, nil)
		}
	}
	return r.end(r.settle(ds))
}

// begin ends the Restore phase: it computes the remaining-deps counters and
// the progress of restored groups, whose inputs and items it resolves
// again from the restored state.
func (r *Run) begin(ds []Decision) []Decision {
	r.started = true
	r.finals = r.finals[:0] // restored states need no bookkeeping
	r.remaining = make([]int32, len(r.state))
	for i := range r.state {
		r.forDeps(i, func(d int) {
			if r.state[d] != spec.TaskSucceeded {
				r.remaining[i]++
			}
		})
	}
	for _, s := range r.scopes[1:] {
		t := r.Task(s.owner)
		inputs, reason := r.resolve(t, s.owner)
		var items itemList
		if reason == "" && s.loop {
			items, reason = r.loopItems(s.owner, t)
			if reason == "" && items.len() != s.n {
				reason = fmt.Sprintf("the loop now has %d items, it had %d", items.len(), s.n)
			}
		}
		// When the group's values cannot be had back, its pending tasks
		// fail as they resolve their inputs, naming why.
		s.inputs, s.items, s.broken = inputs, items, reason
		for k := 0; k < s.n; k++ {
			started := false
			for j := 0; j < s.size; j++ {
				st := r.state[s.abs(k, j)]
				if st.Final() {
					s.left[k]--
					switch st {
					case spec.TaskFailed:
						s.failed++
					case spec.TaskCanceled:
						s.canceled++
					}
				}
				if st != spec.TaskPending {
					started = true
				}
			}
			if started {
				s.next = k + 1
			}
		}
		for k := 0; k < s.n; k++ {
			switch {
			case s.left[k] == 0:
				s.done++
			case k < s.next:
				s.active++
			}
		}
	}
	return ds
}

// Finished records that a RUNNING (dispatched) task reached state
// (SUCCEEDED, FAILED or CANCELED; SKIPPED is accepted and treated like a
// failure that does not fail the run) with outputs, and returns the new
// decisions. It looks only at the task's successors: on success each
// successor whose last dep this was starts (or fails on an unresolvable
// input); otherwise every PENDING task below it is skipped. A group whose
// last task this was ends (ActGroupDone), and so on upwards. ActDone comes
// last once every task is final.
//
// Finished on a task that is not RUNNING (unknown, never dispatched,
// already finished), on a group (groups end by themselves), before Start,
// or with a non-final state is an engine bug; it is ignored and returns
// nil, so a duplicate report is harmless.
func (r *Run) Finished(task int, state spec.TaskState, outputs map[string]spec.Value) []Decision {
	if !r.started || task < 0 || task >= len(r.state) || r.state[task] != spec.TaskRunning || !state.Final() || r.Task(task).IsGroup() {
		return nil
	}
	r.call()
	r.set(task, state)
	r.outputs[task] = outputs
	return r.end(r.settle(r.after(nil, task, state)))
}

// after moves the successors of task i, which just ended in state.
func (r *Run) after(ds []Decision, i int, state spec.TaskState) []Decision {
	if state != spec.TaskSucceeded {
		return r.cascade(ds, i)
	}
	r.forSucc(i, func(s int) {
		r.remaining[s]--
		if r.state[s] != spec.TaskPending || r.canceled {
			return
		}
		if r.remaining[s] == 0 || r.Task(s).IgnoreUpstreamFailure && r.depsFinal(s) {
			ds = r.ready(ds, s)
		}
	})
	return ds
}

// Cancel stops the run. Every PENDING task gets ActCancel (it is CANCELED
// and never starts) and every RUNNING task gets ActStop (it stays RUNNING
// until its outcome comes back through Finished); a running group ends
// CANCELED once its tasks are final. ActDone(CANCELED) comes last when
// nothing is running. From then on no ActStart is ever returned. Cancel
// may be called before Start (rebuilding a run that was being cancelled);
// Start then returns nil. Cancel on a finished or already cancelled run
// returns nil.
func (r *Run) Cancel() []Decision {
	if r.done || r.canceled {
		return nil
	}
	var ds []Decision
	if !r.started {
		ds = r.begin(ds)
	}
	r.canceled = true
	for i, s := range r.state {
		switch s {
		case spec.TaskPending:
			r.set(i, spec.TaskCanceled)
			ds = append(ds, Decision{Action: ActCancel, Task: i, Reason: "run canceled"})
		case spec.TaskRunning:
			if !r.Task(i).IsGroup() {
				ds = append(ds, Decision{Action: ActStop, Task: i})
			}
		}
	}
	for _, s := range r.scopes[1:] {
		if s.done == s.n && r.state[s.owner] == spec.TaskRunning {
			ds = r.groupDone(ds, s.owner, s)
		}
	}
	for _, i := range r.emptyDone {
		if r.state[i] == spec.TaskRunning {
			ds = r.groupDone(ds, i, nil)
		}
	}
	r.hungry = nil
	return r.end(r.settle(ds))
}

// State returns the task's state as the scheduler sees it (a dispatched
// task is RUNNING). It panics when task is out of range.
func (r *Run) State(task int) spec.TaskState { return r.state[task] }

// Counts returns the number of tasks in each state.
func (r *Run) Counts() Counts { return r.counts }

// Done returns the run's final state and true once ActDone was returned.
func (r *Run) Done() (spec.RunState, bool) { return r.result, r.done }

// Outputs returns the pipeline outputs (Plan.Outputs) once the run is done
// and SUCCEEDED, else nil. An output whose task did not produce it is
// left out.
func (r *Run) Outputs() map[string]spec.Value {
	if !r.done || r.result != spec.RunSucceeded {
		return nil
	}
	m := make(map[string]spec.Value, len(r.plan.Outputs))
	for _, o := range r.plan.Outputs {
		if v, ok := r.bodyOutput(r.scopes[0], 0, o); ok {
			m[o.Name] = v
		}
	}
	return m
}

// set moves task i to state s, keeping the counts.
func (r *Run) set(i int, s spec.TaskState) {
	old := r.state[i]
	r.counts.add(old, -1)
	r.counts.add(s, 1)
	r.state[i] = s
	if s.Final() && !old.Final() {
		r.finals = append(r.finals, int32(i))
	}
}

// ready dispatches PENDING task i whose deps all succeeded: ActStart with
// its resolved inputs (ActExpand for a group), or ActFail (and a skip
// cascade) when an input cannot be resolved.
func (r *Run) ready(ds []Decision, i int) []Decision {
	t := r.Task(i)
	inputs, reason := r.resolve(t, i)
	if reason != "" {
		r.set(i, spec.TaskFailed)
		ds = append(ds, Decision{Action: ActFail, Task: i, Reason: reason})
		return r.cascade(ds, i)
	}
	if t.When != "" {
		ok, err := spec.EvalCondition(t, inputs)
		if err != nil {
			r.set(i, spec.TaskFailed)
			ds = append(ds, Decision{Action: ActFail, Task: i, Reason: fmt.Sprintf("when %q: %v", t.When, err)})
			return r.cascade(ds, i)
		}
		if !ok {
			r.set(i, spec.TaskSkipped)
			ds = append(ds, Decision{Action: ActSkip, Task: i, Reason: fmt.Sprintf("condition is false: %s", t.When)})
			return r.cascade(ds, i)
		}
	}
	if t.IsGroup() {
		return r.expand(ds, i, inputs)
	}
	r.set(i, spec.TaskRunning)
	return append(ds, Decision{Action: ActStart, Task: i, Inputs: inputs})
}

// depsFinal reports whether every dependency of task i is final: when a
// task that ignores upstream failures may run.
func (r *Run) depsFinal(i int) bool {
	ok := true
	r.forDeps(i, func(d int) {
		if !r.state[d].Final() {
			ok = false
		}
	})
	return ok
}

// cascade skips every PENDING task below task i, which ended without
// success. Each skip names its direct upstream task.
func (r *Run) cascade(ds []Decision, i int) []Decision {
	var later []int32
	r.stack = append(r.stack[:0], int32(i))
	for len(r.stack) > 0 {
		u := int(r.stack[len(r.stack)-1])
		r.stack = r.stack[:len(r.stack)-1]
		reason := ""
		r.forSucc(u, func(s int) {
			if r.state[s] != spec.TaskPending {
				return
			}
			if r.Task(s).IgnoreUpstreamFailure {
				// It runs whatever happened upstream, once all is
				// final; ready may cascade itself, so after this one.
				later = append(later, int32(s))
				return
			}
			if reason == "" {
				reason = skipReason(r.Task(u).Name, r.state[u])
			}
			r.set(s, spec.TaskSkipped)
			ds = append(ds, Decision{Action: ActSkip, Task: s, Reason: reason})
			r.stack = append(r.stack, int32(s))
		})
	}
	for _, s := range later {
		if r.state[s] == spec.TaskPending && !r.canceled && r.activated(int(s)) && r.depsFinal(int(s)) {
			ds = r.ready(ds, int(s))
		}
	}
	return ds
}

func skipReason(upstream string, s spec.TaskState) string {
	switch s {
	case spec.TaskFailed:
		return fmt.Sprintf("upstream task %q failed", upstream)
	case spec.TaskCanceled:
		return fmt.Sprintf("upstream task %q was canceled", upstream)
	}
	return fmt.Sprintf("upstream task %q was skipped", upstream)
}

// checkDone appends ActDone the first time every task is final. The run
// FAILED when any task failed, else CANCELED when Cancel ran or a task was
// canceled, else SUCCEEDED.
func (r *Run) checkDone(ds []Decision) []Decision {
	if r.done || r.counts.Pending > 0 || r.counts.Running > 0 {
		return ds
	}
	r.done = true
	switch {
	case r.counts.Failed > 0:
		r.result = spec.RunFailed
	case r.canceled || r.counts.Canceled > 0:
		r.result = spec.RunCanceled
	default:
		r.result = spec.RunSucceeded
	}
	return append(ds, Decision{Action: ActDone, RunState: r.result})
}
