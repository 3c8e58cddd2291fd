package worker_test

import (
	"flag"
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// TestCluster_PropertyEveryRunEndsNoDoubleStarts: on one three-node
// cluster, each check submits random fan-outs and, while they run, draws
// faults: cancels (committed through the log), a node cut off for a
// moment (the leader, often), a worker killed and started again (a new
// epoch). Once faults heal, every run is final, no execution started
// twice and no task ever had two live executions, and every state
// machine holds the same state.
func TestCluster_PropertyEveryRunEndsNoDoubleStarts(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster under faults for several seconds")
	}
	// Each check costs seconds: a few unless -rapid.checks says otherwise.
	if f := flag.Lookup("rapid.checks"); f != nil && f.Value.String() == f.DefValue {
		_ = f.Value.Set("4")
		t.Cleanup(func() { _ = f.Value.Set(f.DefValue) })
	}
	cl := newCluster(t, 3, sim.Config{Default: sim.Behavior{Duration: 40 * time.Millisecond}})
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		var ids []string
		for k := rapid.IntRange(1, 3).Draw(rt, "runs"); k > 0; k-- {
			id := fmt.Sprintf("c%d-r%d", check, k)
			cl.submit(id, fanOut(t, rapid.IntRange(1, 8).Draw(rt, "width"), 0))
			ids = append(ids, id)
		}
		var dead []int
		for a := rapid.IntRange(0, 3).Draw(rt, "faults"); a > 0; a-- {
			switch rapid.SampledFrom([]string{"cancel", "partition", "killWorker"}).Draw(rt, "fault") {
			case "cancel":
				id := rapid.SampledFrom(ids).Draw(rt, "cancelRun")
				st := cl.c.Nodes[cl.c.Leader()].Store
				_, _ = st.Apply(t.Context(), store.RequestCancel{RunID: id, Time: time.Now().UTC()})
			case "partition":
				i := cl.c.Leader()
				if !rapid.Bool().Draw(rt, "theLeader") {
					i = (i + 1) % 3
				}
				cl.c.Partition(i)
				time.Sleep(300 * time.Millisecond) // the fault's length, not a wait for an event
				cl.c.Heal()
			case "killWorker":
				i := rapid.IntRange(0, 2).Draw(rt, "worker")
				cl.killWorker(i)
				dead = append(dead, i)
			}
		}
		for _, i := range dead {
			if cl.nodes[i].workerDone == nil {
				cl.startWorker(i)
			}
		}
		for id, r := range cl.waitFinal(ids...) {
			if r.State != spec.RunSucceeded && r.State != spec.RunCanceled {
				ts, _ := cl.c.Nodes[cl.c.Leader()].Store.Tasks(id)
				for _, tk := range ts {
					if tk.State == spec.TaskFailed {
						t.Logf("run %s, %s: %+v", id, tk.Name, tk.Attempts)
					}
				}
				rt.Fatalf("run %s is %s (%s)", id, r.State, r.Error)
			}
		}
		if bad := cl.l.bad(); len(bad) > 0 {
			rt.Fatalf("side effects: %v", bad)
		}
		cl.c.CheckConverged()
	})
}
