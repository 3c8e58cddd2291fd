package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// checkedStore records, per run, the applied index before the engine's
// last "is the run cancelled?" check that answered no.
type checkedStore struct {
	*store.Store
	mu        sync.Mutex
	lastCheck map[string]uint64
}

func (c *checkedStore) CancelRequested(runID string) (bool, error) {
	idx := c.Store.AppliedIndex()
	canceled, err := c.Store.CancelRequested(runID)
	if err == nil && !canceled {
		c.mu.Lock()
		c.lastCheck[runID] = idx
		c.mu.Unlock()
	}
	return canceled, err
}

// take returns and forgets the last check of runID.
func (c *checkedStore) take(runID string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	idx, ok := c.lastCheck[runID]
	delete(c.lastCheck, runID)
	return idx, ok
}

// cancelGuard is a sim executor that records, for every start, the index
// at which the engine last found its run not cancelled (the engine's start
// queue is serial per executor: that check is this start's).
type cancelGuard struct {
	*sim.Executor
	st     *checkedStore
	mu     sync.Mutex
	starts map[string]uint64 // execution id -> check index
	runOf  map[string]string
	blind  []string // started without a check
}

func (g *cancelGuard) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	idx, ok := g.st.take(s.RunID)
	g.mu.Lock()
	if ok {
		g.starts[s.ID], g.runOf[s.ID] = idx, s.RunID
	} else {
		g.blind = append(g.blind, s.ID)
	}
	g.mu.Unlock()
	return g.Executor.Start(ctx, s, report)
}

// violations lists the starts made after their run's cancel was applied
// (cancelAt: run -> index of its committed cancel), and those made
// without a check.
func (g *cancelGuard) violations(cancelAt map[string]uint64) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := append([]string(nil), g.blind...)
	for id, idx := range g.starts {
		if c, ok := cancelAt[g.runOf[id]]; ok && c <= idx {
			out = append(out, fmt.Sprintf("%s (checked at index %d, cancel applied at %d)", id, idx, c))
		}
	}
	return out
}

// startEngine runs an engine over st until the test ends.
func startEngine(t testing.TB, st *store.Store, edit func(*engine.Config), execs ...executors.Executor) *engine.Engine {
	t.Helper()
	cfg := engine.DefaultConfig(st, execs...)
	if edit != nil {
		edit(&cfg)
	}
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine loop: %v", err)
		}
	})
	return eng
}

// createRunCmd is the CreateRun a proposer other than the engine commits
// for plan p (what another node's API would commit).
func createRunCmd(t testing.TB, id string, p *spec.Plan) store.CreateRun {
	t.Helper()
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(p.Tasks))
	for i := range p.Tasks {
		names[i] = p.Tasks[i].Name
	}
	return store.CreateRun{Run: store.Run{ID: id, PipelineName: p.Name, Name: p.Name, Plan: raw, DefaultExecutor: "sim",
		State: spec.RunPending, CreatedAt: time.Now().UTC(), TaskCount: len(p.Tasks)}, TaskNames: names}
}

func waitRunFinal(t testing.TB, st *store.Store, id string, d time.Duration) store.Run {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		r, err := st.GetRun(id)
		if err == nil && r.State.Final() {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s not final within %s: %+v (err %v)", id, d, r.State, err)
		}
		time.Sleep(5 * time.Millisecond) // polling interval
	}
}

// TestEngine_LearnsOfRunsAndCancelsFromTheLog: a run created and a run
// cancelled by commands committed without the engine (as a follower's API
// or another process would) are scheduled and stopped by the engine.
func TestEngine_LearnsOfRunsAndCancelsFromTheLog(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	startEngine(t, st, nil, sim.New(sim.Config{Tasks: map[string]sim.Behavior{"slow": {Duration: time.Hour}}}))
	quick := mustPlan(t, "name: quick\nexecutor: sim\ntasks:\n  - {name: a, command: [x]}\n  - {name: b, command: [x], after: [a]}\n")
	slow := mustPlan(t, "name: slow\nexecutor: sim\ntasks:\n  - {name: slow, command: [x]}\n")
	ctx := context.Background()
	if _, err := st.Apply(ctx, createRunCmd(t, "run-quick", quick), createRunCmd(t, "run-slow", slow)); err != nil {
		t.Fatal(err)
	}
	if r := waitRunFinal(t, st, "run-quick", 20*time.Second); r.State != spec.RunSucceeded {
		t.Fatalf("run-quick is %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	waitFor(t, func() bool {
		tk, err := st.Task("run-slow", 0)
		return err == nil && tk.State == spec.TaskRunning
	})
	if _, err := st.Apply(ctx, store.RequestCancel{RunID: "run-slow", Time: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	if r := waitRunFinal(t, st, "run-slow", 20*time.Second); r.State != spec.RunCanceled {
		t.Fatalf("run-slow is %s, want CANCELED", r.State)
	}
}

// TestEngine_NoAttemptStartsAfterACommittedCancel (invariant 8): runs with
// wide fan-outs are cancelled by commands committed behind the engine's
// back at random moments; no execution starts once its run's cancel is
// committed, every run ends, and a feed that falls behind (a tiny
// FeedLimit) loses no run or cancel.
func TestEngine_NoAttemptStartsAfterACommittedCancel(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { _ = st.Close() })
	cs := &checkedStore{Store: st, lastCheck: map[string]uint64{}}
	g := &cancelGuard{Executor: sim.New(sim.Config{Default: sim.Behavior{Duration: 2 * time.Millisecond}}), st: cs,
		starts: map[string]uint64{}, runOf: map[string]string{}}
	// A feed of 3 changes falls behind all the time: the rescan path.
	startEngine(t, st, func(c *engine.Config) { c.Store = cs; c.FeedLimit = 3 }, g)
	cancelAt := map[string]uint64{}
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		var ids []string
		ctx := context.Background()
		for k := rapid.IntRange(1, 3).Draw(rt, "runs"); k > 0; k-- {
			width := rapid.IntRange(1, 20).Draw(rt, "width")
			items := make([]int, width)
			for i := range items {
				items[i] = i
			}
			list, _ := json.Marshal(items)
			p := mustPlan(t, fmt.Sprintf("name: fan\nexecutor: sim\ntasks:\n  - name: loop\n    parallelFor: {items: %s}\n    tasks:\n      - {name: s, command: [x]}\n", list))
			id := fmt.Sprintf("c%d-r%d", check, k)
			if _, err := st.Apply(ctx, createRunCmd(t, id, p)); err != nil {
				rt.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if rapid.Bool().Draw(rt, "cancel") {
				time.Sleep(time.Duration(rapid.IntRange(0, 3).Draw(rt, "cancelAfterMs")) * time.Millisecond) // a random moment, not a wait for an event
				res, err := st.Apply(ctx, store.RequestCancel{RunID: id, Time: time.Now().UTC()})
				if err == nil && len(res.Rejected) == 0 {
					cancelAt[id] = res.Index
				}
			}
		}
		for _, id := range ids {
			r := waitRunFinal(t, st, id, 30*time.Second)
			ts, err := st.Tasks(id)
			if err != nil {
				rt.Fatal(err)
			}
			for _, tk := range ts {
				if !tk.State.Final() {
					rt.Fatalf("run %s is %s but task %s is %s", id, r.State, tk.Name, tk.State)
				}
			}
		}
		if bad := g.violations(cancelAt); len(bad) > 0 {
			rt.Fatalf("executions started after their run's cancel was committed: %v", bad)
		}
	})
	if len(g.starts) == 0 {
		t.Fatal("nothing started: the test checked nothing")
	}
}
