package main

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// TestBench_JSON runs two tiny workloads without fsyncs; it asserts the
// shape of the report, no timings.
func TestBench_JSON(t *testing.T) {
	r := skiff(t, t.TempDir(), "bench", "chain-3", "cached-2", "--no-sync", "--output", "json", "--data-dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Machine struct {
			Cores int `json:"cores"`
		} `json:"machine"`
		Durable bool `json:"durable"`
		Results []struct {
			Workload    string  `json:"workload"`
			Tasks       int     `json:"tasks"`
			TasksPerSec float64 `json:"tasks_per_sec"`
			Cached      int     `json:"cached_tasks"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if rep.Machine.Cores < 1 || rep.Durable || len(rep.Results) != 2 ||
		rep.Results[0].Workload != "chain-3" || rep.Results[0].Tasks != 3 || rep.Results[0].TasksPerSec <= 0 ||
		rep.Results[1].Workload != "cached-2" || rep.Results[1].Cached != 3 {
		t.Errorf("report:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "skiff chain-3") {
		t.Errorf("no progress on stderr:\n%s", r.stderr)
	}
}

// TestBench_BothLogStores: --raft-log-store wal,bolt measures each
// backend on its own node, run by run, and says which figures are counted.
func TestBench_BothLogStores(t *testing.T) {
	r := skiff(t, t.TempDir(), "bench", "chain-3", "--runs", "2", "--raft-log-store", "wal,bolt", "--no-sync", "-o", "json", "--data-dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	var rep struct {
		Results []struct {
			Workload      string    `json:"workload"`
			LogStore      string    `json:"log_store"`
			FsyncsCounted bool      `json:"fsyncs_counted"`
			WallRunsS     []float64 `json:"wall_runs_s"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(rep.Results) != 2 || rep.Results[0].LogStore != "wal" || !rep.Results[0].FsyncsCounted ||
		rep.Results[1].LogStore != "bolt" || rep.Results[1].FsyncsCounted || len(rep.Results[1].WallRunsS) != 2 {
		t.Fatalf("report:\n%s", r.stdout)
	}
	// Interleaved: wal's second run comes after bolt's first.
	if i, j := strings.Index(r.stderr, "chain-3 [bolt] run 1"), strings.Index(r.stderr, "chain-3 [wal] run 2"); i < 0 || j < i {
		t.Errorf("runs not interleaved:\n%s", r.stderr)
	}
}

func TestBench_BadInput(t *testing.T) {
	for args, want := range map[string]string{
		"chain-3 --raft-log-store wal,xx": "--raft-log-store",
		"parallelfor-0":                   "not a positive integer",
		"ring-3":                          "unknown shape",
		"chain-3 --peers xx":              "unknown peer",
		"chain-3 --output x":              "--output",
	} {
		r := skiff(t, t.TempDir(), append([]string{"bench"}, strings.Fields(args)...)...)
		if r.code != exitBadInput || !strings.Contains(r.stderr, want) {
			t.Errorf("bench %s: exit %d, stderr %q; want exit %d and %q", args, r.code, r.stderr, exitBadInput, want)
		}
	}
}

// TestBench_ClusterFlagsRefuseBadUse: --failover without a cluster of at
// least two, and an out-of-range --cluster, are usage errors (exit 2)
// naming the flag.
func TestBench_ClusterFlagsRefuseBadUse(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bench", "--failover", "2"}, "--failover needs --cluster"},
		{[]string{"bench", "--cluster", "1", "--failover", "2"}, "--failover needs --cluster"},
		{[]string{"bench", "--cluster", "-1"}, "--cluster -1"},
		{[]string{"bench", "--cluster", "3", "--failover", "-1"}, "--failover -1"},
	} {
		r := skiff(t, t.TempDir(), tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestBench_Reopen: --reopen kills a child skiff (the same binary) with
// SIGKILL after it filled a log, and reports the time from reopening its
// data dir to the first decision on the resumed run, in JSON and table.
func TestBench_Reopen(t *testing.T) {
	r := skiff(t, t.TempDir(), "bench", "--reopen", "--reopen-entries", "200", "--no-sync", "-o", "json", "--data-dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	var rep struct {
		Results []json.RawMessage `json:"results"`
		Reopen  *struct {
			Entries    uint64 `json:"entries_before_kill"`
			LogEntries uint64 `json:"log_entries"`
			Killed     bool   `json:"killed"`
			Kept       struct {
				OpenMs          float64 `json:"open_ms"`
				FirstDecisionMs float64 `json:"first_decision_ms"`
				Resumed         int     `json:"runs_resumed"`
			} `json:"state_kept"`
			Lost struct {
				FirstDecisionMs float64 `json:"first_decision_ms"`
				Applied         uint64  `json:"applied_index"`
			} `json:"state_lost"`
		} `json:"reopen"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	x := rep.Reopen
	if x == nil || len(rep.Results) != 0 || !x.Killed || x.Entries < 200 || x.LogEntries < x.Entries ||
		x.Kept.Resumed != 1 || x.Kept.OpenMs <= 0 || x.Kept.FirstDecisionMs < x.Kept.OpenMs ||
		x.Lost.FirstDecisionMs <= 0 || x.Lost.Applied < x.Entries {
		t.Errorf("reopen report:\n%s", r.stdout)
	}
}

// TestBench_HelpDescribesFlags: --help names the interleaving, the wall
// time from the pipeline's text, and the --reopen flags (not the child's).
func TestBench_HelpDescribesFlags(t *testing.T) {
	r := skiff(t, t.TempDir(), "bench", "--help")
	for _, s := range []string{"--reopen ", "--reopen-entries", "interleaved", "YAML text", "SCHED", "durability", "breakdown", "min-max"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("help lacks %q:\n%s", s, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "reopen-child") {
		t.Errorf("help shows the hidden --reopen-child:\n%s", r.stdout)
	}
}

// TestBench_JSONHasSpreadSchedAndDurability: every side's median comes
// with its spread, Skiff's wall time contains its parse and sched times,
// and the report states Skiff's durability.
func TestBench_JSONHasSpreadSchedAndDurability(t *testing.T) {
	r := skiff(t, t.TempDir(), "bench", "proc-chain-3", "--runs", "3", "--no-sync", "-o", "json", "--data-dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	var rep struct {
		Durability string `json:"durability"`
		Results    []struct {
			WallS     float64 `json:"wall_s"`
			WallMinS  float64 `json:"wall_min_s"`
			WallMaxS  float64 `json:"wall_max_s"`
			ParseMs   float64 `json:"parse_ms"`
			SchedS    float64 `json:"sched_s"`
			CPUS      float64 `json:"cpu_s"`
			Breakdown *struct {
				Executions int     `json:"executions"`
				ProcessMs  float64 `json:"process_ms_per_task"`
				Commits    int     `json:"commits"`
				CommitMs   float64 `json:"commit_ms_per_task"`
				SkiffCPUMs float64 `json:"skiff_cpu_ms_per_task"`
				StepsCPUMs float64 `json:"steps_cpu_ms_per_task"`
			} `json:"breakdown"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if !strings.HasPrefix(rep.Durability, "none (--no-sync)") || len(rep.Results) != 1 {
		t.Fatalf("report:\n%s", r.stdout)
	}
	x := rep.Results[0]
	if !(x.WallMinS <= x.WallS && x.WallS <= x.WallMaxS) || x.ParseMs <= 0 || x.SchedS <= 0 || x.SchedS > x.WallMaxS {
		t.Errorf("times: %+v", x)
	}
	if b := x.Breakdown; b == nil || b.Executions != 3 || b.ProcessMs <= 0 || b.Commits == 0 || b.CommitMs <= 0 {
		t.Errorf("breakdown: %+v", x.Breakdown)
	}
	// the CPU time: Skiff's and its three /bin/true steps', which it waited for
	if b := x.Breakdown; b == nil || b.SkiffCPUMs <= 0 || b.StepsCPUMs <= 0 || x.CPUS <= 0 ||
		math.Abs(x.CPUS*1000/3-(b.SkiffCPUMs+b.StepsCPUMs)) > 1 {
		t.Errorf("CPU: %v s; breakdown: %+v", x.CPUS, x.Breakdown)
	}
}
