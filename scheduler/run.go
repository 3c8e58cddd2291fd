package scheduler

import (
	"encoding/json"
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
)

// Run is the incremental scheduling state of one run. It is not safe for
// concurrent use: the engine drives it from one goroutine.
//
// Lifecycle: New, then Restore for each task whose state was recorded
// (after a restart), then Start once, then Finished for every outcome and
// Cancel when the run is cancelled. Every returned decision is already
// applied to the Run's own view (a started task counts as RUNNING, a
// skipped one as SKIPPED, ...); the engine records them durably and acts.
type Run struct {
	plan   *spec.Plan
	params map[string]json.RawMessage
	g      graph

	state     []spec.TaskState
	outputs   []map[string]spec.Value
	remaining []int32 // deps not SUCCEEDED yet; valid once started

	counts   Counts
	started  bool // Start or Cancel ran: Restore is over
	canceled bool // Cancel ran
	done     bool // ActDone was returned
	result   spec.RunState
	stack    []int32 // scratch for skip cascades
}

// New returns the state of a fresh run of plan with every task PENDING.
// plan must be finalized (Task.Deps and Ref.TaskIndex filled) and must not
// change afterwards; New panics with a *PlanError when Validate would
// reject it. params should hold a value for every declared pipeline
// parameter; a missing one falls back to the parameter's default, and an
// input that still has no value fails its task (ActFail).
func New(plan *spec.Plan, params map[string]json.RawMessage) *Run {
	g, err := buildGraph(plan)
	if err != nil {
		panic(err)
	}
	n := len(plan.Tasks)
	return &Run{
		plan:    plan,
		params:  params,
		g:       g,
		state:   make([]spec.TaskState, n),
		outputs: make([]map[string]spec.Value, n),
		counts:  Counts{Pending: n},
	}
}

// Restore sets a task's recorded state and outputs before Start, when the
// engine rebuilds a run after a restart. A RUNNING task stays running: the
// engine re-dispatches or adopts it itself, and reports it through
// Finished. Restore after Start (or Cancel), with an index out of range or
// with an unknown state is ignored.
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
	r.begin()
	var ds []Decision
	for i, s := range r.state {
		if s.Final() && s != spec.TaskSucceeded {
			ds = r.cascade(ds, i)
		}
	}
	for i, s := range r.state {
		if s == spec.TaskPending && (r.remaining[i] == 0 || r.plan.Tasks[i].IgnoreUpstreamFailure && r.depsFinal(i)) {
			ds = r.ready(ds, i)
		}
	}
	return r.checkDone(ds)
}

// begin ends the Restore phase and computes the remaining-deps counters.
func (r *Run) begin() {
	r.started = true
	r.remaining = make([]int32, len(r.state))
	for i := range r.plan.Tasks {
		for _, d := range r.plan.Tasks[i].Deps {
			if r.state[d] != spec.TaskSucceeded {
				r.remaining[i]++
			}
		}
	}
}

// Finished records that a RUNNING (dispatched) task reached state
// (SUCCEEDED, FAILED or CANCELED; SKIPPED is accepted and treated like a
// failure that does not fail the run) with outputs, and returns the new
// decisions. It looks only at the task's successors: on success each
// successor whose last dep this was starts (or fails on an unresolvable
// input); otherwise every PENDING task below it is skipped. ActDone comes
// last once every task is final.
//
// Finished on a task that is not RUNNING (unknown, never dispatched,
// already finished), before Start, or with a non-final state is an engine
// bug; it is ignored and returns nil, so a duplicate report is harmless.
func (r *Run) Finished(task int, state spec.TaskState, outputs map[string]spec.Value) []Decision {
	if !r.started || task < 0 || task >= len(r.state) || r.state[task] != spec.TaskRunning || !state.Final() {
		return nil
	}
	r.set(task, state)
	r.outputs[task] = outputs
	var ds []Decision
	if state == spec.TaskSucceeded {
		for _, s := range r.g.successors(task) {
			r.remaining[s]--
			if r.state[s] != spec.TaskPending || r.canceled {
				continue
			}
			if r.remaining[s] == 0 || r.plan.Tasks[s].IgnoreUpstreamFailure && r.depsFinal(int(s)) {
				ds = r.ready(ds, int(s))
			}
		}
	} else {
		ds = r.cascade(ds, task)
	}
	return r.checkDone(ds)
}

// Cancel stops the run. Every PENDING task gets ActCancel (it is CANCELED
// and never starts) and every RUNNING task gets ActStop (it stays RUNNING
// until its outcome comes back through Finished). ActDone(CANCELED) comes
// last when nothing is running. From then on no ActStart is ever returned.
// Cancel may be called before Start (rebuilding a run that was being
// cancelled); Start then returns nil. Cancel on a finished or already
// cancelled run returns nil.
func (r *Run) Cancel() []Decision {
	if r.done || r.canceled {
		return nil
	}
	if !r.started {
		r.begin()
	}
	r.canceled = true
	var ds []Decision
	for i, s := range r.state {
		switch s {
		case spec.TaskPending:
			r.set(i, spec.TaskCanceled)
			ds = append(ds, Decision{Action: ActCancel, Task: i, Reason: "run canceled"})
		case spec.TaskRunning:
			ds = append(ds, Decision{Action: ActStop, Task: i})
		}
	}
	return r.checkDone(ds)
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
		if v, ok := r.outputs[o.From.TaskIndex][o.From.Output]; ok {
			m[o.Name] = v
		}
	}
	return m
}

// set moves task i to state s, keeping the counts.
func (r *Run) set(i int, s spec.TaskState) {
	r.counts.add(r.state[i], -1)
	r.counts.add(s, 1)
	r.state[i] = s
}

// ready dispatches PENDING task i whose deps all succeeded: ActStart with
// its resolved inputs, or ActFail (and a skip cascade) when an input
// cannot be resolved.
func (r *Run) ready(ds []Decision, i int) []Decision {
	inputs, reason := r.resolve(&r.plan.Tasks[i])
	if reason != "" {
		r.set(i, spec.TaskFailed)
		ds = append(ds, Decision{Action: ActFail, Task: i, Reason: reason})
		return r.cascade(ds, i)
	}
	if t := &r.plan.Tasks[i]; t.When != "" {
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
	r.set(i, spec.TaskRunning)
	return append(ds, Decision{Action: ActStart, Task: i, Inputs: inputs})
}

// depsFinal reports whether every dependency of task i is final: when a
// task that ignores upstream failures may run.
func (r *Run) depsFinal(i int) bool {
	for _, d := range r.plan.Tasks[i].Deps {
		if !r.state[d].Final() {
			return false
		}
	}
	return true
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
		for _, s := range r.g.successors(u) {
			if r.state[s] != spec.TaskPending {
				continue
			}
			if r.plan.Tasks[s].IgnoreUpstreamFailure {
				// It runs whatever happened upstream, once all is
				// final; ready may cascade itself, so after this one.
				later = append(later, s)
				continue
			}
			if reason == "" {
				reason = skipReason(r.plan.Tasks[u].Name, r.state[u])
			}
			r.set(int(s), spec.TaskSkipped)
			ds = append(ds, Decision{Action: ActSkip, Task: int(s), Reason: reason})
			r.stack = append(r.stack, s)
		}
	}
	for _, s := range later {
		if r.state[s] == spec.TaskPending && !r.canceled && r.depsFinal(int(s)) {
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
