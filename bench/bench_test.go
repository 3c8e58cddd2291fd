package bench

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
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
	for _, name := range []string{"chain-5", "fanout-5", "proc-chain-3", "proc-fanout-3"} {
		w, err := ParseWorkload(name)
		if err != nil {
			t.Fatal(err)
		}
		res, err := n.Run(context.Background(), w)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Workload != name || res.Tasks < w.N {
			t.Errorf("%s: result %+v", name, res)
		}
	}
}

func TestParseWorkload_RejectsBadNames(t *testing.T) {
	for _, name := range []string{"chain", "chain-0", "chain-x", "ring-5", "proc-"} {
		if _, err := ParseWorkload(name); err == nil {
			t.Errorf("ParseWorkload(%q) accepted", name)
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
// overhead: starting and waiting for /bin/true directly, in this process.
func BenchmarkProcessStart(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
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
