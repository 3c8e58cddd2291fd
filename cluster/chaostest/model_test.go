package chaostest

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/skiffml/skiff/cluster/containertest"
	"github.com/skiffml/skiff/engine/spec"
)

func op(client int, call, ret int64, kind OpKind, key, id, state string) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: Input{Kind: kind, Key: key}, Output: Output{RunID: id, State: state}}
}

// TestModel_Histories: the model accepts what a linearizable run API may
// answer and refuses a stale read, a state that goes back, a changed final
// state and a second run for one request id.
func TestModel_Histories(t *testing.T) {
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"create then reads forward", []porcupine.Operation{
			op(0, 0, 10, OpCreate, "k", "r1", ""),
			op(1, 11, 20, OpRead, "k", "r1", "PENDING"),
			op(2, 21, 30, OpRead, "k", "r1", "RUNNING"),
			op(1, 31, 40, OpRead, "k", "r1", "SUCCEEDED"),
		}, porcupine.Ok},
		{"concurrent reads may order either way", []porcupine.Operation{
			op(0, 0, 10, OpCreate, "k", "r1", ""),
			op(1, 11, 40, OpRead, "k", "r1", "SUCCEEDED"),
			op(2, 12, 39, OpRead, "k", "r1", "RUNNING"),
		}, porcupine.Ok},
		{"retried create answers the same run", []porcupine.Operation{
			op(0, 0, 10, OpCreate, "k", "r1", ""),
			op(0, 11, 20, OpCreate, "k", "r1", ""),
			op(1, 0, 5, OpCreate, "j", "r2", ""),
		}, porcupine.Ok},
		{"a second run for one request id", []porcupine.Operation{
			op(0, 0, 10, OpCreate, "k", "r1", ""),
			op(1, 11, 20, OpCreate, "k", "r2", ""),
		}, porcupine.Illegal},
		{"a read goes back after a later state was seen", []porcupine.Operation{
			op(0, 0, 10, OpCreate, "k", "r1", ""),
			op(1, 11, 20, OpRead, "k", "r1", "SUCCEEDED"),
			op(2, 21, 30, OpRead, "k", "r1", "RUNNING"),
		}, porcupine.Illegal},
		{"a final state changes", []porcupine.Operation{
			op(0, 0, 10, OpCreate, "k", "r1", ""),
			op(1, 11, 20, OpRead, "k", "r1", "CANCELED"),
			op(2, 21, 30, OpRead, "k", "r1", "SUCCEEDED"),
		}, porcupine.Illegal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := Check(tc.ops, 10*time.Second); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestSchedule_Replays: one seed, one schedule; every kind of fault comes
// in a 90 s run; pauses hold past the lease; faults do not overlap and
// end within the duration.
func TestSchedule_Replays(t *testing.T) {
	cfg := ScheduleConfig{Duration: 90 * time.Second, Lease: 10 * time.Second, Settle: 2 * time.Second}
	for seed := int64(1); seed <= 50; seed++ {
		a, b := Schedule(seed, cfg), Schedule(seed, cfg)
		if FormatSchedule(a) != FormatSchedule(b) {
			t.Fatalf("seed %d: two schedules:\n%s\n%s", seed, FormatSchedule(a), FormatSchedule(b))
		}
		seen := map[Kind]bool{}
		var end time.Duration
		for _, f := range a {
			seen[f.Kind] = true
			if f.At < end {
				t.Fatalf("seed %d: %s starts before the fault before it ends (%s)", seed, f, end)
			}
			if f.Kind == PauseNode && f.Hold <= cfg.Lease {
				t.Fatalf("seed %d: %s holds within the lease", seed, f)
			}
			end = f.At + f.Hold
		}
		if end > cfg.Duration {
			t.Fatalf("seed %d: the last fault ends at %s, after %s", seed, end, cfg.Duration)
		}
		if len(seen) != len(Kinds) {
			t.Fatalf("seed %d: kinds %v in 90 s:\n%s", seed, seen, FormatSchedule(a))
		}
	}
	if FormatSchedule(Schedule(1, cfg)) == FormatSchedule(Schedule(2, cfg)) {
		t.Fatal("seeds 1 and 2 drew the same schedule")
	}
}

// TestPipelines_Parse: every workload is a valid Skiff pipeline.
func TestPipelines_Parse(t *testing.T) {
	for _, w := range Workloads {
		if _, err := spec.ParseSkiff([]byte(Pipeline(w))); err != nil {
			t.Errorf("%s: %v\n%s", w, err, Pipeline(w))
		}
	}
}

// TestCountStarts_Offences: a twice-started attempt and an attempt the
// run does not record are counted; a recorded retry and a lost attempt
// started again elsewhere as a new attempt are not.
func TestCountStarts_Offences(t *testing.T) {
	st := func(run, task, attempt, node string) containertest.StepStart {
		return containertest.StepStart{Run: run, Task: task, Attempt: attempt, Node: node}
	}
	recorded := map[[2]string]int{{"r1", "a"}: 2, {"r1", "b"}: 1, {"r2", "a"}: 1}
	cases := []struct {
		name           string
		starts         []containertest.StepStart
		twice, unknown int
	}{
		{"clean: a retry and a lost attempt restarted", []containertest.StepStart{st("r1", "a", "1", "node0"), st("r1", "a", "2", "node1"), st("r1", "b", "1", "node2")}, 0, 0},
		{"one attempt started on two nodes", []containertest.StepStart{st("r2", "a", "1", "node0"), st("r2", "a", "1", "node1")}, 1, 0},
		{"an attempt the run does not record", []containertest.StepStart{st("r1", "b", "1", "node0"), st("r1", "b", "2", "node1")}, 0, 1},
		{"a run not final: only twice-started attempts", []containertest.StepStart{st("r9", "x", "7", "node0")}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			twice, unknown, lines := countStarts(tc.starts, recorded)
			if twice != tc.twice || unknown != tc.unknown {
				t.Fatalf("twice %d unknown %d, want %d %d: %v", twice, unknown, tc.twice, tc.unknown, lines)
			}
		})
	}
}
