package engine_test

import (
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// randomPlan draws a small DAG of sim steps: dependencies on earlier
// tasks, some cached, some retried.
func randomPlan(t *rapid.T, name string) *spec.Plan {
	n := rapid.IntRange(1, 6).Draw(t, "tasks")
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nexecutor: sim\ntasks:\n", name)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: t%d\n    command: [step, %q]\n", i, rapid.SampledFrom([]string{"x", "y"}).Draw(t, "cmd"))
		var after []string
		for j := 0; j < i; j++ {
			if rapid.Bool().Draw(t, "dep") {
				after = append(after, fmt.Sprintf("t%d", j))
			}
		}
		if len(after) > 0 {
			fmt.Fprintf(&b, "    after: [%s]\n", strings.Join(after, ", "))
		}
		if rapid.Bool().Draw(t, "cache") {
			b.WriteString("    cache: true\n")
		}
		if rapid.Bool().Draw(t, "retry") {
			b.WriteString("    retry: {limit: 1, backoff: 1ms}\n")
		}
	}
	p, err := spec.ParseSkiff([]byte(b.String()))
	if err != nil {
		t.Fatalf("parse %s: %v", b.String(), err)
	}
	return p
}

// TestEngine_EveryRunEndsUnderRejectionsAndCancels: whatever the store
// rejects (each engine change with a drawn probability) and whenever a
// cancel lands (after a drawn number of a run's updates), every run
// reaches a final state, every task of a final run is final, and every
// line OnUpdate reported was durable.
func TestEngine_EveryRunEndsUnderRejectionsAndCancels(t *testing.T) {
	t.Parallel()
	h := newFaultHarness(t, nil, sim.New(sim.Config{Default: sim.Behavior{Duration: time.Millisecond, FailRate: 0.2}}))
	var mu sync.Mutex
	rng := rand.New(rand.NewSource(1))
	var rate float64
	h.store.setReject(func(store.Command, int) bool {
		mu.Lock()
		defer mu.Unlock()
		return rng.Float64() < rate
	})
	// cancelAt[run] = cancel the run when its n-th update is reported.
	cancelAt := map[string]int{}
	seen := map[string]int{}
	h.onLine = func(u engine.Update) {
		mu.Lock()
		seen[u.RunID]++
		fire := seen[u.RunID] == cancelAt[u.RunID]
		mu.Unlock()
		if fire {
			go h.eng.Cancel(context.Background(), u.RunID) //nolint:errcheck // the run may have ended
		}
	}
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		seed := rapid.Int64().Draw(rt, "seed")
		r := rapid.SampledFrom([]float64{0, 0.05, 0.2, 0.4}).Draw(rt, "rejectRate")
		mu.Lock()
		rng.Seed(seed)
		rate = r
		mu.Unlock()
		var ids []string
		for k := rapid.IntRange(1, 3).Draw(rt, "runs"); k > 0; k-- {
			p := randomPlan(rt, fmt.Sprintf("p%d", check))
			// The plan's name varies per check, so cache hits come only
			// from runs of the same check.
			cancel := rapid.IntRange(0, 12).Draw(rt, "cancelAfter") // 0 = never
			id, err := h.eng.Submit(context.Background(), p, nil, engine.SubmitOptions{})
			if err != nil {
				rt.Fatalf("submit: %v", err)
			}
			mu.Lock()
			cancelAt[id] = cancel
			mu.Unlock()
			ids = append(ids, id)
		}
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			run, err := h.eng.Wait(ctx, id)
			cancel()
			if err != nil {
				ts, _ := h.store.Tasks(id)
				rt.Fatalf("run %s is still %s: %v; tasks %+v", id, run.State, err, ts)
			}
			ts, err := h.store.Tasks(id)
			if err != nil {
				rt.Fatal(err)
			}
			for _, tk := range ts {
				if !tk.State.Final() {
					rt.Fatalf("run %s is %s but task %s is %s", id, run.State, tk.Name, tk.State)
				}
			}
		}
		if bad := h.nonDurable(); len(bad) > 0 {
			rt.Fatalf("OnUpdate reported changes the store does not hold: %v", bad)
		}
	})
}
