package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/scheduler"
	"github.com/skiffml/skiff/store"
)

// Messages the loop handles.
type (
	activate struct {
		runID string
		// fresh: the run was just created (the feed says so); its plan
		// may be one Submit kept (takePlan).
		fresh bool
	}
	cancelRun struct{ runID string }
	// refreshRun asks the loop to rebuild a run from the store and decide
	// again (the store rejected one of its changes, or a cancel came
	// again).
	refreshRun struct{ runID string }
	// continueRun is posted when a run's loops have iterations left to
	// activate (scheduler.ActContinue).
	continueRun struct{ runID string }
	// retryDue is posted when a failed task's backoff has passed.
	retryDue struct {
		runID         string
		task, attempt int
	}
)

// activeRun is the loop's view of one unfinished run.
type activeRun struct {
	id       string
	rec      store.Run
	plan     *spec.Plan
	sched    *scheduler.Run
	state    spec.RunState
	attempts []int // current attempt number per task
	final    bool
	// waiting holds the retry timers of tasks between attempts; the
	// scheduler counts them as running.
	waiting map[int]Timer
	// lastEnd is when a task's latest attempt ended, for tasks that were
	// waiting for a retry when the run was rebuilt.
	lastEnd map[int]time.Time
	// cacheKeys holds the cache key of tasks that run with caching on, so
	// their success is recorded under it; cacheWait the key of tasks
	// waiting for an identical execution in flight.
	cacheKeys map[int]string
	cacheWait map[int]string
	// canceled: the scheduler was told to cancel the run.
	canceled bool
	// retired is set when a refresh replaced this view of the run: what
	// still points to it is out of date and ignored.
	retired bool
}

// gone reports whether r no longer takes decisions: it ended, or a newer
// view of the run replaced it.
func (r *activeRun) gone() bool { return r.final || r.retired }

// execRef ties a live execution to its run, task and attempt.
type execRef struct {
	run     *activeRun
	task    int
	attempt int
	exec    executors.Executor
	// recovering: the attempt was found RUNNING when its run was
	// activated, and is being adopted or cleaned up off the loop.
	recovering bool
	// exited: its Exited event is being handled; there is nothing to
	// stop.
	exited bool
}

// Run is the reconcile loop. It returns when ctx ends (executions keep
// running and are picked up again by Resume) or when the store fails.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.stopped)
	defer e.closeCalls()
	fctx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	defer e.sub.Close()
	go e.follow(fctx, e.sub)
	for {
		if ctx.Err() != nil {
			// Stopping: whatever arrived now is left to the next engine,
			// which rebuilds it from the store.
			return nil
		}
		msgs := e.take()
		if len(msgs) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-e.wake:
				continue
			}
		}
		e.m.queueDepth.Set(float64(len(msgs)))
		for len(msgs) > 0 {
			b := newBatch(ctx)
			n := 0
			for n < len(msgs) && b.transitions < e.cfg.MaxBatch && b.err == nil {
				e.handle(ctx, msgs[n], b)
				n++
			}
			msgs = msgs[n:]
			err := b.err
			if err == nil {
				err = e.flush(ctx, b)
			}
			if err != nil {
				e.mu.Lock()
				e.err = err
				e.mu.Unlock()
				e.log.Error("engine stopped: store failed", "err", err)
				return err
			}
			// The store contradicted these runs: nothing else is decided
			// for them before they are rebuilt from it.
			msgs = append(e.refreshMsgs(b.staleRuns()), msgs...)
		}
	}
}

// closeCalls abandons the executor calls under way and drops those not
// begun: the store holds what they were for, and the next engine settles
// it.
func (e *Engine) closeCalls() {
	e.callCancel()
	for _, q := range e.queues {
		q.close()
	}
	e.calls.Wait()
}

// maxQuickRefreshes is how many times in a row a run is refreshed at once;
// after that (the store keeps rejecting its changes: a bug), each refresh
// waits refreshBackoff, so that the loop does not spin.
const (
	maxQuickRefreshes = 20
	refreshBackoff    = time.Second
)

// refreshMsgs returns the refreshes of ids to handle now; those of runs
// refreshed too often in a row are posted after refreshBackoff instead.
func (e *Engine) refreshMsgs(ids []string) []any {
	var out []any
	for _, id := range ids {
		e.refreshes[id]++
		if e.refreshes[id] > maxQuickRefreshes {
			e.log.Error("the store keeps rejecting a run's changes; refreshing it again later", "run", id, "refreshes", e.refreshes[id])
			msg := refreshRun{runID: id}
			e.clock.AfterFunc(refreshBackoff, func() { e.post(msg) })
			continue
		}
		out = append(out, refreshRun{runID: id})
	}
	return out
}

func (e *Engine) take() []any {
	e.mu.Lock()
	defer e.mu.Unlock()
	msgs := e.inbox
	e.inbox = nil
	return msgs
}

func (e *Engine) handle(ctx context.Context, m any, b *batch) {
	switch m := m.(type) {
	case activate:
		var plan *spec.Plan
		if m.fresh {
			plan = e.takePlan(m.runID)
		}
		e.activate(ctx, m.runID, plan, m.fresh, b)
	case rescan:
		e.onRescan(ctx, b)
	case refreshRun:
		e.refresh(ctx, m.runID, b)
	case cancelRun:
		e.onCancel(m.runID, b)
	case executors.Event:
		e.onEvent(m, b)
	case bareExit:
		e.onEvent(m.event(), b)
	case retryDue:
		e.onRetryDue(m, b)
	case continueRun:
		if r := e.active[m.runID]; r != nil && !r.final {
			e.decide(r, r.sched.Continue(), b)
		}
	case startFailed:
		e.onEvent(executors.Event{ID: m.id, Kind: executors.EventExited, Time: e.now(),
			State: spec.TaskFailed, ExitCode: -1, Reason: m.reason}, b)
	case stopFailed:
		e.onEvent(executors.Event{ID: m.id, Kind: executors.EventExited, Time: e.now(),
			State: spec.TaskCanceled, ExitCode: -1, Reason: "canceled; stopping it failed: " + m.reason}, b)
	case recovered:
		e.onRecovered(m, b)
	default:
		e.log.Error("engine: unknown message", "type", fmt.Sprintf("%T", m))
	}
}

// onCancel stops an active run whose cancellation was committed. A cancel
// of a run already being cancelled rebuilds it from the store: whatever
// held it up is decided again.
func (e *Engine) onCancel(runID string, b *batch) {
	r := e.active[runID]
	if r == nil || r.final {
		return
	}
	if r.canceled {
		e.post(refreshRun{runID: runID})
		return
	}
	if r.state != spec.RunCanceling {
		r.state = spec.RunCanceling
		b.update(durable, Update{RunID: r.id, Task: -1, Name: r.plan.Name, RunState: r.state, Time: e.now().UTC()})
	}
	e.cancel(r, b)
}

// cancel asks the scheduler to cancel r and acts on it.
func (e *Engine) cancel(r *activeRun, b *batch) {
	r.canceled = true
	e.decide(r, r.sched.Cancel(), b)
}

// activate loads a run from the store and starts or resumes it.
// fresh says that the run was just submitted (plan is given): its tasks
// are known to be all PENDING if it still is.
func (e *Engine) activate(ctx context.Context, runID string, plan *spec.Plan, fresh bool, b *batch) {
	if _, ok := e.active[runID]; ok {
		return
	}
	rec, err := e.cfg.Store.GetRun(runID)
	if err != nil {
		e.log.Error("activate run", "run", runID, "err", err)
		return
	}
	if rec.State.Final() {
		e.notifyFinal(runID)
		return
	}
	r, tasks, err := e.rebuild(rec, plan, !fresh || rec.State != spec.RunPending)
	if err != nil {
		// A run whose plan no longer loads cannot go on: fail it.
		e.log.Error("resume run", "run", runID, "err", err)
		at := b.runState(&activeRun{id: runID, state: rec.State}, spec.RunFailed, err.Error(), nil, e.now().UTC())
		b.finals = append(b.finals, pendingFinal{id: runID, at: at})
		return
	}
	e.active[runID] = r
	now := e.now().UTC()
	if r.state == spec.RunPending {
		at := b.runState(r, spec.RunRunning, "", nil, now)
		b.update(at, Update{RunID: r.id, Task: -1, Name: r.plan.Name, RunState: spec.RunRunning, Time: now})
		r.state = spec.RunRunning
	}
	// RUNNING tasks: an execution this engine follows stays followed (the
	// run is being refreshed); any other is settled off the loop, counted
	// as live meanwhile so that a stop waits for its outcome.
	var lost []*execRef
	for _, t := range tasks {
		if t.State != spec.TaskRunning || r.sched.Task(t.Index).IsGroup() {
			continue
		}
		id := executors.ExecutionID(r.id, t.Index, len(t.Attempts))
		if ref := e.inflight[id]; ref != nil {
			ref.run = r
			continue
		}
		if x, ok := e.execs[r.executorName(t.Index)]; ok {
			ref := &execRef{run: r, task: t.Index, attempt: len(t.Attempts), exec: x, recovering: true}
			e.inflight[id] = ref
			lost = append(lost, ref)
		}
	}
	// Pending tasks: start what is ready (or cancel everything when a
	// cancellation was requested).
	if rec.CancelRequested {
		e.cancel(r, b)
	} else {
		e.decide(r, r.sched.Start(), b)
	}
	for _, t := range tasks {
		if r.sched.State(t.Index) == spec.TaskRunning && !r.sched.Task(t.Index).IsGroup() {
			if _, ok := e.execs[r.executorName(t.Index)]; !ok && t.State == spec.TaskRunning {
				e.finishAttempt(r, t.Index, len(t.Attempts), spec.TaskFailed,
					fmt.Sprintf("executor %q: %v", r.executorName(t.Index), ErrUnknownExecutor), nil, nil, b)
			}
		}
	}
	for _, ref := range lost {
		e.recoverRunning(ref, b)
	}
}

// refresh replaces the loop's view of a run, which the store has just
// contradicted, with one rebuilt from the store, and decides again
// (Nomad's plan apply: reject, refresh, re-plan). Executions this engine
// follows are kept: the store records them as RUNNING.
func (e *Engine) refresh(ctx context.Context, runID string, b *batch) {
	old := e.active[runID]
	if old == nil {
		return
	}
	// Decisions made on the old view must reach the store first.
	e.flushPart(b)
	if b.err != nil || e.active[runID] != old {
		return
	}
	old.retired = true
	for _, tm := range old.waiting {
		tm.Stop()
	}
	delete(e.active, runID)
	e.landOrphanedFlights(b)
	e.activate(ctx, runID, old.plan, false, b)
}

// recoverRunning settles a task the store records as RUNNING when its run
// is (re)activated and no execution of this engine follows it: the engine
// that started it is gone. An executor that can adopt the execution
// re-attaches to it; otherwise whatever the attempt did is lost, its
// leftovers are killed, and a new attempt starts (or, on a run being
// cancelled, the attempt ends CANCELED). The executor calls happen off the
// loop (recoverExecution); onRecovered acts on their outcome.
func (e *Engine) recoverRunning(ref *execRef, b *batch) {
	r, task, cur := ref.run, ref.task, ref.attempt
	id := executors.ExecutionID(r.id, task, cur)
	var s *executors.Spec
	if !r.canceled {
		inputs, err := r.sched.Inputs(task)
		if err != nil {
			delete(e.inflight, id)
			e.finishAttempt(r, task, cur, spec.TaskFailed, fmt.Sprintf("resume: %v", err), nil, nil, b)
			return
		}
		s, _, _ = e.buildSpec(r, task, cur, id, ref.exec, inputs) // nil: not adoptable
	}
	b.effects = append(b.effects, effect{recover: ref, id: id, spec: s})
}

// onRecovered acts on the outcome of recoverExecution.
func (e *Engine) onRecovered(m recovered, b *batch) {
	ref := e.inflight[m.id]
	if ref == nil || !ref.recovering {
		return // the adopted execution already ended
	}
	ref.recovering = false
	r := ref.run
	if m.adopted {
		if r.canceled && !r.gone() {
			b.effects = append(b.effects, effect{stop: ref, id: m.id})
		}
		return
	}
	delete(e.inflight, m.id)
	if r.gone() {
		return
	}
	if r.canceled {
		e.finishAttempt(r, ref.task, ref.attempt, spec.TaskCanceled, "canceled: the engine stopped while the run was being cancelled", nil, nil, b)
		return
	}
	inputs, err := r.sched.Inputs(ref.task)
	if err != nil {
		e.finishAttempt(r, ref.task, ref.attempt, spec.TaskFailed, fmt.Sprintf("resume: %v", err), nil, nil, b)
		return
	}
	reason := fmt.Sprintf("lost: the engine stopped while attempt %d was running", ref.attempt)
	if m.reason != "" {
		reason += " (" + m.reason + ")"
	}
	e.startAttempt(r, ref.task, spec.TaskRunning, inputs, reason, b)
}

// rebuild makes the loop's view of a stored run.
// readTasks: read the task records (else the run is known to be fresh:
// every task PENDING, no attempt).
func (e *Engine) rebuild(rec store.Run, given *spec.Plan, readTasks bool) (*activeRun, []store.Task, error) {
	plan := given
	if plan == nil {
		plan = new(spec.Plan)
		if err := json.Unmarshal(rec.Plan, plan); err != nil {
			return nil, nil, fmt.Errorf("decode stored plan: %w", err)
		}
		if err := plan.Finalize(); err != nil {
			return nil, nil, fmt.Errorf("stored plan: %w", err)
		}
	}
	var tasks []store.Task
	if readTasks || rec.TaskCount != len(plan.Tasks) || len(rec.Expansions) > 0 {
		// A run just submitted was never activated: CreateRun made every
		// task PENDING with no attempt, and only an active run changes
		// them, so it skips reading them back.
		var err error
		if tasks, err = e.cfg.Store.Tasks(rec.ID); err != nil {
			return nil, nil, err
		}
	}
	sched := scheduler.New(plan, rec.Params)
	for _, x := range rec.Expansions {
		if err := sched.RestoreExpansion(x.Task, x.Base, x.Count); err != nil {
			return nil, nil, fmt.Errorf("stored run: %w", err)
		}
	}
	if tasks != nil && len(tasks) != sched.Len() {
		return nil, nil, fmt.Errorf("stored run has %d tasks, its plan and expansions %d", len(tasks), sched.Len())
	}
	r := &activeRun{
		id:        rec.ID,
		rec:       rec,
		plan:      plan,
		sched:     sched,
		state:     rec.State,
		attempts:  make([]int, sched.Len()),
		waiting:   map[int]Timer{},
		lastEnd:   map[int]time.Time{},
		cacheKeys: map[int]string{},
		cacheWait: map[int]string{},
	}
	if rec.CancelRequested && !rec.State.Final() {
		r.state = spec.RunCanceling
	}
	for _, t := range tasks {
		r.attempts[t.Index] = len(t.Attempts)
		if t.CacheKey != "" && !t.Cached() {
			r.cacheKeys[t.Index] = t.CacheKey
		}
		if n := len(t.Attempts); t.State == spec.TaskPending && n > 0 {
			r.lastEnd[t.Index] = t.Attempts[n-1].FinishedAt
		}
		if t.State != spec.TaskPending {
			r.sched.Restore(t.Index, t.State, t.Outputs)
		}
	}
	return r, tasks, nil
}

func (r *activeRun) executorName(task int) string {
	return r.plan.ExecutorName(r.sched.Task(task), r.rec.DefaultExecutor)
}

// decide turns scheduler decisions into batched transitions and effects.
func (e *Engine) decide(r *activeRun, decs []scheduler.Decision, b *batch) {
	for _, d := range decs {
		e.m.decisions.Inc()
		switch d.Action {
		case scheduler.ActStart:
			e.dispatch(r, d.Task, d.Inputs, b)
		case scheduler.ActSkip:
			e.endPending(r, d.Task, spec.TaskSkipped, d.Reason, b)
		case scheduler.ActCancel:
			e.endPending(r, d.Task, spec.TaskCanceled, d.Reason, b)
		case scheduler.ActFail:
			if r.sched.Task(d.Task).IsGroup() {
				e.endPending(r, d.Task, spec.TaskFailed, d.Reason, b)
				break
			}
			// The task cannot start (e.g. an upstream output is missing):
			// record one attempt that failed before it ran.
			e.failBeforeStart(r, d.Task, d.Reason, b)
		case scheduler.ActExpand:
			e.expand(r, d, b)
		case scheduler.ActGroupDone:
			now := e.now().UTC()
			at := b.transition(r, store.Transition{Task: d.Task, From: spec.TaskRunning, To: d.State, Time: now, Outputs: d.Outputs, Error: d.Reason})
			b.update(at, Update{RunID: r.id, Task: d.Task, Name: r.sched.Name(d.Task), TaskState: d.State, Reason: d.Reason, Time: now})
		case scheduler.ActStop:
			e.stop(r, d.Task, b)
		case scheduler.ActDone:
			e.finishRun(r, d.RunState, b)
		case scheduler.ActContinue:
			e.post(continueRun{runID: r.id})
		}
		e.flushFull(b)
	}
}

// expand records a group's start and the tasks it adds.
func (e *Engine) expand(r *activeRun, d scheduler.Decision, b *batch) {
	now := e.now().UTC()
	t := r.sched.Task(d.Task)
	names := make([]string, len(t.Body.Tasks))
	for j := range t.Body.Tasks {
		names[j] = t.Body.Tasks[j].Name
	}
	x := &store.Expansion{Task: d.Task, Base: d.Base, Count: d.Count, Loop: t.ParallelFor != nil, Names: names}
	at := b.transition(r, store.Transition{Task: d.Task, From: spec.TaskPending, To: spec.TaskRunning, Time: now, Expand: x})
	if n := r.sched.Len(); n > len(r.attempts) {
		r.attempts = append(r.attempts, make([]int, n-len(r.attempts))...)
	}
	reason := ""
	if x.Loop {
		reason = fmt.Sprintf("%d iterations", d.Count)
	}
	b.update(at, Update{RunID: r.id, Task: d.Task, Name: r.sched.Name(d.Task), TaskState: spec.TaskRunning, Reason: reason, Time: now})
}

// dispatch starts a task the scheduler found ready: after the rest of its
// retry backoff when it was waiting for one as the run was rebuilt, from
// the cache when caching applies, else as a new attempt.
func (e *Engine) dispatch(r *activeRun, task int, inputs map[string]spec.Value, b *batch) {
	if end, ok := r.lastEnd[task]; ok {
		delete(r.lastEnd, task)
		delay, _ := scheduler.RetryDelay(r.sched.Task(task).Retry, r.attempts[task])
		if wait := end.Add(delay).Sub(e.now()); wait > 0 {
			e.waitRetry(r, task, wait)
			return
		}
	}
	if r.cacheApplies(task) {
		key := CacheKey(store.RunNamespace(r.rec), r.sched.Task(task), inputs)
		if r.attempts[task] == 0 {
			e.startCached(r, task, key, inputs, b)
			return
		}
		r.cacheKeys[task] = key
	}
	e.startAttempt(r, task, spec.TaskPending, inputs, "", b)
}

// endPending records a PENDING task as skipped or cancelled.
func (e *Engine) endPending(r *activeRun, task int, to spec.TaskState, reason string, b *batch) {
	now := e.now().UTC()
	at := b.transition(r, store.Transition{Task: task, Attempt: r.attempts[task], From: spec.TaskPending, To: to, Time: now, Error: reason})
	b.update(at, Update{RunID: r.id, Task: task, Name: r.sched.Name(task), TaskState: to, Attempt: r.attempts[task], Reason: reason, Time: now})
}

// stop ends a task the scheduler counts as running on a cancelled run: its
// execution is stopped; a task that waits (for its retry backoff, or for an
// identical execution in flight) never runs and ends CANCELED at once.
func (e *Engine) stop(r *activeRun, task int, b *batch) {
	_, cacheWait := r.cacheWait[task]
	tm, retryWait := r.waiting[task]
	if cacheWait || retryWait {
		if retryWait {
			tm.Stop()
		}
		delete(r.cacheWait, task)
		delete(r.waiting, task)
		e.endPending(r, task, spec.TaskCanceled, "run canceled", b)
		e.decide(r, r.sched.Finished(task, spec.TaskCanceled, nil), b)
		return
	}
	id := executors.ExecutionID(r.id, task, r.attempts[task])
	if ref := e.inflight[id]; ref != nil {
		if !ref.recovering && !ref.exited { // else onRecovered stops or ends it, or it has ended
			b.effects = append(b.effects, effect{stop: ref, id: id})
		}
		return
	}
	// Nothing runs it: its start was refused (a cancel committed between
	// the decision and its entry) or its attempt was lost. End it here, as
	// the store has it.
	t, err := e.cfg.Store.Task(r.id, task)
	switch {
	case err != nil:
		e.log.Error("stop task", "run", r.id, "task", task, "err", err)
	case t.State == spec.TaskRunning:
		e.finishAttempt(r, task, len(t.Attempts), spec.TaskCanceled, "canceled", nil, nil, b)
	case t.State == spec.TaskPending:
		e.endPending(r, task, spec.TaskCanceled, "run canceled", b)
		e.decide(r, r.sched.Finished(task, spec.TaskCanceled, nil), b)
	}
}

// finishRun records the run's final state (with its outputs on success).
func (e *Engine) finishRun(r *activeRun, state spec.RunState, b *batch) {
	now := e.now().UTC()
	var outs map[string]spec.Value
	reason := ""
	switch state {
	case spec.RunSucceeded:
		outs = r.sched.Outputs()
	case spec.RunFailed:
		reason = r.failureSummary()
	}
	at := b.runState(r, state, reason, outs, now)
	b.update(at, Update{RunID: r.id, Task: -1, Name: r.plan.Name, RunState: state, Reason: reason, Time: now})
	r.state = state
	r.final = true
	b.finals = append(b.finals, pendingFinal{id: r.id, at: at})
}

// startAttempt records a new attempt of task (from PENDING, or from
// RUNNING when the previous attempt was lost) and queues its start.
func (e *Engine) startAttempt(r *activeRun, task int, from spec.TaskState, inputs map[string]spec.Value, lostReason string, b *batch) {
	now := e.now().UTC()
	attempt := r.attempts[task] + 1
	r.attempts[task] = attempt
	id := executors.ExecutionID(r.id, task, attempt)
	name := r.executorName(task)
	x, ok := e.execs[name]
	tr := store.Transition{Task: task, Attempt: attempt, From: from, To: spec.TaskRunning, Time: now,
		ExecutionID: id, Executor: name, Error: lostReason, CacheKey: r.cacheKeys[task]}
	at := b.transition(r, tr)
	b.update(at, Update{RunID: r.id, Task: task, Name: r.sched.Name(task), TaskState: spec.TaskRunning, Attempt: attempt, Reason: lostReason, Time: now})
	if !ok {
		e.finishAttempt(r, task, attempt, spec.TaskFailed, fmt.Sprintf("executor %q: %v", name, ErrUnknownExecutor), nil, nil, b)
		return
	}
	s, ws, err := e.buildSpec(r, task, attempt, id, x, inputs)
	if err != nil {
		e.finishAttempt(r, task, attempt, spec.TaskFailed, err.Error(), nil, nil, b)
		return
	}
	ref := &execRef{run: r, task: task, attempt: attempt, exec: x}
	e.inflight[id] = ref
	b.effects = append(b.effects, effect{start: ref, id: id, spec: s, workspace: ws, at: at})
	if _, ok := x.(Placer); ok && ws == "" {
		b.placeable++
	}
}

// failBeforeStart records one attempt, failed before it ran, for a
// PENDING task that cannot start.
func (e *Engine) failBeforeStart(r *activeRun, task int, reason string, b *batch) {
	now := e.now().UTC()
	r.attempts[task]++
	a := r.attempts[task]
	b.transition(r, store.Transition{Task: task, Attempt: a, From: spec.TaskPending, To: spec.TaskRunning, Time: now,
		ExecutionID: executors.ExecutionID(r.id, task, a), Executor: r.executorName(task)})
	e.finishAttempt(r, task, a, spec.TaskFailed, reason, nil, nil, b)
}

// finishAttempt records the end of a running attempt and feeds the
// scheduler.
func (e *Engine) finishAttempt(r *activeRun, task, attempt int, state spec.TaskState, reason string, outs map[string]spec.Value, logs *spec.ArtifactRef, b *batch) {
	now := e.now().UTC()
	key := r.cacheKeys[task]
	tr := store.Transition{Task: task, Attempt: attempt, From: spec.TaskRunning, To: state, Time: now,
		Outputs: outs, Error: reason, Logs: logs}
	if state == spec.TaskSucceeded {
		tr.CacheKey = key // a failed execution is never cached
	}
	at := b.transition(r, tr)
	b.update(at, Update{RunID: r.id, Task: task, Name: r.sched.Name(task), TaskState: state, Attempt: attempt, Reason: reason, Time: now})
	e.m.executions.WithLabelValues(state.String()).Inc()
	e.decide(r, r.sched.Finished(task, state, outs), b)
	if key != "" {
		e.landFlight(key, state, executors.ExecutionID(r.id, task, attempt), outs, b)
	}
}

func (e *Engine) onEvent(ev executors.Event, b *batch) {
	ref := e.inflight[ev.ID]
	if ref == nil {
		return // an event of an attempt we no longer follow
	}
	switch ev.Kind {
	case executors.EventWaiting:
		// Not durable: the reason goes to the update feed (API events,
		// UI, progress), not into the store.
		if !ref.run.gone() && ev.Reason != "" {
			r := ref.run
			b.update(durable, Update{RunID: r.id, Task: ref.task, Name: r.sched.Name(ref.task), TaskState: spec.TaskRunning,
				Attempt: ref.attempt, Reason: "waiting: " + ev.Reason, Time: e.now().UTC()})
		}
	case executors.EventExited:
		if ev.State == spec.TaskCanceled && !ref.run.canceled && !ref.run.gone() {
			e.cancelCommitted(ref, b)
		}
		delete(e.inflight, ev.ID)
		if ref.run.gone() {
			return
		}
		st := ev.State
		if st != spec.TaskSucceeded && st != spec.TaskCanceled {
			st = spec.TaskFailed
		}
		if st == spec.TaskSucceeded {
			if missing := missingOutputs(ref.run.sched.Task(ref.task), ev.Outputs); missing != "" {
				// An executor's success without what the task declares
				// would fail only the steps reading it: fail it here.
				st, ev.State = spec.TaskFailed, spec.TaskFailed
				ev.Reason = fmt.Sprintf("exited 0 without its declared outputs (%s)", missing)
			}
		}
		if st == spec.TaskFailed && ev.Lost {
			if !ref.run.canceled {
				e.replaceLost(ref, ev.Reason, b)
				return
			}
			// Its run was cancelled: the step is stopped either way, and
			// the run ends CANCELED, not FAILED for a node that died
			// meanwhile.
			e.finishAttempt(ref.run, ref.task, ref.attempt, spec.TaskCanceled, "canceled; its execution was "+ev.Reason, nil, ev.Logs, b)
			return
		}
		if st == spec.TaskFailed && e.retry(ref, ev, b) {
			return
		}
		e.finishAttempt(ref.run, ref.task, ref.attempt, st, ev.Reason, ev.Outputs, ev.Logs, b)
	}
}

// cancelCommitted cancels ref's run when its cancellation is committed
// though the feed has not told the loop yet: an executor that found it
// committed as it was about to start (or a worker whose assignment the
// store refused for it) ends the execution CANCELED, and that end can
// reach the loop first. Cancelling the run before the end is recorded
// makes the steps after it end CANCELED, not SKIPPED below a cancelled
// upstream. The execution has exited: the cancel does not stop it.
func (e *Engine) cancelCommitted(ref *execRef, b *batch) {
	canceled, err := e.cfg.Store.CancelRequested(ref.run.id)
	if err != nil || !canceled {
		return
	}
	ref.exited = true
	e.onCancel(ref.run.id, b)
}

// missingOutputs names the outputs t declares that outs lacks ("" when
// none is missing).
func missingOutputs(t *spec.Task, outs map[string]spec.Value) string {
	var missing []string
	for _, o := range t.Outputs {
		if _, ok := outs[o.Name]; !ok {
			missing = append(missing, o.Name)
		}
	}
	return strings.Join(missing, ", ")
}

// failureSummary names the tasks that failed, for the run's error.
func (r *activeRun) failureSummary() string {
	var names []string
	for i := 0; i < r.sched.Len(); i++ {
		if r.sched.State(i) == spec.TaskFailed && !r.sched.Task(i).IsGroup() {
			names = append(names, r.sched.Name(i))
		}
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("task %s failed", names[0])
	}
	if len(names) > 5 {
		return fmt.Sprintf("%d tasks failed: %s and %d more", len(names), strings.Join(names[:5], ", "), len(names)-5)
	}
	return fmt.Sprintf("%d tasks failed: %s", len(names), strings.Join(names, ", "))
}

// retry ends a failed attempt and schedules the next one when the task's
// retry policy allows; it reports whether it did.
func (e *Engine) retry(ref *execRef, ev executors.Event, b *batch) bool {
	r, task := ref.run, ref.task
	if r.state == spec.RunCanceling {
		return false
	}
	delay, ok := scheduler.RetryDelay(r.sched.Task(task).Retry, ref.attempt)
	if !ok {
		return false
	}
	now := e.now().UTC()
	at := b.transition(r, store.Transition{Task: task, Attempt: ref.attempt, From: spec.TaskRunning, To: spec.TaskPending, Time: now, Error: ev.Reason, Logs: ev.Logs})
	b.update(at, Update{RunID: r.id, Task: task, Name: r.sched.Name(task), TaskState: spec.TaskPending, Attempt: ref.attempt,
		Reason: fmt.Sprintf("attempt %d failed (%s); retrying in %s", ref.attempt, ev.Reason, delay.Round(time.Millisecond)), Time: now})
	e.m.executions.WithLabelValues("RETRIED").Inc()
	e.waitRetry(r, task, delay)
	return true
}

// waitRetry arms the timer that starts task's next attempt after delay.
func (e *Engine) waitRetry(r *activeRun, task int, delay time.Duration) {
	msg := retryDue{runID: r.id, task: task, attempt: r.attempts[task]}
	r.waiting[task] = e.clock.AfterFunc(delay, func() { e.post(msg) })
}

func (e *Engine) onRetryDue(m retryDue, b *batch) {
	r := e.active[m.runID]
	if r == nil || r.final || r.attempts[m.task] != m.attempt {
		return
	}
	if _, ok := r.waiting[m.task]; !ok {
		return // cancelled meanwhile
	}
	delete(r.waiting, m.task)
	inputs, err := r.sched.Inputs(m.task)
	if err != nil {
		e.failBeforeStart(r, m.task, fmt.Sprintf("retry: %v", err), b)
		return
	}
	e.startAttempt(r, m.task, spec.TaskPending, inputs, "", b)
}

// replaceLost gives a task whose execution was lost with its node a new
// attempt (the lost one ends FAILED with reason), as recovery does.
func (e *Engine) replaceLost(ref *execRef, reason string, b *batch) {
	r := ref.run
	inputs, err := r.sched.Inputs(ref.task)
	if err != nil {
		e.finishAttempt(r, ref.task, ref.attempt, spec.TaskFailed, fmt.Sprintf("%s; a new attempt cannot start: %v", reason, err), nil, nil, b)
		return
	}
	e.m.executions.WithLabelValues("LOST").Inc()
	e.startAttempt(r, ref.task, spec.TaskRunning, inputs, reason, b)
}
