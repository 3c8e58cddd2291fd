package engine_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

const gpuWait = "0/3 nodes: Insufficient nvidia.com/gpu"

// waiter reports EventWaiting before each execution starts (as the kube
// executor does for a pod that cannot be scheduled), and records its
// DeleteOrphans calls.
type waiter struct {
	*sim.Executor
	mu     sync.Mutex
	orphan []func(string) bool
}

func (w *waiter) Name() string { return "sim" }

func (w *waiter) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	report(executors.Event{ID: s.ID, Kind: executors.EventWaiting, Reason: gpuWait, Time: time.Now()})
	return w.Executor.Start(ctx, s, report)
}

func (w *waiter) DeleteOrphans(_ context.Context, known func(string) bool) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.orphan = append(w.orphan, known)
	return nil, nil
}

func (w *waiter) calls() []func(string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]func(string) bool(nil), w.orphan...)
}

var _ engine.OrphanDeleter = (*waiter)(nil)

func waiterHarness(t *testing.T, cfg sim.Config) (*store.Store, *engine.Engine, *waiter, func() []engine.Update) {
	t.Helper()
	scfg := store.DefaultConfig(filepath.Join(t.TempDir(), "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	w := &waiter{Executor: sim.New(cfg)}
	var mu sync.Mutex
	var ups []engine.Update
	ecfg := engine.DefaultConfig(st, w)
	ecfg.OnUpdate = func(u []engine.Update) { mu.Lock(); ups = append(ups, u...); mu.Unlock() }
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return st, eng, w, func() []engine.Update { mu.Lock(); defer mu.Unlock(); return append([]engine.Update(nil), ups...) }
}

func TestEngine_WaitingReasonReachesTheUpdateFeed(t *testing.T) {
	t.Parallel()
	st, eng, _, updates := waiterHarness(t, sim.Config{})
	id, err := eng.Submit(context.Background(), mustPlan(t, "name: w\nexecutor: sim\ntasks:\n  - name: train\n    command: [x]\n"), nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitRunFinal(t, st, id, 30*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, u := range updates() {
			if u.RunID == id && u.Name == "train" && u.TaskState == spec.TaskRunning && u.Attempt == 1 && u.Reason == "waiting: "+gpuWait {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiting update for train in %+v", updates())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEngine_ResumeDeletesOrphansWithTheStoreAsKnown(t *testing.T) {
	t.Parallel()
	st, eng, w, _ := waiterHarness(t, sim.Config{Tasks: map[string]sim.Behavior{"train": {Duration: time.Hour}}})
	id, err := eng.Submit(context.Background(), mustPlan(t, "name: w\nexecutor: sim\ntasks:\n  - name: train\n    command: [x]\n"), nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if tk, err := st.Task(id, 0); err == nil && tk.State == spec.TaskRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("task did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	for len(w.calls()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("DeleteOrphans not called after Resume")
		}
		time.Sleep(10 * time.Millisecond)
	}
	known := w.calls()[0]
	for _, c := range []struct {
		id   string
		want bool
	}{
		{executors.ExecutionID(id, 0, 1), true},      // the running attempt
		{executors.ExecutionID(id, 0, 2), false},     // an attempt the store never made
		{executors.ExecutionID(id, 7, 1), false},     // no such task
		{executors.ExecutionID("gone", 0, 1), false}, // no such run
		{"not-an-execution", false},
	} {
		if got := known(c.id); got != c.want {
			t.Errorf("known(%q) = %v, want %v", c.id, got, c.want)
		}
	}
}
