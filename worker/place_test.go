package worker

import (
	"context"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// placeFixture is a store holding run r1, its task 0 and 1 RUNNING
// (attempt 1) and node n1 up at epoch 1, and a dispatcher over it.
func placeFixture(t *testing.T) (*store.Store, *Dispatcher, *Remote) {
	t.Helper()
	cfg := store.DefaultConfig(filepath.Join(t.TempDir(), "store"))
	cfg.NoSync = true
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	must := func(cmds ...store.Command) {
		t.Helper()
		res, err := st.Apply(context.Background(), cmds...)
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("apply: %v %+v", err, res.Rejected)
		}
	}
	must(store.RegisterNode{Node: store.Node{ID: "n1", Executors: []string{"sim"}}, Epoch: 1, Time: now},
		store.CreateRun{Run: store.Run{ID: "r1", Name: "r1", State: spec.RunRunning, CreatedAt: now, Plan: []byte(`{"name":"p"}`)}, TaskNames: []string{"a", "b"}})
	must(store.TransitionTasks{RunID: "r1", Items: []store.Transition{
		{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: now, ExecutionID: "r1-0-1", Executor: "sim"},
		{Task: 1, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: now, ExecutionID: "r1-1-1", Executor: "sim"},
	}})
	d, err := NewDispatcher(DispatchConfig{Store: st, Kinds: []string{"sim"}, NodeTTL: time.Minute, Interval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return st, d, d.kinds["sim"]
}

type events struct {
	mu  sync.Mutex
	evs []executors.Event
}

func (e *events) report(ev executors.Event) { e.mu.Lock(); e.evs = append(e.evs, ev); e.mu.Unlock() }

func (e *events) list() []executors.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]executors.Event(nil), e.evs...)
}

// TestRemote_PlacedRefusalsArePlacedAgainOrEnded: a placement the store
// refuses because its node registered again meanwhile (a stale epoch) is
// placed again by the dispatcher, at the node's new epoch; one refused
// because the run was cancelled ends CANCELED; one never committed is
// forgotten (no event, no load).
func TestRemote_PlacedRefusalsArePlacedAgainOrEnded(t *testing.T) {
	st, d, r := placeFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	wait := d.Start(ctx) // a term begins, as the leader's engine starts
	defer func() { cancel(); wait() }()
	var got events
	specs := []*executors.Spec{
		{ID: "r1-0-1", RunID: "r1", TaskIndex: 0, Attempt: 1, Command: []string{"x"}},
		{ID: "r1-1-1", RunID: "r1", TaskIndex: 1, Attempt: 1, Command: []string{"x"}},
	}
	cmds := r.Place(specs, got.report)
	if len(cmds) != 2 || cmds[0] == nil || cmds[1] == nil {
		t.Fatalf("Place: %v, want both placed on n1", cmds)
	}
	if a := cmds[0].(store.AssignExecution).Assignment; a.NodeID != "n1" || a.Epoch != 1 {
		t.Fatalf("placed on %s at epoch %d, want n1 at 1", a.NodeID, a.Epoch)
	}
	// A rescan (after the feed lagged) while they are being committed
	// keeps them in the load: they are not in the store yet.
	d.rescan()
	d.mu.Lock()
	inLoad := len(d.load)
	d.mu.Unlock()
	if inLoad != 2 {
		t.Errorf("after a rescan the load holds %d executions, want the 2 being placed", inLoad)
	}
	// n1 registers again before the placements commit.
	if _, err := st.Apply(context.Background(), store.RegisterNode{Node: store.Node{ID: "n1", Executors: []string{"sim"}}, Epoch: 2, Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	res, err := st.Apply(context.Background(), cmds[0])
	if err != nil || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "stale epoch") {
		t.Fatalf("commit of the stale placement: %v %+v; want refused for its stale epoch", err, res.Rejected)
	}
	r.Placed("r1-0-1", false, res.Rejected[0].Reason)
	r.Placed("r1-1-1", false, "") // never committed
	deadline := time.Now().Add(10 * time.Second)
	for {
		a, err := st.Assignment("r1-0-1")
		if err == nil {
			if a.NodeID != "n1" || a.Epoch != 2 {
				t.Fatalf("placed again on %s at epoch %d, want n1 at 2", a.NodeID, a.Epoch)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refused placement was not placed again: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := st.Assignment("r1-1-1"); err == nil {
		t.Error("the placement never committed was assigned all the same")
	}
	d.mu.Lock()
	_, followed := d.followed["r1-1-1"]
	_, loaded := d.load["r1-1-1"]
	d.mu.Unlock()
	if followed || loaded {
		t.Errorf("the placement never committed is still followed (%v) or counted in the load (%v)", followed, loaded)
	}

	// A placement refused for a cancelled run ends CANCELED.
	cmds = r.Place(specs[1:], got.report)
	if len(cmds) != 1 || cmds[0] == nil {
		t.Fatalf("Place: %v", cmds)
	}
	if _, err := st.Apply(context.Background(), store.RequestCancel{RunID: "r1", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	res, err = st.Apply(context.Background(), cmds[0])
	if err != nil || len(res.Rejected) != 1 {
		t.Fatalf("commit after the cancel: %v %+v; want refused", err, res.Rejected)
	}
	r.Placed("r1-1-1", false, res.Rejected[0].Reason)
	var end *executors.Event
	for _, ev := range got.list() {
		if ev.ID == "r1-1-1" && ev.Kind == executors.EventExited {
			end = &ev
		}
	}
	if end == nil || end.State != spec.TaskCanceled {
		t.Fatalf("events %+v: want r1-1-1 ended CANCELED", got.list())
	}
}

// countingStore counts the dispatcher's reads of single assignments.
type countingStore struct {
	DispatchStore
	mu    sync.Mutex
	reads map[string]int
}

func (c *countingStore) Assignment(id string) (store.Assignment, error) {
	c.mu.Lock()
	c.reads[id]++
	c.mu.Unlock()
	return c.DispatchStore.Assignment(id)
}

// TestRemote_PlacedReadsOnlyWhatItMissed: a committed placement is not
// read back (its own change settles its load: a read per placement was
// 3 % of a cluster fan-out's CPU), except one that a rescan while it was
// being committed did not find: it may have ended since, and its load
// must not stay counted.
func TestRemote_PlacedReadsOnlyWhatItMissed(t *testing.T) {
	st, d, r := placeFixture(t)
	cs := &countingStore{DispatchStore: st, reads: map[string]int{}}
	d.cfg.Store = cs
	// No Start: the test delivers what the dispatcher sees itself.
	d.mu.Lock()
	d.termStart = d.now()
	d.mu.Unlock()
	var got events
	specs := []*executors.Spec{
		{ID: "r1-0-1", RunID: "r1", TaskIndex: 0, Attempt: 1, Command: []string{"x"}},
		{ID: "r1-1-1", RunID: "r1", TaskIndex: 1, Attempt: 1, Command: []string{"x"}},
	}
	missed := r.Place(specs[1:], got.report)
	d.rescan() // before r1-1-1 commits: it finds nothing
	seen := r.Place(specs[:1], got.report)
	if len(missed) != 1 || missed[0] == nil || len(seen) != 1 || seen[0] == nil {
		t.Fatalf("Place: %v %v", seen, missed)
	}
	must := func(cmds ...store.Command) {
		t.Helper()
		res, err := st.Apply(context.Background(), cmds...)
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("apply: %v %+v", err, res.Rejected)
		}
	}
	must(seen[0], missed[0])
	// r1-1-1 ends (its assignment is dropped) before Placed is told.
	must(store.TransitionTasks{RunID: "r1", Items: []store.Transition{
		{Task: 1, Attempt: 1, From: spec.TaskRunning, To: spec.TaskSucceeded, Time: time.Now().UTC()}}})
	cs.mu.Lock()
	clear(cs.reads) // the rescan's
	cs.mu.Unlock()
	r.Placed("r1-0-1", true, "")
	r.Placed("r1-1-1", true, "")
	cs.mu.Lock()
	reads := maps.Clone(cs.reads)
	cs.mu.Unlock()
	if reads["r1-0-1"] != 0 || reads["r1-1-1"] != 1 {
		t.Errorf("Placed read the assignments %v times; want r1-1-1 (missed) once and r1-0-1 never", reads)
	}
	d.mu.Lock()
	_, seenLoad := d.load["r1-0-1"]
	_, missedLoad := d.load["r1-1-1"]
	d.mu.Unlock()
	if !seenLoad || missedLoad {
		t.Errorf("load holds r1-0-1 %v (want true) and r1-1-1 %v (want false: it ended)", seenLoad, missedLoad)
	}
}
