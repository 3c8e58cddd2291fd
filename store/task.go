package store

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// Task is one task of a run.
type Task struct {
	RunID      string                `json:"run_id"`
	Index      int                   `json:"index"`
	Name       string                `json:"name"`
	State      spec.TaskState        `json:"state"`
	Attempts   []Attempt             `json:"attempts,omitempty"` // one per attempt, in order
	Outputs    map[string]spec.Value `json:"outputs,omitempty"`
	Error      string                `json:"error,omitempty"`
	StartedAt  time.Time             `json:"started_at,omitzero"`
	FinishedAt time.Time             `json:"finished_at,omitzero"`
	// CacheKey is the task's cache key when caching applied to it.
	CacheKey string `json:"cache_key,omitempty"`
	// CachedFrom is the execution whose outputs a cache hit reused.
	CachedFrom string `json:"cached_from,omitempty"`
}

// Cached reports whether the task was satisfied from the cache.
func (t Task) Cached() bool { return t.CachedFrom != "" }

// Attempt is one try of a task (an execution).
type Attempt struct {
	N           int               `json:"n"` // 1-based
	ExecutionID string            `json:"execution_id,omitempty"`
	Executor    string            `json:"executor,omitempty"`
	State       spec.TaskState    `json:"state"` // RUNNING while live, then its final state
	StartedAt   time.Time         `json:"started_at,omitzero"`
	FinishedAt  time.Time         `json:"finished_at,omitzero"`
	Error       string            `json:"error,omitempty"`
	Logs        *spec.ArtifactRef `json:"logs,omitempty"`
	// Waiting is why the attempt's execution has not started, as its
	// worker last reported it (ReportExecution.Waiting, kept with the
	// assignment): "Unschedulable: 0/3 nodes are available: ...".
	// Cleared when the execution starts or ends.
	Waiting string `json:"waiting_reason,omitempty"`
}

// WaitingReason is why t's live attempt has not started, as its worker
// last reported it; "" when t is not RUNNING or its attempt gave none.
func WaitingReason(t Task) string {
	if t.State != spec.TaskRunning || len(t.Attempts) == 0 {
		return ""
	}
	a := t.Attempts[len(t.Attempts)-1]
	if a.State != spec.TaskRunning {
		return ""
	}
	return a.Waiting
}

// TransitionTasks applies a batch of task transitions to one run. Each item
// is checked against the current state (including earlier items of the same
// batch) and rejected alone when stale.
type TransitionTasks struct {
	RunID string       `json:"run_id"`
	Items []Transition `json:"items"`
}

// Transition moves task Task of the run from From to To, for attempt
// Attempt (1-based). Accepted moves:
//
//	PENDING -> RUNNING             Attempt == len(Attempts)+1: a new RUNNING attempt
//	RUNNING -> RUNNING             Attempt == current+1: the current attempt ends
//	                               FAILED with Error, a new one starts (recovery)
//	RUNNING -> PENDING             Attempt == current: the attempt ends FAILED with
//	                               Error and Logs, and the task waits for a retry
//	RUNNING -> SUCCEEDED|FAILED|CANCELED
//	                               Attempt == current: closes attempt and task
//	PENDING -> SKIPPED|CANCELED    no attempt; Error holds the reason
//	PENDING -> FAILED              Attempt 0: a group that could not start
//	                               (Error says why); no attempt
//	PENDING -> RUNNING             with Expand: a group starts; no attempt;
//	                               Expand.Count * len(Expand.Names) PENDING
//	                               tasks are added at Expand.Base, which must
//	                               be the run's task count
//	RUNNING -> SUCCEEDED|FAILED|CANCELED
//	                               Attempt 0 on a group: it ends (Outputs on
//	                               success)
//	PENDING -> SUCCEEDED           a cache hit: CachedFrom names the execution
//	                               whose Outputs are reused; no attempt
//
// A RUNNING -> SUCCEEDED move with a CacheKey also records the outputs in
// the cache under that key.
//
// No attempt starts once the run's cancellation was requested or the run is
// final.
type Transition struct {
	Task        int                   `json:"task"`
	Attempt     int                   `json:"attempt,omitempty"`
	From        spec.TaskState        `json:"from"`
	To          spec.TaskState        `json:"to"`
	Time        time.Time             `json:"time"`
	ExecutionID string                `json:"execution_id,omitempty"`
	Executor    string                `json:"executor,omitempty"`
	Outputs     map[string]spec.Value `json:"outputs,omitempty"`
	Error       string                `json:"error,omitempty"`
	Logs        *spec.ArtifactRef     `json:"logs,omitempty"`
	CacheKey    string                `json:"cache_key,omitempty"`
	CachedFrom  string                `json:"cached_from,omitempty"`
	Expand      *Expansion            `json:"expand,omitempty"`
}

// Expansion records the tasks a group added to its run: Count instances
// (loop iterations; 1 for a sub-pipeline or condition group) of its body's
// tasks Names, at indices Base + k*len(Names) + j. Task records are named
// GROUP[k].NAME for a loop, GROUP.NAME otherwise.
type Expansion struct {
	Task  int      `json:"task"`
	Base  int      `json:"base"`
	Count int      `json:"count"`
	Loop  bool     `json:"loop,omitempty"`
	Names []string `json:"names"`
}

// ExpandedName is the name of body task name in instance k of group.
func ExpandedName(group string, loop bool, k int, name string) string {
	if loop {
		return group + "[" + strconv.Itoa(k) + "]." + name
	}
	return group + "." + name
}

func (TransitionTasks) Type() CommandType { return TypeTransitionTasks }

func init() {
	registerJSONNoted(TypeTransitionTasks, "transition_tasks", transitionTasksVersion, applyTransitionTasks)
	// Version 2 is binary (binary.go); version 1 (JSON) still decodes.
	setBinaryCodec(TypeTransitionTasks, transitionTasksVersion, encodeTransitions, decodeTransitions)
}

func applyTransitionTasks(tx *bolt.Tx, c TransitionTasks, ch *Change) ([]Rejection, error) {
	run, err := getRunTx(tx, c.RunID, false)
	if err != nil {
		rej := make([]Rejection, len(c.Items))
		for i := range c.Items {
			rej[i] = Rejection{Item: i, Reason: fmt.Sprintf("transition task %d: %v", c.Items[i].Task, err)}
		}
		return rej, nil
	}
	noNewAttempts := run.CancelRequested || run.State.Final()
	tasks := map[int]*Task{} // loaded tasks, written back once at the end
	// fresh: the tasks groups added (PENDING, never loaded), made only
	// when an item names one or when written: a 100,000-iteration loop
	// would otherwise hold as many records at once.
	var fresh []freshTasks
	var rej []Rejection
	runChanged := false
	for i, it := range c.Items {
		t := tasks[it.Task]
		if t == nil {
			for _, f := range fresh {
				if it.Task >= f.x.Base && it.Task < f.x.Base+f.x.Count*len(f.x.Names) {
					nt := f.task(run.ID, it.Task)
					t = &nt
					tasks[it.Task] = t
					break
				}
			}
		}
		if t == nil && it.Task >= 0 && it.Task < run.TaskCount {
			loaded, err := taskOf(ch.get(tx, bucketTasks, taskKey(c.RunID, it.Task)), c.RunID, it.Task)
			if err != nil {
				return nil, err // the record must exist: a corrupt store
			}
			t = &loaded
			tasks[it.Task] = t
		}
		if t == nil {
			rej = append(rej, Rejection{Item: i, Reason: fmt.Sprintf("run %q has no task %d", c.RunID, it.Task)})
			continue
		}
		reason := ""
		ended := "" // the execution of the attempt live before this item
		if n := len(t.Attempts); t.State == spec.TaskRunning && n > 0 && t.Attempts[n-1].State == spec.TaskRunning {
			ended = t.Attempts[n-1].ExecutionID
		}
		if it.Expand != nil {
			if reason = expandTask(&run, t, it, noNewAttempts); reason == "" {
				fresh = append(fresh, freshTasks{group: t.Name, x: it.Expand})
			}
		} else {
			reason = transitionTask(t, it, noNewAttempts)
		}
		if reason != "" {
			rej = append(rej, Rejection{Item: i, Reason: fmt.Sprintf("run %q task %d (%s) %s -> %s attempt %d: %s",
				c.RunID, it.Task, t.Name, it.From, it.To, it.Attempt, reason)})
			continue
		}
		if ended != "" && (t.State != spec.TaskRunning || t.Attempts[len(t.Attempts)-1].ExecutionID != ended) {
			// The attempt ended: so does its assignment to a worker.
			if err := dropAssignmentTx(tx, ended, ch); err != nil {
				return nil, err
			}
		}
		if it.Expand != nil {
			runChanged = true
		}
		if it.CacheKey != "" && it.From == spec.TaskRunning && it.To == spec.TaskSucceeded {
			e := CacheEntry{Key: it.CacheKey, RunID: c.RunID, Task: it.Task, ExecutionID: t.Attempts[len(t.Attempts)-1].ExecutionID,
				Outputs: it.Outputs, Time: it.Time}
			if err := putCacheEntryTx(tx, e); err != nil {
				return nil, err
			}
		}
	}
	// In key order: the loaded tasks below the first group's tasks, then
	// each group's (fresh ranges follow each other from the old task
	// count on), a loaded one where an item changed it.
	end := run.TaskCount
	if len(fresh) > 0 {
		end = fresh[0].x.Base
	}
	idx := make([]int, 0, len(tasks))
	for i := range tasks {
		if i < end {
			idx = append(idx, i)
		}
	}
	slices.Sort(idx)
	for _, i := range idx {
		if err := ch.putTask(tx, tasks[i]); err != nil {
			return nil, err
		}
	}
	if len(fresh) > 0 {
		bulkTasks(tx)
	}
	for _, f := range fresh {
		for i := f.x.Base; i < f.x.Base+f.x.Count*len(f.x.Names); i++ {
			t := tasks[i]
			if t == nil {
				nt := f.task(run.ID, i)
				t = &nt
			}
			if err := putTaskTx(tx, t); err != nil {
				return nil, err
			}
		}
	}
	if runChanged {
		if err := putRunTx(tx, &run); err != nil {
			return nil, err
		}
	}
	return rej, nil
}

// freshTasks are the tasks expansion x of group added.
type freshTasks struct {
	group string
	x     *Expansion
}

// task is the new record of task i (one of f's).
func (f freshTasks) task(runID string, i int) Task {
	k, j := (i-f.x.Base)/len(f.x.Names), (i-f.x.Base)%len(f.x.Names)
	return Task{RunID: runID, Index: i, Name: ExpandedName(f.group, f.x.Loop, k, f.x.Names[j]), State: spec.TaskPending}
}

// expandTask starts group t and adds its tasks' count to run (the caller
// writes the tasks: freshTasks), or says why not.
func expandTask(run *Run, t *Task, it Transition, noNewAttempts bool) string {
	x := it.Expand
	switch {
	case t.State != spec.TaskPending || it.From != spec.TaskPending || it.To != spec.TaskRunning:
		return fmt.Sprintf("a group starts from PENDING to RUNNING (task is %s)", t.State)
	case noNewAttempts:
		return "run is canceled or final: no group starts"
	case x.Task != it.Task:
		return fmt.Sprintf("expansion names task %d", x.Task)
	case x.Base != run.TaskCount:
		return fmt.Sprintf("expansion base %d is not the run's task count %d", x.Base, run.TaskCount)
	case x.Count < 0 || len(x.Names) == 0 || x.Count > (1<<31-1-run.TaskCount)/len(x.Names):
		return fmt.Sprintf("expansion of %d instances of %d tasks is invalid", x.Count, len(x.Names))
	}
	t.State, t.StartedAt = spec.TaskRunning, it.Time
	run.TaskCount += x.Count * len(x.Names)
	run.Expansions = append(run.Expansions, *x)
	return ""
}

// transitionTask applies it to t, or returns why not (leaving t unchanged).
func transitionTask(t *Task, it Transition, noNewAttempts bool) string {
	if t.State.Final() {
		return fmt.Sprintf("task is already %s", t.State)
	}
	if t.State != it.From {
		return fmt.Sprintf("stale: task is %s", t.State)
	}
	cur := len(t.Attempts)
	switch {
	case it.From == spec.TaskPending && it.To == spec.TaskRunning:
		if noNewAttempts {
			return "run is canceled or final: no new attempt"
		}
		if it.Attempt != cur+1 {
			return fmt.Sprintf("stale attempt: next attempt is %d", cur+1)
		}
		if cur == 0 {
			t.StartedAt = it.Time
		}
		t.Attempts = append(t.Attempts, newAttempt(it))
		t.State = spec.TaskRunning
		if it.CacheKey != "" {
			t.CacheKey = it.CacheKey
		}
	case it.From == spec.TaskRunning && it.To == spec.TaskRunning:
		if cur == 0 {
			return "a group has no attempts"
		}
		if noNewAttempts {
			return "run is canceled or final: no new attempt"
		}
		if it.Attempt != cur+1 {
			return fmt.Sprintf("stale attempt: a new attempt must be %d", cur+1)
		}
		last := &t.Attempts[cur-1]
		last.State, last.FinishedAt, last.Error = spec.TaskFailed, it.Time, it.Error
		t.Attempts = append(t.Attempts, newAttempt(it))
	case it.From == spec.TaskRunning && it.To == spec.TaskPending:
		if it.Attempt != cur || cur == 0 {
			return fmt.Sprintf("stale attempt: current attempt is %d", cur)
		}
		last := &t.Attempts[cur-1]
		last.State, last.FinishedAt, last.Error, last.Logs = spec.TaskFailed, it.Time, it.Error, it.Logs
		t.State, t.Error = spec.TaskPending, it.Error
	case it.From == spec.TaskRunning && it.Attempt == 0 && cur == 0 && (it.To == spec.TaskSucceeded || it.To == spec.TaskFailed || it.To == spec.TaskCanceled):
		// A group ends.
		t.State, t.FinishedAt, t.Error = it.To, it.Time, it.Error
		if it.To == spec.TaskSucceeded {
			t.Outputs = it.Outputs
		}
	case it.From == spec.TaskPending && it.To == spec.TaskFailed && it.Attempt == 0:
		t.State, t.FinishedAt, t.Error = spec.TaskFailed, it.Time, it.Error
	case it.From == spec.TaskRunning && (it.To == spec.TaskSucceeded || it.To == spec.TaskFailed || it.To == spec.TaskCanceled):
		if it.Attempt != cur || cur == 0 {
			return fmt.Sprintf("stale attempt: current attempt is %d", cur)
		}
		last := &t.Attempts[cur-1]
		last.State, last.FinishedAt, last.Error, last.Logs = it.To, it.Time, it.Error, it.Logs
		t.State, t.FinishedAt, t.Error = it.To, it.Time, it.Error
		if it.To == spec.TaskSucceeded {
			t.Outputs = it.Outputs
		}
	case it.From == spec.TaskPending && it.To == spec.TaskSucceeded:
		if it.CachedFrom == "" {
			return "transition not allowed: only a cache hit (cached_from) succeeds without an attempt"
		}
		if noNewAttempts {
			return "run is canceled or final: no cache hit"
		}
		t.State, t.StartedAt, t.FinishedAt, t.Outputs = spec.TaskSucceeded, it.Time, it.Time, it.Outputs
		t.CachedFrom, t.CacheKey, t.Error = it.CachedFrom, it.CacheKey, ""
	case it.From == spec.TaskPending && (it.To == spec.TaskSkipped || it.To == spec.TaskCanceled):
		t.State, t.FinishedAt, t.Error = it.To, it.Time, it.Error
	default:
		return "transition not allowed"
	}
	return ""
}

func newAttempt(it Transition) Attempt {
	return Attempt{N: it.Attempt, ExecutionID: it.ExecutionID, Executor: it.Executor, State: spec.TaskRunning, StartedAt: it.Time}
}

func putTaskTx(tx *bolt.Tx, t *Task) error {
	_, _, err := writeTaskTx(tx, t)
	return err
}

// writeTaskTx writes t and returns its key and the bytes stored.
func writeTaskTx(tx *bolt.Tx, t *Task) (key, stored []byte, err error) {
	b, err := encodeTask(t)
	if err != nil {
		return nil, nil, fmt.Errorf("encode task %q/%d: %w", t.RunID, t.Index, err)
	}
	k := taskKey(t.RunID, t.Index)
	return k, b, tx.Bucket(bucketTasks).Put(k, b)
}

// bulkTasks makes the pages bbolt splits in the tasks bucket when tx
// commits tasksFill full instead of half (the fill is the bucket's, read
// at commit): for a commit that writes a run's new tasks in key order
// (its creation, a loop's expansion).
func bulkTasks(tx *bolt.Tx) { tx.Bucket(bucketTasks).FillPercent = tasksFill }

// tasksFill is how full bbolt fills the pages it splits in the tasks
// bucket in a commit that creates a run's tasks (its creation, a loop's
// expansion): they are written in key order, all at once, and bbolt's
// default of half full would write, and hold in memory while committing,
// twice the pages. Other commits keep the default, which leaves room for
// the records that grow as their tasks run.
const tasksFill = 0.9

// taskMemo is a task record an entry wrote, with the bytes stored.
type taskMemo struct {
	raw []byte
	t   *Task
}

// putTask writes t, and keeps it decoded for the entry's later commands
// when ch.memoTasks: an entry that starts attempts and assigns their
// executions reads back each task its transitions just wrote.
func (ch *Change) putTask(tx *bolt.Tx, t *Task) error {
	if ch == nil || !ch.memoTasks {
		return putTaskTx(tx, t)
	}
	k, b, err := writeTaskTx(tx, t)
	if err != nil {
		return err
	}
	if ch.tasks == nil {
		ch.tasks = make(map[string]taskMemo)
	}
	ch.tasks[string(k)] = taskMemo{raw: b, t: t}
	return nil
}

// task reads a task for a command that only looks at it. As with the run
// memo, a record the entry wrote is used as written while the stored
// bytes are the very same ones (sameBytes).
func (ch *Change) task(tx *bolt.Tx, runID string, index int) (Task, error) {
	if ch == nil || ch.tasks == nil || index < 0 || index > 1<<31 {
		return getTaskTx(tx, runID, index)
	}
	k := taskKey(runID, index)
	v := ch.get(tx, bucketTasks, k)
	if m, ok := ch.tasks[string(k)]; ok && sameBytes(m.raw, v) {
		return *m.t, nil
	}
	return taskOf(v, runID, index)
}

func getTaskTx(tx *bolt.Tx, runID string, index int) (Task, error) {
	if index < 0 || index > 1<<31 {
		return Task{}, fmt.Errorf("task %q/%d: %w", runID, index, ErrNotFound)
	}
	return taskOf(tx.Bucket(bucketTasks).Get(taskKey(runID, index)), runID, index)
}

// taskOf decodes the stored record v of task runID/index (nil: there is
// none).
func taskOf(v []byte, runID string, index int) (Task, error) {
	if v == nil {
		return Task{}, fmt.Errorf("task %q/%d: %w", runID, index, ErrNotFound)
	}
	var t Task
	if err := decodeTask(v, &t); err != nil {
		return Task{}, fmt.Errorf("decode task %q/%d: %w", runID, index, err)
	}
	return t, nil
}

// tasksTx returns the run's tasks ordered by index.
func tasksTx(tx *bolt.Tx, runID string) ([]Task, error) {
	if tx.Bucket(bucketRuns).Get([]byte(runID)) == nil {
		return nil, fmt.Errorf("tasks of run %q: %w", runID, ErrNotFound)
	}
	prefix := taskPrefix(runID)
	c := tx.Bucket(bucketTasks).Cursor()
	var out []Task
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var t Task
		if err := decodeTask(v, &t); err != nil {
			return nil, fmt.Errorf("decode task %q: %w", k, err)
		}
		out = append(out, t)
	}
	return out, nil
}

// TreeOrder returns tasks (a run's, ordered by index) with each started
// group's tasks right after the group, iteration by iteration, for
// display.
func TreeOrder(r Run, tasks []Task) []Task {
	if len(r.Expansions) == 0 {
		return tasks
	}
	byIndex := make(map[int]*Task, len(tasks))
	for i := range tasks {
		byIndex[tasks[i].Index] = &tasks[i]
	}
	children := make(map[int][]Expansion, len(r.Expansions))
	inGroup := make(map[int]bool)
	for _, x := range r.Expansions {
		children[x.Task] = append(children[x.Task], x)
		for i := x.Base; i < x.Base+x.Count*len(x.Names); i++ {
			inGroup[i] = true
		}
	}
	out := make([]Task, 0, len(tasks))
	var emit func(i int)
	emit = func(i int) {
		t, ok := byIndex[i]
		if !ok {
			return
		}
		out = append(out, *t)
		for _, x := range children[i] {
			for j := x.Base; j < x.Base+x.Count*len(x.Names); j++ {
				emit(j)
			}
		}
	}
	for _, t := range tasks {
		if !inGroup[t.Index] {
			emit(t.Index)
		}
	}
	return out
}

// Groups returns the indices of the run's tasks that started as groups.
func Groups(r Run) map[int]bool {
	g := make(map[int]bool, len(r.Expansions))
	for _, x := range r.Expansions {
		g[x.Task] = true
	}
	return g
}
