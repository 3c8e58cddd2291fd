package bench

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// digestsAgree fails unless every live node of c holds the same state at
// the same applied index (waiting for followers to catch up).
func digestsAgree(t *testing.T, c *Cluster) {
	t.Helper()
	_, li, err := c.engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want, wantD, err := c.nodes[li].st.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range c.nodes {
		if err := nd.st.WaitIndex(context.Background(), want); err != nil {
			t.Fatal(err)
		}
		idx, d, err := nd.st.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if idx == want && d != wantD {
			t.Errorf("%s: digest %s at index %d, leader's %s", nd.id, d, idx, wantD)
		}
	}
}

// TestCluster_RunsWorkloadsOnTheLeader: a three-node cluster on loopback
// runs a fan-out and a chain through its leader's engine; every task is
// started once and every node ends with the same state.
func TestCluster_RunsWorkloadsOnTheLeader(t *testing.T) {
	c, err := OpenCluster(context.Background(), t.TempDir(), 3, Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, name := range []string{"fanout-50", "chain-10"} {
		w, _ := ParseWorkload(name)
		r, _, err := c.Run(context.Background(), w)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.Tasks < w.N || r.Entries == 0 || r.CPU <= 0 || r.Sched != r.Wall {
			t.Errorf("%s: %+v", name, r)
		}
	}
	if twice, rerun, total := c.startedTwice(); twice != 0 || rerun != 0 || total < 60 {
		t.Errorf("started twice %d, rerun %d, of %d executions; want 0 and 0 of at least 60", twice, rerun, total)
	}
	digestsAgree(t, c)
}

// TestCluster_OtherWork: the failover's gate before a kill sees no work
// on an idle cluster, and sees a fan-out's leaves live on the other
// nodes' workers while it runs.
func TestCluster_OtherWork(t *testing.T) {
	c, err := OpenCluster(context.Background(), t.TempDir(), 3, Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, leader, err := c.engine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.otherWork(leader) {
		t.Fatal("an idle cluster has live executions on other nodes")
	}
	// A leaf is live from its placement to its worker's report: a few
	// milliseconds for an instant sim step, which a loaded machine can
	// keep the poll from seeing; each try is a new fan-out.
	w, _ := ParseWorkload("fanout-300")
	seen := false
	for try := 0; try < 10 && !seen; try++ {
		done := make(chan error, 1)
		go func() {
			_, _, err := c.Run(context.Background(), w)
			done <- err
		}()
	poll:
		for !seen {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break poll
			default:
			}
			seen = c.otherWork(leader)
		}
		if seen {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	if !seen {
		t.Fatal("no leaf of ten fan-outs of 300 was seen live on another node's worker")
	}
	if c.otherWork(leader) {
		t.Error("live executions on other nodes after the run ended")
	}
}

// TestCluster_FailoverKillsTheLeaderAndRunsSucceed: two leader kills
// during a running fan-out; each is followed by a decision of a new
// leader, the fan-outs succeed, the killed nodes come back, and the
// state machines agree.
func TestCluster_FailoverKillsTheLeaderAndRunsSucceed(t *testing.T) {
	if testing.Short() {
		t.Skip("kills leaders (seconds each)")
	}
	c, err := OpenCluster(context.Background(), t.TempDir(), 3, Options{NoSync: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f := c.RunFailover(context.Background(), 2, 300)
	if f.Error != "" || f.Runs == 0 || f.Succeeded != f.Runs {
		t.Fatalf("failover: %+v", f)
	}
	if len(f.KillToDecisionMs) != 2 || f.KillToDecisionP50Ms <= 0 || f.KillToDecisionP99Ms < f.KillToDecisionP50Ms || f.KillToLeaderP50Ms <= 0 {
		t.Errorf("kill-to-decision figures: %+v", f)
	}
	if f.Executions < 300 {
		t.Errorf("%d executions started for %d fan-out runs of 300", f.Executions, f.Runs)
	}
	if f.StartedTwice != 0 {
		t.Errorf("%d executions started twice (the same attempt) across failovers, want 0", f.StartedTwice)
	}
	if f.KilledWithoutOtherWork != 0 {
		t.Errorf("%d kills made with no live execution on another node's worker, want 0 (a fan-out of 300 spreads its leaves)", f.KilledWithoutOtherWork)
	}
	for _, nd := range c.nodes {
		if nd.st == nil {
			t.Fatalf("%s was not brought back", nd.id)
		}
	}
	digestsAgree(t, c)
}

// TestClusterResult_AgainstSingle: the cluster's share of the single
// node's speed, its CPU over the single node's, and the share its CPU
// allows on the machine's cores.
func TestClusterResult_AgainstSingle(t *testing.T) {
	single := &WorkloadResult{SchedS: 0.2, CPUS: 0.3}
	cr := ClusterResult{WallS: 0.5, CPUS: 1.2}
	cr.against(single, 2)
	// 0.2 / 0.5; 1.2 / 0.3; 0.2 / (1.2 / 2)
	if !near(cr.OfSingle, 0.4) || !near(cr.CPUOfSingle, 4) || !near(cr.CPUBoundOfSingle, 1.0/3) || cr.Cores != 2 {
		t.Errorf("against: %+v", cr)
	}
	// unmeasured CPU (an old report, a platform without it): no CPU figures
	cr = ClusterResult{WallS: 0.5}
	cr.against(single, 2)
	if !near(cr.OfSingle, 0.4) || cr.CPUOfSingle != 0 || cr.CPUBoundOfSingle != 0 || cr.Cores != 0 {
		t.Errorf("against without CPU: %+v", cr)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestReport_ClusterAndFailoverInTableAndJSON(t *testing.T) {
	rep := &Report{Runs: 1, ClusterNodes: 3, Results: []WorkloadResult{
		{Workload: "fanout-10", Tasks: 11, WallS: 1, SchedS: 0.9, CPUS: 1.25, TasksPerSec: 11, Cluster: &ClusterResult{Nodes: 3, Tasks: 11, WallS: 2, TasksPerSec: 5.5, OfSingle: 0.5,
			CPUS: 4, CPUOfSingle: 3.2, CPUBoundOfSingle: 0.45, Cores: 2}},
		{Workload: "proc-chain-2", Tasks: 2, WallS: 1, TasksPerSec: 2, Cluster: &ClusterResult{Nodes: 3, Skipped: "sim only"}},
	}, Failover: &FailoverResult{Nodes: 3, Kills: 20, Workload: "fanout-2000", Runs: 4, Succeeded: 4, KillToDecisionP50Ms: 600, KillToDecisionP99Ms: 950, Executions: 8000, StartedTwice: 7, TasksRerun: 5, KilledWithoutOtherWork: 2}}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"cluster-3", "50% of single", "CPU 3.2x single's: at most 45% on 2 cores", "1.250", "4.000", "skipped: sim only", "killed 20 times", "p99 950 ms", "the same execution started twice: 7", "after their worker died with the leader: 5", "with no live execution on another node's worker (after waiting 5s for one): 2"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, out.String())
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"cluster_nodes":3`, `"of_single":0.5`, `"cpu_s":1.25`, `"cpu_s":4`, `"cpu_of_single":3.2`, `"cpu_bound_of_single":0.45`, `"kill_to_decision_p99_ms":950`, `"executions_started_twice":7`, `"killed_without_other_work":2`} {
		if !strings.Contains(string(b), s) {
			t.Errorf("JSON lacks %s: %s", s, b)
		}
	}
}
