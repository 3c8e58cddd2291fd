package bench

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// Shape is a named DAG shape.
type Shape string

const (
	ShapeChain       Shape = "chain"       // t0 -> t1 -> ... -> tN-1
	ShapeFanout      Shape = "fanout"      // root -> N independent tasks
	ShapeLattice     Shape = "lattice"     // D layers of W tasks, each after every task of the layer before
	ShapeCached      Shape = "cached"      // a fan-out of N cached tasks, run twice; the second (fully cached) run is measured
	ShapeParallelFor Shape = "parallelfor" // one ParallelFor over a literal list of N items, one task per iteration
)

// Workload is a shape at a size, run on one executor.
type Workload struct {
	Shape    Shape
	N        int      // the size in the name; for lattice, W×D
	W, D     int      // lattice only: width and depth
	Executor string   // "sim" or "local"
	Command  []string // for the local executor, e.g. ["/bin/true"]
}

// shapeDef describes one shape: how its size is written, how its tasks are
// built, and whether it can run yet. Adding a shape is adding an entry to
// shapes.
type shapeDef struct {
	shape Shape
	usage string // e.g. "chain-N"
	// size parses the part of the name after "SHAPE-" into N (and W, D).
	size func(s string) (n, w, d int, err error)
	// tasks builds the plan's tasks, each running cmd.
	tasks func(w Workload, cmd []string) []spec.Task
	// missing, when set, says why the shape cannot run yet.
	missing string
	// warmup: run the plan once, unmeasured, before the measured run.
	warmup bool
}

var shapes = []shapeDef{
	{shape: ShapeChain, usage: "chain-N", size: sizeN, tasks: chainTasks},
	{shape: ShapeFanout, usage: "fanout-N", size: sizeN, tasks: fanoutTasks},
	{shape: ShapeLattice, usage: "lattice-WxD", size: sizeWxD, tasks: latticeTasks},
	{shape: ShapeCached, usage: "cached-N", size: sizeN, tasks: cachedTasks, warmup: true},
	{shape: ShapeParallelFor, usage: "parallelfor-N", size: sizeN, tasks: parallelForTasks},
}

func findShape(s Shape) *shapeDef {
	for i := range shapes {
		if shapes[i].shape == s {
			return &shapes[i]
		}
	}
	return nil
}

// Usage lists the workload forms ParseWorkload reads, e.g. "chain-N,
// fanout-N, ..., proc-SHAPE-SIZE".
func Usage() string {
	var names []string
	for _, d := range shapes {
		u := d.usage
		if d.missing != "" {
			u += " (not yet)"
		}
		names = append(names, u)
	}
	return strings.Join(names, ", ") + "; prefix proc- to run /bin/true on the local executor"
}

// Name is the workload's name as reports print it, e.g. "proc-chain-1000".
func (w Workload) Name() string {
	prefix := ""
	if w.Executor == "local" {
		prefix = "proc-"
	}
	size := strconv.Itoa(w.N)
	if w.Shape == ShapeLattice {
		size = strconv.Itoa(w.W) + "x" + strconv.Itoa(w.D)
	}
	return prefix + string(w.Shape) + "-" + size
}

// Warmup reports whether the workload runs once, unmeasured, before its
// measured run (cached-N: the first run fills the cache).
func (w Workload) Warmup() bool {
	d := findShape(w.Shape)
	return d != nil && d.warmup
}

// ParseWorkload reads names like "chain-1000", "fanout-10000",
// "lattice-100x10", "cached-1000" and "proc-chain-1000" (the local
// executor running /bin/true). A shape that cannot run yet is an error
// that says why.
func ParseWorkload(name string) (Workload, error) {
	w := Workload{Executor: "sim"}
	rest := name
	if s, ok := strings.CutPrefix(rest, "proc-"); ok {
		w.Executor, w.Command, rest = "local", []string{"/bin/true"}, s
	}
	shape, size, ok := strings.Cut(rest, "-")
	if !ok {
		return w, fmt.Errorf("workload %q: want SHAPE-SIZE, e.g. chain-1000 (have %s)", name, Usage())
	}
	d := findShape(Shape(shape))
	if d == nil {
		return w, fmt.Errorf("workload %q: unknown shape %q (have %s)", name, shape, Usage())
	}
	n, wd, dp, err := d.size(size)
	if err != nil {
		return w, fmt.Errorf("workload %q: %s: %w", name, d.usage, err)
	}
	if d.missing != "" {
		return w, fmt.Errorf("workload %q: %s %s", name, d.shape, d.missing)
	}
	w.Shape, w.N, w.W, w.D = d.shape, n, wd, dp
	return w, nil
}

func sizeN(s string) (n, w, d int, err error) {
	n, err = strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, 0, 0, fmt.Errorf("size %q is not a positive integer", s)
	}
	return n, 0, 0, nil
}

func sizeWxD(s string) (n, w, d int, err error) {
	ws, ds, ok := strings.Cut(s, "x")
	if !ok {
		return 0, 0, 0, fmt.Errorf("size %q: want WxD, e.g. 100x10", s)
	}
	w, err1 := strconv.Atoi(ws)
	d, err2 := strconv.Atoi(ds)
	if err1 != nil || err2 != nil || w < 1 || d < 1 {
		return 0, 0, 0, fmt.Errorf("size %q: W and D must be positive integers", s)
	}
	return w * d, w, d, nil
}

// Plan builds the workload's finalized plan.
func (w Workload) Plan() (*spec.Plan, error) {
	d := findShape(w.Shape)
	switch {
	case d == nil:
		return nil, fmt.Errorf("unknown shape %q", w.Shape)
	case d.missing != "":
		return nil, fmt.Errorf("%s %s", w.Shape, d.missing)
	}
	cmd := w.Command
	if len(cmd) == 0 {
		cmd = []string{"sim"}
	}
	p := &spec.Plan{Name: w.Name(), Executor: w.Executor, Tasks: d.tasks(w, cmd)}
	if err := p.Finalize(); err != nil {
		return nil, err
	}
	return p, nil
}

func name(i int) string { return "t" + strconv.Itoa(i) }

func chainTasks(w Workload, cmd []string) []spec.Task {
	ts := make([]spec.Task, 0, w.N)
	for i := 0; i < w.N; i++ {
		t := spec.Task{Name: name(i), Command: cmd}
		if i > 0 {
			t.After = []string{name(i - 1)}
		}
		ts = append(ts, t)
	}
	return ts
}

func fanoutTasks(w Workload, cmd []string) []spec.Task {
	ts := make([]spec.Task, 0, w.N+1)
	ts = append(ts, spec.Task{Name: "root", Command: cmd})
	for i := 0; i < w.N; i++ {
		ts = append(ts, spec.Task{Name: name(i), Command: cmd, After: []string{"root"}})
	}
	return ts
}

// latticeTasks: task l<layer>-<i>; every task of layer k > 0 is after every
// task of layer k-1 (W² edges between two layers).
func latticeTasks(w Workload, cmd []string) []spec.Task {
	ts := make([]spec.Task, 0, w.N)
	var prev []string
	for l := 0; l < w.D; l++ {
		layer := make([]string, w.W)
		for i := range layer {
			layer[i] = "l" + strconv.Itoa(l) + "-" + strconv.Itoa(i)
			ts = append(ts, spec.Task{Name: layer[i], Command: cmd, After: prev})
		}
		prev = layer
	}
	return ts
}

// parallelForTasks is one loop over the items 0..N-1 whose body is one
// task taking the item as an argument.
func parallelForTasks(w Workload, cmd []string) []spec.Task {
	items := make([]int, w.N)
	for i := range items {
		items[i] = i
	}
	raw, _ := json.Marshal(items)
	body := &spec.Plan{
		Params: []spec.Param{{Name: "item", Type: spec.TypeInt}},
		Tasks: []spec.Task{{Name: "t", Command: cmd, Args: []string{"{{inputs.item}}"},
			Inputs: []spec.Input{{Name: "item", Param: "item"}}}},
	}
	return []spec.Task{{Name: "loop", Body: body,
		ParallelFor: &spec.Loop{Items: spec.Input{Type: spec.TypeList, Value: raw}, ItemParam: "item"}}}
}

// Tasks is the number of tasks a run of the workload has once every group
// started: a loop counts itself and its iterations.
func (w Workload) Tasks(p *spec.Plan) int {
	if w.Shape == ShapeParallelFor {
		return w.N + 1
	}
	return len(p.Tasks)
}

// cachedTasks is a fan-out whose every task (the root too) is cached; each
// task has its own argument, so each has its own cache key.
func cachedTasks(w Workload, cmd []string) []spec.Task {
	ts := fanoutTasks(w, cmd)
	for i := range ts {
		ts[i].Args = []string{ts[i].Name}
		ts[i].Cache = &spec.Cache{Enabled: true}
	}
	return ts
}

// YAML writes the workload as the Skiff pipeline text (docs/pipeline-format.md)
// whose compiled plan is Plan's: the measured wall time starts from this
// text, so that Skiff's parse and plan are timed as go-task's parsing of
// its Taskfile is.
func (w Workload) YAML() []byte {
	var b strings.Builder
	cmd := w.Command
	if len(cmd) == 0 {
		cmd = []string{"sim"}
	}
	cmdText := "[" + strings.Join(quoteAll(cmd), ", ") + "]"
	fmt.Fprintf(&b, "name: %s\nexecutor: %s\ntasks:\n", w.Name(), w.Executor)
	task := func(name string, after []string, extra string) {
		fmt.Fprintf(&b, "  - name: %s\n    command: %s\n", name, cmdText)
		if len(after) > 0 {
			b.WriteString("    after: [")
			b.WriteString(strings.Join(after, ", "))
			b.WriteString("]\n")
		}
		b.WriteString(extra)
	}
	switch w.Shape {
	case ShapeChain:
		for i := 0; i < w.N; i++ {
			var after []string
			if i > 0 {
				after = []string{name(i - 1)}
			}
			task(name(i), after, "")
		}
	case ShapeFanout, ShapeCached:
		extra := func(n string) string {
			if w.Shape != ShapeCached {
				return ""
			}
			return "    args: [" + n + "]\n    cache: {enabled: true}\n"
		}
		task("root", nil, extra("root"))
		root := []string{"root"}
		for i := 0; i < w.N; i++ {
			task(name(i), root, extra(name(i)))
		}
	case ShapeLattice:
		var prev []string
		for l := 0; l < w.D; l++ {
			layer := make([]string, w.W)
			for i := range layer {
				layer[i] = "l" + strconv.Itoa(l) + "-" + strconv.Itoa(i)
				task(layer[i], prev, "")
			}
			prev = layer
		}
	case ShapeParallelFor:
		items := make([]string, w.N)
		for i := range items {
			items[i] = strconv.Itoa(i)
		}
		fmt.Fprintf(&b, "  - name: loop\n    parallelFor:\n      items: [%s]\n      as: item\n      itemType: int\n    tasks:\n", strings.Join(items, ", "))
		fmt.Fprintf(&b, "      - name: t\n        command: %s\n        args: ['{{inputs.item}}']\n        inputs: {item: {param: item}}\n", cmdText)
	}
	return []byte(b.String())
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
