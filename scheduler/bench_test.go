package scheduler

import (
	"fmt"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// benchPlan builds finalized plans directly (no helper maps), so building
// a 10,000-task plan stays cheap.
func fanOutPlan(n int) *spec.Plan {
	p := &spec.Plan{Name: "fan-out", Tasks: make([]spec.Task, n+1)}
	p.Tasks[0] = spec.Task{Name: "root"}
	for i := 1; i <= n; i++ {
		p.Tasks[i] = spec.Task{Name: fmt.Sprintf("leaf-%d", i), Deps: []int{0}}
	}
	return p
}

func chainPlan(n int) *spec.Plan {
	p := &spec.Plan{Name: "chain", Tasks: make([]spec.Task, n)}
	for i := range p.Tasks {
		p.Tasks[i] = spec.Task{Name: fmt.Sprintf("step-%d", i)}
		if i > 0 {
			p.Tasks[i].Deps = []int{i - 1}
		}
	}
	return p
}

// drain drives a run to completion as an engine would (FIFO), returning
// the number of decisions.
func drain(b *testing.B, r *Run) int {
	queue := make([]int, 0, 1024)
	n := 0
	push := func(ds []Decision) {
		n += len(ds)
		for _, d := range ds {
			if d.Action == ActStart {
				queue = append(queue, d.Task)
			}
		}
	}
	push(r.Start())
	for k := 0; k < len(queue); k++ {
		push(r.Finished(queue[k], spec.TaskSucceeded, nil))
	}
	if st, ok := r.Done(); !ok || st != spec.RunSucceeded {
		b.Fatalf("run ended %s, %v", st, ok)
	}
	return n
}

func benchRun(b *testing.B, p *spec.Plan) {
	b.ReportAllocs()
	for b.Loop() {
		drain(b, New(p, nil))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(p.Tasks)), "ns/task")
}

func BenchmarkRun_FanOut10000(b *testing.B) { benchRun(b, fanOutPlan(10000)) }
func BenchmarkRun_Chain10000(b *testing.B)  { benchRun(b, chainPlan(10000)) }

// BenchmarkRun_FanOutFailure measures the skip cascade: the root fails and
// 10,000 tasks are skipped in one Finished call.
func BenchmarkRun_FanOutFailure10000(b *testing.B) {
	p := fanOutPlan(10000)
	b.ReportAllocs()
	for b.Loop() {
		r := New(p, nil)
		r.Start()
		if ds := r.Finished(0, spec.TaskFailed, nil); len(ds) != 10001 {
			b.Fatalf("%d decisions", len(ds))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(p.Tasks)), "ns/task")
}
