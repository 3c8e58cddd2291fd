package bench

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/store/blob"
)

// TestWorkloads_RunAtTinySize proves every workload runs end to end; it
// asserts no timings.
func TestWorkloads_RunAtTinySize(t *testing.T) {
	n, err := OpenNode(context.Background(), t.TempDir(), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, name := range []string{"chain-5", "fanout-5", "lattice-3x2", "cached-4", "parallelfor-6", "proc-chain-3", "proc-fanout-3", "proc-parallelfor-3"} {
		w, err := ParseWorkload(name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := n.Run(context.Background(), w)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Workload != name || res.Tasks < w.N || res.Entries == 0 || res.HeapPeak == 0 {
			t.Errorf("%s: result %+v", name, res)
		}
		if res.Latency.Max < res.Latency.P99 || res.Latency.P99 < res.Latency.P50 {
			t.Errorf("%s: latency %+v", name, res.Latency)
		}
		if want := map[bool]int{true: res.Tasks}[w.Shape == ShapeCached]; res.Cached != want {
			t.Errorf("%s: %d cached tasks, want %d", name, res.Cached, want)
		}
	}
}

func TestParseWorkload(t *testing.T) {
	for name, want := range map[string]Workload{
		"chain-3":          {Shape: ShapeChain, N: 3, Executor: "sim"},
		"lattice-4x2":      {Shape: ShapeLattice, N: 8, W: 4, D: 2, Executor: "sim"},
		"proc-fanout-7":    {Shape: ShapeFanout, N: 7, Executor: "local", Command: []string{"/bin/true"}},
		"cached-2":         {Shape: ShapeCached, N: 2, Executor: "sim"},
		"proc-lattice-2x2": {Shape: ShapeLattice, N: 4, W: 2, D: 2, Executor: "local", Command: []string{"/bin/true"}},
	} {
		w, err := ParseWorkload(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if w.Name() != name || w.Shape != want.Shape || w.N != want.N || w.W != want.W || w.D != want.D || w.Executor != want.Executor || len(w.Command) != len(want.Command) {
			t.Errorf("%s: got %+v (%s), want %+v", name, w, w.Name(), want)
		}
		p, err := w.Plan()
		if err != nil {
			t.Errorf("%s: plan: %v", name, err)
			continue
		}
		if tasks := w.N + map[bool]int{true: 1}[w.Shape == ShapeFanout || w.Shape == ShapeCached]; len(p.Tasks) != tasks {
			t.Errorf("%s: %d tasks, want %d", name, len(p.Tasks), tasks)
		}
	}
	p, _ := ParseWorkload("lattice-3x3")
	plan, _ := p.Plan()
	if deps := plan.Tasks[len(plan.Tasks)-1].Deps; len(deps) != 3 || deps[0] != 3 {
		t.Errorf("lattice-3x3: last task's deps %v, want the 3 tasks of the middle layer", deps)
	}
}

func TestParseWorkload_RejectsBadNames(t *testing.T) {
	for _, name := range []string{"chain", "chain-0", "chain-x", "ring-5", "proc-", "lattice-5", "lattice-0x3", "lattice-2xy"} {
		if _, err := ParseWorkload(name); err == nil {
			t.Errorf("ParseWorkload(%q) accepted", name)
		}
	}
	if _, err := ParseWorkload("parallelfor-0"); err == nil {
		t.Errorf("parallelfor-0 accepted")
	}
}

func TestGoTaskfile(t *testing.T) {
	for name, want := range map[string][]string{
		"chain-3":          {"run: once", "  t2:\n    deps: [t1]\n", "  main:\n    deps: [t2]\n"},
		"proc-fanout-2":    {"  root:\n    cmds: ['/bin/true']", "  leaves:\n    deps: [t0, t1]\n", "cmds: [{task: root}, {task: leaves}]"},
		"lattice-2x2":      {"  l1-0:\n    deps: [layer0]\n", "  layer1:\n    deps: [l1-0, l1-1]\n", "  main:\n    deps: [layer1]\n"},
		"proc-lattice-1x1": {"  l0-0:\n    cmds: ['/bin/true']\n"},
	} {
		w, err := ParseWorkload(name)
		if err != nil {
			t.Fatal(err)
		}
		tf := string(GoTaskfile(w))
		for _, s := range want {
			if !strings.Contains(tf, s) {
				t.Errorf("%s: Taskfile lacks %q:\n%s", name, s, tf)
			}
		}
	}
}

func TestReport_JSONAndTable(t *testing.T) {
	rep := &Report{Machine: DescribeMachine(), Durable: true, Runs: 3, Peers: []PeerStatus{{Peer: "go-task", Version: "v1"}}}
	r := NewResult([]Result{
		{Workload: "chain-2", Tasks: 2, Wall: 3 * time.Second, Entries: 4},
		{Workload: "chain-2", Tasks: 2, Wall: time.Second, Entries: 4, HeapBase: 10, HeapPeak: 30},
		{Workload: "chain-2", Tasks: 2, Wall: 2 * time.Second, Entries: 4},
	})
	if r.WallS != 2 || r.TasksPerSec != 1 || r.EntriesPerTask != 2 || r.FsyncsPerTask != 4 || len(r.WallRunsS) != 3 {
		t.Errorf("median result %+v", r)
	}
	peerRuns := []PeerRun{{Wall: 5 * time.Second, CPU: 9 * time.Second}, {Wall: 4 * time.Second, CPU: 7250 * time.Millisecond}, {Wall: 3 * time.Second, CPU: time.Second}}
	r.Peers = []PeerResult{NewPeerResult("go-task", 2, peerRuns, r.WallS), {Peer: "go-workflows", Error: "boom"}}
	if r.Peers[0].SkiffSpeedup != 2 {
		t.Errorf("speedup %v, want 2", r.Peers[0].SkiffSpeedup)
	}
	if r.Peers[0].CPUS != 7.25 {
		t.Errorf("peer CPU %v s, want 7.25 (the median run's)", r.Peers[0].CPUS)
	}
	rep.Results = []WorkloadResult{r, {Workload: "fanout-1", Error: "failed"}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	for _, k := range []string{"cores", "memory_bytes", "go_version", "os", "cpu_model"} {
		if _, ok := m["machine"].(map[string]any)[k]; !ok {
			t.Errorf("machine lacks %s: %s", k, b)
		}
	}
	res := m["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"workload", "tasks", "wall_s", "tasks_per_sec", "latency_p50_ms", "latency_p99_ms", "heap_bytes_per_task", "entries_per_task", "peers"} {
		if _, ok := res[k]; !ok {
			t.Errorf("result lacks %s: %s", k, b)
		}
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"chain-2", "2.00x", "7.250", "error: boom", "fanout-1", "error: failed"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
}

// benchWorkload runs one workload per iteration on a durable node and
// reports tasks/s and store entries per task.
func benchWorkload(b *testing.B, name string) {
	w, err := ParseWorkload(name)
	if err != nil {
		b.Fatal(err)
	}
	n, err := OpenNode(context.Background(), b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	var wall time.Duration
	var tasks int
	var entries uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := n.Run(context.Background(), w)
		if err != nil {
			b.Fatal(err)
		}
		wall += res.Wall
		tasks += res.Tasks
		entries += res.Entries
	}
	b.ReportMetric(float64(tasks)/wall.Seconds(), "tasks/s")
	b.ReportMetric(float64(entries)/float64(tasks), "entries/task")
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/run")
}

func BenchmarkSimFanout10000(b *testing.B) { benchWorkload(b, "fanout-10000") }
func BenchmarkSimChain1000(b *testing.B)   { benchWorkload(b, "chain-1000") }
func BenchmarkProcChain1000(b *testing.B)  { benchWorkload(b, "proc-chain-1000") }
func BenchmarkProcFanout1000(b *testing.B) { benchWorkload(b, "proc-fanout-1000") }

// BenchmarkProcessStart is the baseline for the engine's per-step
// overhead: starting and waiting for /bin/true directly, in this process,
// one after another. It reports the CPU time per start of this process
// (parent-ms/op) and of the started one (child-ms/op).
func BenchmarkProcessStart(b *testing.B) { benchProcessStarts(b, 1) }

// BenchmarkProcessStart8 starts them as a fan-out does, eight at a time
// (the local executor's limit of starts at once on two cores).
func BenchmarkProcessStart8(b *testing.B) { benchProcessStarts(b, 8) }

func benchProcessStarts(b *testing.B, atOnce int) {
	sem := make(chan struct{}, atOnce)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	t0 := processCPU()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := exec.Command("/bin/true").Run(); err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	cpu := processCPU().since(t0)
	b.ReportMetric(float64(cpu.self.Microseconds())/1000/float64(b.N), "parent-ms/op")
	b.ReportMetric(float64(cpu.children.Microseconds())/1000/float64(b.N), "child-ms/op")
}

// BenchmarkLocalExecutorAlone starts /bin/true through the local executor,
// one after another, without the engine or the store: with
// BenchmarkProcessStart it splits a step's cost into process start, the
// executor's work (work dir, logs, outputs) and the engine's (the rest of
// BenchmarkProcChain1000 per task).
func BenchmarkLocalExecutorAlone(b *testing.B) {
	dir := b.TempDir()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	cfg := local.DefaultConfig(filepath.Join(dir, "work"), blobs)
	cfg.GPUs = []string{}
	x, err := local.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan executors.Event, 1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := &executors.Spec{ID: "bench-" + strconv.Itoa(i), RunID: "bench", Task: "t", Attempt: 1, Command: []string{"/bin/true"}}
		if err := x.Start(context.Background(), s, func(ev executors.Event) {
			if ev.Kind == executors.EventExited {
				done <- ev
			}
		}); err != nil {
			b.Fatal(err)
		}
		if ev := <-done; ev.State != spec.TaskSucceeded {
			b.Fatalf("exited %s: %s", ev.State, ev.Reason)
		}
	}
}

// BenchmarkClusterFanout10000 runs fanout-10000 on a durable cluster of
// three nodes in this process (as skiff bench --cluster 3 does), for
// profiling the cluster's per-task cost.
func BenchmarkClusterFanout10000(b *testing.B) {
	w, err := ParseWorkload("fanout-10000")
	if err != nil {
		b.Fatal(err)
	}
	c, err := OpenCluster(context.Background(), b.TempDir(), 3, Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var wall time.Duration
	var tasks int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, _, err := c.Run(context.Background(), w)
		if err != nil {
			b.Fatal(err)
		}
		wall += res.Wall
		tasks += res.Tasks
	}
	b.ReportMetric(float64(tasks)/wall.Seconds(), "tasks/s")
	b.ReportMetric(wall.Seconds()/float64(b.N), "wall-s/run")
}

// TestRunPeerProcess_CountsItsStepsCPU: a peer's CPU time holds the
// processes it ran and waited for (a shell's child that spins), not only
// its own.
func TestRunPeerProcess_CountsItsStepsCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'; true`)
	wall, cpu, err := runPeerProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if cpu < 20*time.Millisecond || wall <= 0 {
		t.Fatalf("wall %v, CPU %v: want the spinning child's CPU (tens of ms) counted", wall, cpu)
	}
	if _, cpu, err := runPeerProcess(exec.Command("/nonexistent/peer")); err == nil || cpu != 0 {
		t.Fatalf("a peer that does not start: CPU %v, err %v; want 0 and an error", cpu, err)
	}
}
