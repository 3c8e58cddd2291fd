package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"pgregory.net/rapid"
)

// fresh succeeds at once with outputs no other execution has: a cache hit
// can only reproduce them by reusing what was recorded.
type fresh struct {
	*sim.Executor
	n atomic.Int64
}

func (f *fresh) Start(_ context.Context, s *executors.Spec, report func(executors.Event)) error {
	k := f.n.Add(1)
	outs := map[string]spec.Value{}
	for _, o := range s.Outputs {
		outs[o.Name] = spec.Value{Param: json.RawMessage(strconv.FormatInt(k, 10))}
	}
	report(executors.Event{ID: s.ID, Kind: executors.EventExited, State: spec.TaskSucceeded, Outputs: outs})
	return nil
}

func (f *fresh) Name() string { return "sim" }

// TestEngine_CacheHitsYieldTheOriginalOutputs: for random DAGs of cached
// tasks, a second run of the same plan and parameters runs nothing, and
// every task's outputs are those of the first run.
func TestEngine_CacheHitsYieldTheOriginalOutputs(t *testing.T) {
	t.Parallel()
	scfg := store.DefaultConfig(filepath.Join(t.TempDir(), "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	x := &fresh{Executor: sim.New(sim.Config{})}
	eng, err := engine.New(engine.DefaultConfig(st, x))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })

	plans := 0
	rapid.Check(t, func(rt *rapid.T) {
		plans++
		n := rapid.IntRange(1, 8).Draw(rt, "tasks")
		p := &spec.Plan{Name: "cached", Executor: "sim"}
		for i := 0; i < n; i++ {
			tk := spec.Task{Name: fmt.Sprintf("t%d", i), Command: []string{"x", strconv.Itoa(plans)},
				Outputs: []spec.Output{{Name: "out", Type: spec.TypeInt}}, Cache: &spec.Cache{Enabled: true}}
			if i > 0 && rapid.Bool().Draw(rt, "dep") {
				from := rapid.IntRange(0, i-1).Draw(rt, "from")
				tk.Inputs = []spec.Input{{Name: "in", From: &spec.Ref{Task: fmt.Sprintf("t%d", from), Output: "out"}}}
			}
			if rapid.Bool().Draw(rt, "literal") {
				v := rapid.IntRange(0, 3).Draw(rt, "value")
				tk.Inputs = append(tk.Inputs, spec.Input{Name: "lit", Type: spec.TypeInt, Value: json.RawMessage(strconv.Itoa(v))})
			}
			p.Tasks = append(p.Tasks, tk)
		}
		if err := p.Finalize(); err != nil {
			rt.Fatal(err)
		}
		runOnce := func() map[string]store.Task {
			id, err := eng.Submit(context.Background(), p, nil, engine.SubmitOptions{})
			if err != nil {
				rt.Fatal(err)
			}
			r := waitRun(t, eng, id)
			if r.State != spec.RunSucceeded {
				rt.Fatalf("run %s: %s", r.State, r.Error)
			}
			ts, err := st.Tasks(id)
			if err != nil {
				rt.Fatal(err)
			}
			m := map[string]store.Task{}
			for _, tk := range ts {
				m[tk.Name] = tk
			}
			return m
		}
		first := runOnce()
		before := x.n.Load()
		second := runOnce()
		if ran := x.n.Load() - before; ran != 0 {
			rt.Fatalf("the second run executed %d tasks", ran)
		}
		for name, a := range first {
			b := second[name]
			if !b.Cached() || !reflect.DeepEqual(a.Outputs, b.Outputs) {
				rt.Fatalf("%s: cached %v, outputs %v, want those of the first run %v", name, b.Cached(), b.Outputs, a.Outputs)
			}
		}
	})
}
