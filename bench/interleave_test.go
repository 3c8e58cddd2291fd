package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

// fakePeer is a Peer that runs nothing: it records its runs and returns
// fixed times.
type fakePeer struct {
	name string
	wall time.Duration
	fail int // fail its run number fail (from 1); 0 = never
	mu   sync.Mutex
	runs int
}

func (p *fakePeer) Name() string { return p.name }
func (p *fakePeer) Install(context.Context, string, io.Writer) (string, error) {
	return "v0", nil
}
func (p *fakePeer) Unsupported(w Workload) string { return peerShape(w) }
func (p *fakePeer) Durability() string            { return "none (fake)" }
func (p *fakePeer) Run(_ context.Context, w Workload, dir string) (PeerRun, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.runs++
	if p.runs == p.fail {
		return PeerRun{}, fmt.Errorf("boom")
	}
	return PeerRun{Wall: p.wall + time.Duration(p.runs)*time.Millisecond, Sched: p.wall / 2}, nil
}

// TestRun_InterleavesSidesRunByRun: with --runs 3, two log stores and two
// peers, each round runs Skiff on each log store and then each peer, in
// that order (ABAB…), and every side reports its median and spread.
func TestRun_InterleavesSidesRunByRun(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	a, b := &fakePeer{name: "peer-a", wall: 50 * time.Millisecond}, &fakePeer{name: "peer-b", wall: 80 * time.Millisecond}
	var order []string
	cfg := Config{
		Workloads: []string{"chain-3", "cached-2"},
		Runs:      3,
		Peers:     []Peer{a, b},
		DataDir:   t.TempDir(),
		NoSync:    true,
		LogStores: []string{"wal", "bolt"},
		Trace: func(side, workload string, run int) {
			order = append(order, fmt.Sprintf("%s %s %d", workload, side, run))
		},
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for r := 1; r <= 3; r++ {
		for _, side := range []string{"skiff[wal]", "skiff[bolt]", "peer-a", "peer-b"} {
			want = append(want, fmt.Sprintf("chain-3 %s %d", side, r))
		}
	}
	for r := 1; r <= 3; r++ { // peers skip cached-N
		want = append(want, fmt.Sprintf("cached-2 skiff[wal] %d", r), fmt.Sprintf("cached-2 skiff[bolt] %d", r))
	}
	if !slices.Equal(order, want) {
		t.Fatalf("order:\n%s\nwant:\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	r := rep.Results[0]
	if r.Workload != "chain-3" || r.LogStore != "wal" || len(r.WallRunsS) != 3 || len(r.Peers) != 2 {
		t.Fatalf("result %+v", r)
	}
	if !(r.WallMinS <= r.WallS && r.WallS <= r.WallMaxS) || !slices.Contains(r.WallRunsS, r.WallS) ||
		r.WallMinS != slices.Min(r.WallRunsS) || r.WallMaxS != slices.Max(r.WallRunsS) {
		t.Errorf("skiff spread: median %v min %v max %v runs %v", r.WallS, r.WallMinS, r.WallMaxS, r.WallRunsS)
	}
	if r.SchedS <= 0 || r.SchedS > r.WallMaxS || r.ParseMs <= 0 || r.Breakdown == nil || r.Breakdown.Executions != 3 {
		t.Errorf("sched %v parse %v breakdown %+v", r.SchedS, r.ParseMs, r.Breakdown)
	}
	pa := r.Peers[0]
	if pa.Peer != "peer-a" || pa.WallS != 0.052 || pa.WallMinS != 0.051 || pa.WallMaxS != 0.053 || pa.SchedS != 0.025 || len(pa.WallRunsS) != 3 {
		t.Errorf("peer-a %+v", pa)
	}
	if rep.Durability == "" || rep.Peers[0].Durability != "none (fake)" {
		t.Errorf("durability: skiff %q, peers %+v", rep.Durability, rep.Peers)
	}
	if c := rep.Results[2]; c.Workload != "cached-2" || len(c.Peers) != 2 || c.Peers[0].Skipped == "" {
		t.Errorf("cached-2: %+v", c)
	}
}

// TestRun_FailedPeerStopsAlone: a peer whose run fails is not run again,
// and the other sides go on with every round.
func TestRun_FailedPeerStopsAlone(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	a, b := &fakePeer{name: "peer-a", fail: 2}, &fakePeer{name: "peer-b"}
	counts := map[string]int{}
	rep, err := Run(context.Background(), Config{Workloads: []string{"chain-2"}, Runs: 3, Peers: []Peer{a, b}, DataDir: t.TempDir(), NoSync: true,
		Trace: func(side, _ string, _ int) { counts[side]++ }})
	if err != nil {
		t.Fatal(err)
	}
	if counts["skiff[wal]"] != 3 || counts["peer-a"] != 2 || counts["peer-b"] != 3 {
		t.Errorf("runs per side %v", counts)
	}
	ps := rep.Results[0].Peers
	if ps[0].Error != "boom" || ps[1].Error != "" || len(ps[1].WallRunsS) != 3 {
		t.Errorf("peers %+v", ps)
	}
}

// TestWorkload_YAMLCompilesToPlan: the pipeline text the wall time starts
// from compiles to the very plan the workload builds.
func TestWorkload_YAMLCompilesToPlan(t *testing.T) {
	for _, name := range []string{"chain-3", "fanout-3", "lattice-2x3", "cached-2", "parallelfor-4", "proc-chain-2", "proc-fanout-2"} {
		t.Run(name, func(t *testing.T) {
			w, err := ParseWorkload(name)
			if err != nil {
				t.Fatal(err)
			}
			got, err := spec.ParseSkiff(w.YAML())
			if err != nil {
				t.Fatalf("%v\n%s", err, w.YAML())
			}
			want, err := w.Plan()
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			x, _ := json.Marshal(want)
			if string(g) != string(x) {
				t.Errorf("YAML plan:\n%s\nwant:\n%s", g, x)
			}
		})
	}
}

// TestRun_PeersSkipParallelForBesideItsFanout: peers run parallelfor-N as
// fanout-N, so with both named they run it once, in the fan-out's row.
func TestRun_PeersSkipParallelForBesideItsFanout(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	counts := map[string]int{}
	a := &fakePeer{name: "peer-a"}
	rep, err := Run(context.Background(), Config{Workloads: []string{"fanout-3", "parallelfor-3", "parallelfor-2"}, Peers: []Peer{a}, DataDir: t.TempDir(), NoSync: true,
		Trace: func(side, w string, _ int) { counts[side+" "+w]++ }})
	if err != nil {
		t.Fatal(err)
	}
	if counts["peer-a fanout-3"] != 1 || counts["peer-a parallelfor-3"] != 0 || counts["peer-a parallelfor-2"] != 1 || counts["skiff[wal] parallelfor-3"] != 1 {
		t.Errorf("runs %v", counts)
	}
	if p := rep.Results[1].Peers[0]; p.Peer != "peer-a" || !strings.Contains(p.Skipped, "fanout-3") {
		t.Errorf("parallelfor-3's peer row %+v", p)
	}
}
