package engine

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

func (e *Engine) waiterCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, chs := range e.waiters {
		n += len(chs)
	}
	return n + len(e.waiters) // an empty list left behind counts too
}

// TestEngine_WaitLeavesNoWaiterBehind: Wait on a finished run, and a Wait
// whose context ends, forget their waiter.
func TestEngine_WaitLeavesNoWaiterBehind(t *testing.T) {
	t.Parallel()
	scfg := store.DefaultConfig(filepath.Join(t.TempDir(), "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(DefaultConfig(st, sim.New(sim.Config{Tasks: map[string]sim.Behavior{"slow": {Duration: time.Hour}}})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	plan := func(task string) *spec.Plan {
		p, err := spec.ParseSkiff([]byte("name: w\nexecutor: sim\ntasks:\n  - name: " + task + "\n    command: [x]\n"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	id, err := e.Submit(context.Background(), plan("quick"), nil, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer wcancel()
	for i := 0; i < 100; i++ {
		if r, err := e.Wait(wctx, id); err != nil || r.State != spec.RunSucceeded {
			t.Fatalf("wait: %s, %v", r.State, err)
		}
	}
	if n := e.waiterCount(); n != 0 {
		t.Errorf("%d waiters left after 100 waits on a finished run", n)
	}

	slow, err := e.Submit(context.Background(), plan("slow"), nil, SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		c, cc := context.WithTimeout(context.Background(), time.Millisecond)
		if _, err := e.Wait(c, slow); err == nil {
			t.Fatal("wait on a running run returned before its context ended")
		}
		cc()
	}
	if n := e.waiterCount(); n != 0 {
		t.Errorf("%d waiters left after waits that timed out", n)
	}
}
