package worker_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/clustertest"
	"github.com/skiffml/skiff/worker"
)

// TestDispatcher_TellsWhyAnExecutionWaits: the engine hears why a step
// has not started, once per change of reason: no worker with its labels,
// then (placed) its worker's own word, then that it started.
func TestDispatcher_TellsWhyAnExecutionWaits(t *testing.T) {
	c := clustertest.MakeCluster(t, 1)
	st := c.Nodes[0].Store
	ctx := context.Background()
	t0 := time.Now().UTC()
	apply := func(cmds ...store.Command) {
		t.Helper()
		res, err := st.Apply(ctx, cmds...)
		if err != nil || len(res.Rejected) > 0 {
			t.Fatalf("apply %T: %v %+v", cmds[0], err, res.Rejected)
		}
	}
	node := func(id string, labels map[string]string) store.RegisterNode {
		return store.RegisterNode{Node: store.Node{ID: id, Executors: []string{"sim"}, Labels: labels}, Epoch: 1, Time: time.Now().UTC()}
	}
	apply(node("plain", nil))
	apply(store.CreateRun{Run: store.Run{ID: "r1", Name: "r1", State: spec.RunRunning, CreatedAt: t0, Plan: []byte(`{"name":"p"}`)}, TaskNames: []string{"a"}})
	apply(store.TransitionTasks{RunID: "r1", Items: []store.Transition{{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r1-0-1"}}})

	d, err := worker.NewDispatcher(worker.DispatchConfig{Store: st, Kinds: []string{"sim"}, NodeTTL: time.Minute, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	defer d.Start(dctx)()
	defer cancel()
	var mu sync.Mutex
	var got []executors.Event
	report := func(ev executors.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() }
	events := func() []executors.Event { mu.Lock(); defer mu.Unlock(); return append([]executors.Event(nil), got...) }
	x := d.Executors()[0]
	if err := x.Start(ctx, &executors.Spec{ID: "r1-0-1", RunID: "r1", TaskIndex: 0, Attempt: 1, NodeSelector: map[string]string{"gpu": "a100"}}, report); err != nil {
		t.Fatal(err)
	}
	c.Eventually("a waiting event naming the labels", func() error {
		evs := events()
		if len(evs) == 0 || evs[0].Kind != executors.EventWaiting || !strings.Contains(evs[0].Reason, "labels gpu=a100") {
			return fmt.Errorf("events %+v", evs)
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // several placement rounds
	if n := len(events()); n != 1 {
		t.Fatalf("%d events for one unchanged reason: %+v", n, events())
	}
	apply(node("gpu", map[string]string{"gpu": "a100"}))
	c.Eventually("the assignment to the labeled node", func() error {
		a, err := st.Assignment("r1-0-1")
		if err != nil || a.NodeID != "gpu" {
			return fmt.Errorf("%+v %v", a, err)
		}
		return nil
	})
	// Every worker reads each changed assignment; only its holder reads
	// its spec.
	if a, _ := st.Assignment("r1-0-1"); len(a.Spec) != 0 {
		t.Errorf("Assignment carries the spec: %s", a.Spec)
	}
	if raw, err := st.AssignmentSpec("r1-0-1"); err != nil || !strings.Contains(string(raw), `"r1-0-1"`) {
		t.Errorf("AssignmentSpec: %s %v", raw, err)
	}
	report1 := store.ReportExecution{ExecutionID: "r1-0-1", NodeID: "gpu", Epoch: 1, Waiting: "pulling image busybox", Time: time.Now().UTC()}
	apply(report1)
	apply(report1) // the same word again: nothing new
	// The dispatcher reads the assignment as it is when it gets to the
	// change: let it see the waiting report before the start is applied
	// (under load it could otherwise read both at once, and only the start).
	c.Eventually("the worker's waiting reason", func() error {
		if evs := events(); len(evs) < 2 || evs[1].Reason != "pulling image busybox" {
			return fmt.Errorf("events %+v", evs)
		}
		return nil
	})
	apply(store.ReportExecution{ExecutionID: "r1-0-1", NodeID: "gpu", Epoch: 1, Started: true, Time: time.Now().UTC()})
	c.Eventually("the worker's waiting reason, then the start", func() error {
		evs := events()
		if len(evs) != 3 || evs[1].Kind != executors.EventWaiting || evs[1].Reason != "pulling image busybox" || evs[2].Kind != executors.EventStarted {
			return fmt.Errorf("events %+v", evs)
		}
		return nil
	})
	if a, err := st.Assignment("r1-0-1"); err != nil || a.Waiting != "" {
		t.Fatalf("a started assignment still says it waits: %+v %v", a, err)
	}
	res, err := st.Apply(ctx, store.ReportExecution{ExecutionID: "r1-0-1", NodeID: "gpu", Epoch: 1, Waiting: strings.Repeat("x", store.MaxWaitingReason+1), Time: time.Now().UTC()})
	if err != nil || len(res.Rejected) != 1 || !strings.Contains(res.Rejected[0].Reason, "waiting reason") {
		t.Fatalf("an oversized reason: %+v %v", res, err)
	}
}
