package worker

import (
	"context"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"

	"github.com/skiffml/skiff/store"
)

// TestLatestAssignments: a batch of changes folds into one update per
// execution, in the order each was first changed, with its last state
// and that state's index; a drop is nil; a change without states asks
// for a read; skipped executions are left out.
func TestLatestAssignments(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	made := &store.Assignment{ExecutionID: "a", NodeID: "n1", Spec: []byte(`{"id":"a"}`)}
	started := &store.Assignment{ExecutionID: "a", NodeID: "n1", StartedAt: t0}
	b := &store.Assignment{ExecutionID: "b", NodeID: "n2"}
	exited := &store.Assignment{ExecutionID: "a", NodeID: "n1", StartedAt: t0, Exit: &store.Exit{Outcome: store.OutcomeSucceeded}}
	changes := []store.Change{
		{Index: 1, Assignments: []string{"a", "b"}, AssignmentNodes: []string{"n1", "n2"}, AssignmentStates: []*store.Assignment{made, b}},
		{Index: 2, Assignments: []string{"a"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*store.Assignment{started}},
		{Index: 3, Assignments: []string{"c"}}, // made elsewhere: no nodes, no states
		{Index: 4, Assignments: []string{"b"}, AssignmentNodes: []string{"n2"}, AssignmentStates: []*store.Assignment{nil}},
	}
	got := latestAssignments(changes, nil)
	if len(got) != 3 || got[0].id != "a" || got[1].id != "b" || got[2].id != "c" {
		t.Fatalf("updates %+v, want a, b, c in that order", got)
	}
	if a := got[0].a; !got[0].known || a != started || got[0].at != 2 {
		t.Errorf("a: %+v (known %v, at %d), want its start, at index 2", a, got[0].known, got[0].at)
	}
	if !got[1].known || got[1].a != nil {
		t.Errorf("b: %+v, want dropped (nil, known)", got[1])
	}
	if got[2].known {
		t.Errorf("c: %+v, want unknown (to be read)", got[2])
	}

	changes = append(changes, store.Change{Index: 5, Assignments: []string{"a"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*store.Assignment{exited}})
	got = latestAssignments(changes, func(id, node string) bool { return node != "n1" })
	if len(got) != 2 || got[0].id != "a" || got[1].id != "c" {
		t.Fatalf("skipping n2's: %+v, want a and c", got)
	}
	if a := got[0].a; a != exited {
		t.Errorf("a: %+v, want its exit", a)
	}
}

// countingState counts the assignment reads a worker makes.
type countingState struct {
	*store.Store
	reads atomic.Int64
}

func (s *countingState) Assignment(id string) (store.Assignment, error) {
	s.reads.Add(1)
	return s.Store.Assignment(id)
}

// startCounter is a "sim" executor that counts its starts and runs
// nothing.
type startCounter struct {
	mu     sync.Mutex
	starts []string
}

func (x *startCounter) Name() string          { return "sim" }
func (x *startCounter) Root(id string) string { return "/nowhere/" + id }
func (x *startCounter) Start(_ context.Context, s *executors.Spec, _ func(executors.Event)) error {
	x.mu.Lock()
	x.starts = append(x.starts, s.ID)
	x.mu.Unlock()
	return nil
}
func (x *startCounter) Cancel(context.Context, string) error                      { return nil }
func (x *startCounter) Logs(context.Context, string, bool) (io.ReadCloser, error) { return nil, nil }
func (x *startCounter) Running(context.Context) ([]string, error)                 { return nil, nil }

func (x *startCounter) started() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return slices.Clone(x.starts)
}

// TestWorker_ActsOnChangesStatesNeverBehindARead: the worker starts an
// assignment from the state its change carries, without reading it back;
// a change no newer than a rescan's read is read again instead, so an
// assignment made and dropped before the rescan is not started from its
// old state (its attempt has ended).
func TestWorker_ActsOnChangesStatesNeverBehindARead(t *testing.T) {
	st, _, _ := placeFixture(t)
	state := &countingState{Store: st}
	x := &startCounter{}
	w, err := New(Config{NodeID: "n1", Capacity: spec.Resources{MilliCPU: 4000}, Executors: []executors.Executor{x}, Proposer: st, State: state, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.epoch = 1 // registered (placeFixture registers n1 at epoch 1)
	ctx := context.Background()
	now := time.Now().UTC()
	apply := func(cmds ...store.Command) {
		t.Helper()
		if res, err := st.Apply(ctx, cmds...); err != nil || len(res.Rejected) > 0 {
			t.Fatalf("apply: %v %+v", err, res.Rejected)
		}
	}
	assign := func(id string, task int) store.Command {
		return store.AssignExecution{Assignment: store.Assignment{ExecutionID: id, RunID: "r1", Task: task, Attempt: 1, NodeID: "n1", Epoch: 1,
			Executor: "sim", AssignedAt: now, Spec: []byte(`{"id":"` + id + `","run_id":"r1","command":["x"]}`)}}
	}
	next := func(sub *store.Subscription) []store.Change {
		t.Helper()
		select {
		case <-sub.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("no change")
		}
		chs, lagged := sub.Next()
		if lagged {
			t.Fatal("lagged")
		}
		return chs
	}

	// Made and dropped before the rescan; its making is told after it.
	sub := st.Subscribe(0)
	defer sub.Close()
	apply(assign("r1-0-1", 0))
	made := next(sub)
	apply(store.TransitionTasks{RunID: "r1", Items: []store.Transition{{Task: 0, Attempt: 1, From: spec.TaskRunning, To: spec.TaskCanceled, Time: now}}})
	next(sub)
	w.rescan(ctx)
	w.onChanges(ctx, made)
	if got := x.started(); len(got) != 0 {
		t.Fatalf("started %v from a state older than the rescan's read", got)
	}

	// Made after the rescan: started from its change, not read back.
	reads := state.reads.Load()
	apply(assign("r1-1-1", 1))
	w.onChanges(ctx, next(sub))
	if got := x.started(); !slices.Equal(got, []string{"r1-1-1"}) {
		t.Fatalf("started %v, want r1-1-1", got)
	}
	if n := state.reads.Load() - reads; n != 0 {
		t.Errorf("%d assignment reads for a change that carries the assignment, want 0", n)
	}
}

// TestDispatcher_LoadNeverBehindARead: the dispatcher's load follows the
// states the changes carry, but not one no newer than its rescan's read:
// an assignment made and dropped before the rescan does not count again
// when its making is told after it.
func TestDispatcher_LoadNeverBehindARead(t *testing.T) {
	st, d, _ := placeFixture(t)
	ctx := context.Background()
	now := time.Now().UTC()
	sub := st.Subscribe(0)
	defer sub.Close()
	next := func() []store.Change {
		t.Helper()
		select {
		case <-sub.Ready():
		case <-time.After(10 * time.Second):
			t.Fatal("no change")
		}
		chs, _ := sub.Next()
		return chs
	}
	for _, id := range []string{"r1-0-1", "r1-1-1"} {
		task := 0
		if id == "r1-1-1" {
			task = 1
		}
		if _, err := st.Apply(ctx, store.AssignExecution{Assignment: store.Assignment{ExecutionID: id, RunID: "r1", Task: task, Attempt: 1, NodeID: "n1", Epoch: 1,
			Executor: "sim", AssignedAt: now, Resources: spec.Resources{MilliCPU: 1000}}}); err != nil {
			t.Fatal(err)
		}
	}
	made := next()
	if _, err := st.Apply(ctx, store.TransitionTasks{RunID: "r1", Items: []store.Transition{{Task: 0, Attempt: 1, From: spec.TaskRunning, To: spec.TaskCanceled, Time: now}}}); err != nil {
		t.Fatal(err)
	}
	next()
	d.rescan()
	d.onChanges(made)
	d.mu.Lock()
	_, stale := d.load["r1-0-1"]
	_, live := d.load["r1-1-1"]
	d.mu.Unlock()
	if stale || !live {
		t.Fatalf("load holds r1-0-1 %v (dropped before the rescan; want false), r1-1-1 %v (want true)", stale, live)
	}
}

// ctxExecutor is a "sim" executor whose Start fails once ctx is done, as
// the sim and local executors do.
type ctxExecutor struct{ startCounter }

func (x *ctxExecutor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return x.startCounter.Start(ctx, s, report)
}

// TestWorker_StoppingReportsNoFailure: an assignment a stopping worker
// (its context done) can no longer start is not reported FAILED with the
// stop's "context canceled" (its run would fail for good): it is left to
// end lost and run again.
func TestWorker_StoppingReportsNoFailure(t *testing.T) {
	st, _, _ := placeFixture(t)
	w, err := New(Config{NodeID: "n1", Capacity: spec.Resources{MilliCPU: 4000}, Executors: []executors.Executor{&ctxExecutor{}}, Proposer: st, State: st, Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w.epoch = 1
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w.start(ctx, store.Assignment{ExecutionID: "r1-0-1", RunID: "r1", Task: 0, Attempt: 1, NodeID: "n1", Epoch: 1, Executor: "sim",
		Spec: []byte(`{"id":"r1-0-1","run_id":"r1","command":["x"]}`)}, 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.reports) != 0 {
		t.Fatalf("a stopping worker queued %+v", w.reports)
	}
	if _, ok := w.running["r1-0-1"]; ok {
		t.Fatal("an execution that did not start is held as running")
	}
}
