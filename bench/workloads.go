package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// Shape is a named DAG shape.
type Shape string

const (
	ShapeChain  Shape = "chain"  // t0 -> t1 -> ... -> tN-1
	ShapeFanout Shape = "fanout" // root -> N independent tasks
)

// Workload is a shape at a size, run on one executor.
type Workload struct {
	Shape    Shape
	N        int
	Executor string   // "sim" or "local"
	Command  []string // for the local executor, e.g. ["/bin/true"]
}

// Name is the workload's name as reports print it, e.g. "proc-chain-1000".
func (w Workload) Name() string {
	prefix := ""
	if w.Executor == "local" {
		prefix = "proc-"
	}
	return prefix + string(w.Shape) + "-" + strconv.Itoa(w.N)
}

// ParseWorkload reads names like "chain-1000", "fanout-10000",
// "proc-chain-1000" (local executor running /bin/true).
func ParseWorkload(name string) (Workload, error) {
	w := Workload{Executor: "sim"}
	rest := name
	if s, ok := strings.CutPrefix(rest, "proc-"); ok {
		w.Executor, w.Command, rest = "local", []string{"/bin/true"}, s
	}
	shape, size, ok := strings.Cut(rest, "-")
	if !ok {
		return w, fmt.Errorf("workload %q: want SHAPE-N, e.g. chain-1000", name)
	}
	n, err := strconv.Atoi(size)
	if err != nil || n < 1 {
		return w, fmt.Errorf("workload %q: size %q is not a positive integer", name, size)
	}
	switch Shape(shape) {
	case ShapeChain, ShapeFanout:
		w.Shape, w.N = Shape(shape), n
	default:
		return w, fmt.Errorf("workload %q: unknown shape %q (have chain, fanout)", name, shape)
	}
	return w, nil
}

// Plan builds the workload's finalized plan.
func (w Workload) Plan() (*spec.Plan, error) {
	cmd := w.Command
	if len(cmd) == 0 {
		cmd = []string{"sim"}
	}
	p := &spec.Plan{Name: w.Name(), Executor: w.Executor}
	switch w.Shape {
	case ShapeChain:
		for i := 0; i < w.N; i++ {
			t := spec.Task{Name: "t" + strconv.Itoa(i), Command: cmd}
			if i > 0 {
				t.After = []string{"t" + strconv.Itoa(i-1)}
			}
			p.Tasks = append(p.Tasks, t)
		}
	case ShapeFanout:
		p.Tasks = append(p.Tasks, spec.Task{Name: "root", Command: cmd})
		for i := 0; i < w.N; i++ {
			p.Tasks = append(p.Tasks, spec.Task{Name: "t" + strconv.Itoa(i), Command: cmd, After: []string{"root"}})
		}
	default:
		return nil, fmt.Errorf("unknown shape %q", w.Shape)
	}
	if err := p.Finalize(); err != nil {
		return nil, err
	}
	return p, nil
}
