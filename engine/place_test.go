package engine_test

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// placingExec is an engine.Placer: it assigns each execution to node
// (which may not exist), and, as a worker would, ends each committed one
// at once; a refused one it ends FAILED with the store's reason.
type placingExec struct {
	node string

	mu      sync.Mutex
	report  func(executors.Event)
	placed  map[string]bool   // committed
	refused map[string]string // the store's reasons
	starts  int
}

var _ engine.Placer = (*placingExec)(nil)

func (x *placingExec) Name() string { return "placing" }

func (x *placingExec) Root(id string) string { return "/nowhere/" + id }

func (x *placingExec) Start(_ context.Context, s *executors.Spec, report func(executors.Event)) error {
	x.mu.Lock()
	x.starts++
	x.mu.Unlock()
	go report(executors.Event{ID: s.ID, Kind: executors.EventExited, State: spec.TaskSucceeded, Time: time.Now()})
	return nil
}

func (x *placingExec) Cancel(context.Context, string) error { return nil }

func (x *placingExec) Running(context.Context) ([]string, error) { return nil, nil }

func (x *placingExec) Logs(context.Context, string, bool) (io.ReadCloser, error) { return nil, nil }

func (x *placingExec) Place(specs []*executors.Spec, report func(executors.Event)) []store.Command {
	x.mu.Lock()
	x.report = report
	x.mu.Unlock()
	out := make([]store.Command, len(specs))
	for i, s := range specs {
		out[i] = store.AssignExecution{Assignment: store.Assignment{ExecutionID: s.ID, RunID: s.RunID, Task: s.TaskIndex, Attempt: s.Attempt,
			NodeID: x.node, Epoch: 1, Executor: x.Name(), AssignedAt: time.Now().UTC()}}
	}
	return out
}

func (x *placingExec) Placed(id string, committed bool, reason string) {
	x.mu.Lock()
	report := x.report
	if committed {
		x.placed[id] = true
	} else {
		x.refused[id] = reason
	}
	x.mu.Unlock()
	ev := executors.Event{ID: id, Kind: executors.EventExited, State: spec.TaskSucceeded, Time: time.Now()}
	if !committed {
		ev.State, ev.ExitCode, ev.Reason = spec.TaskFailed, -1, "not assigned: "+reason
	}
	go report(ev)
}

// TestEngine_PlacerCommitsPlacementsWithTheirAttempts: an executor that
// places its executions (the cluster's dispatcher) gets them placed in
// the entry that records their attempts, one entry a step of a chain, and
// is never asked to Start them; a placement the store refuses is told
// with the store's reason.
func TestEngine_PlacerCommitsPlacementsWithTheirAttempts(t *testing.T) {
	st := placerStore(t)
	x := &placingExec{node: "n1", placed: map[string]bool{}, refused: map[string]string{}}
	sub := st.Subscribe(0)
	defer sub.Close()
	e := startEngine(t, st, nil, x)
	before := st.AppliedIndex()
	id, r := submitAndWait(t, e, mustPlan(t, placerChainYAML))
	if r.State != spec.RunSucceeded {
		t.Fatalf("run: %s (%s)", r.State, r.Error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x.mu.Lock()
	if x.starts != 0 || len(x.placed) != 3 || len(x.refused) != 0 {
		t.Errorf("starts %d, placed %v, refused %v; want 0 starts and 3 placed", x.starts, x.placed, x.refused)
	}
	x.mu.Unlock()
	// Each assignment first shows in the entry that records its attempt.
	first := map[string]bool{}
	for len(first) < 3 {
		select {
		case <-sub.Ready():
		case <-ctx.Done():
			t.Fatalf("the feed told of %d assignments", len(first))
		}
		changes, _ := sub.Next()
		for _, ch := range changes {
			for _, aid := range ch.Assignments {
				if _, seen := first[aid]; seen {
					continue
				}
				task, _ := strconv.Atoi(strings.Split(strings.TrimPrefix(aid, id+"-"), "-")[0])
				first[aid] = slices.Contains(ch.Tasks, store.TaskRef{RunID: id, Task: task})
				if !first[aid] {
					t.Errorf("assignment %s first shows at index %d, without its task's transition (%v)", aid, ch.Index, ch.Tasks)
				}
			}
		}
	}
	// Create, then per step one entry (its attempt and placement, with
	// the previous step's end), the last step's end, the run's end.
	if n := st.AppliedIndex() - before; n > 6 {
		t.Errorf("%d entries for a 3-step chain, want at most 6", n)
	}

	// A placement on a node that is not registered is refused: the
	// executor is told why.
	x2 := &placingExec{node: "ghost", placed: map[string]bool{}, refused: map[string]string{}}
	e2 := startEngine(t, placerStore(t), nil, x2)
	if _, r := submitAndWait(t, e2, mustPlan(t, "name: one\nexecutor: placing\ntasks:\n  - {name: a, command: [x]}\n")); r.State != spec.RunFailed {
		t.Fatalf("run on a ghost node: %s; want FAILED", r.State)
	}
	x2.mu.Lock()
	defer x2.mu.Unlock()
	if len(x2.refused) != 1 || x2.starts != 0 {
		t.Fatalf("refused %v, starts %d; want one refusal", x2.refused, x2.starts)
	}
	for _, why := range x2.refused {
		if !strings.Contains(why, "ghost") {
			t.Errorf("refusal reason %q does not name the node", why)
		}
	}
}

// placerChainYAML is a chain of three steps on the placing executor.
const placerChainYAML = "name: chain\nexecutor: placing\ntasks:\n  - {name: a, command: [x]}\n  - {name: b, command: [x], after: [a]}\n  - {name: c, command: [x], after: [b]}\n"

// submitAndWait submits p to e and waits for the run's end (30 s at most).
func submitAndWait(t *testing.T, e *engine.Engine, p *spec.Plan) (string, store.Run) {
	t.Helper()
	id, err := e.Submit(context.Background(), p, nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := e.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait for run %s: %v", id, err)
	}
	return id, r
}

// placerStore opens a store with node n1 registered, offering "placing".
func placerStore(t *testing.T) *store.Store {
	t.Helper()
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	if _, err := st.Apply(context.Background(), store.RegisterNode{Node: store.Node{ID: "n1", Executors: []string{"placing"}}, Epoch: 1, Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	return st
}

// cancelingPlacer is a placingExec that, as a worker finding the run's
// cancel committed before it starts the first placed execution, ends it
// CANCELED; its report reaches the engine before the feed's news of the
// cancel.
type cancelingPlacer struct {
	*placingExec
	st *store.Store
}

func (x cancelingPlacer) Placed(id string, committed bool, reason string) {
	x.mu.Lock()
	report := x.report
	x.mu.Unlock()
	report(executors.Event{ID: id, Kind: executors.EventExited, State: spec.TaskCanceled, ExitCode: -1,
		Reason: "canceled before it started", Time: time.Now()})
	runID := strings.Join(strings.Split(id, "-")[:5], "-")
	if _, err := x.st.Apply(context.Background(), store.RequestCancel{RunID: runID, Time: time.Now().UTC()}); err != nil {
		panic(err)
	}
}

// TestEngine_CanceledExitBeforeTheFeedsCancelCancelsTheRun: an execution
// that ends CANCELED because its run's cancel is committed (the executor
// saw it before the engine's feed told the loop) cancels the run: the
// steps after it end CANCELED, not SKIPPED below a cancelled upstream.
func TestEngine_CanceledExitBeforeTheFeedsCancelCancelsTheRun(t *testing.T) {
	st := placerStore(t)
	x := cancelingPlacer{placingExec: &placingExec{node: "n1", placed: map[string]bool{}, refused: map[string]string{}}, st: st}
	e := startEngine(t, st, nil, x)
	id, r := submitAndWait(t, e, mustPlan(t, placerChainYAML))
	if r.State != spec.RunCanceled {
		t.Fatalf("run: %s (%s); want CANCELED", r.State, r.Error)
	}
	tasks, err := st.Tasks(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks {
		if tk.State != spec.TaskCanceled {
			t.Errorf("task %s = %s (%s), want CANCELED", tk.Name, tk.State, tk.Error)
		}
	}
}

// TestEngine_PlacerPlacesEveryStartOfAWideFanOut: the starts of a fan-out
// wider than one entry's placements are committed in entries of at most
// that many, each placed with its attempts: none is left to Start (on a
// cluster, to the dispatcher's later entries of its own).
func TestEngine_PlacerPlacesEveryStartOfAWideFanOut(t *testing.T) {
	const n = 2600 // more than twice maxPlaced, past the first part
	var y strings.Builder
	y.WriteString("name: wide\nexecutor: placing\ntasks:\n  - {name: root, command: [x]}\n")
	for i := range n {
		y.WriteString("  - {name: t" + strconv.Itoa(i) + ", command: [x], after: [root]}\n")
	}
	x := &placingExec{node: "n1", placed: map[string]bool{}, refused: map[string]string{}}
	e := startEngine(t, placerStore(t), nil, x)
	if _, r := submitAndWait(t, e, mustPlan(t, y.String())); r.State != spec.RunSucceeded {
		t.Fatalf("run: %s (%s)", r.State, r.Error)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.starts != 0 || len(x.placed) != n+1 || len(x.refused) != 0 {
		t.Errorf("starts %d, placed %d, refused %d; want 0 starts and %d placed", x.starts, len(x.placed), len(x.refused), n+1)
	}
}
