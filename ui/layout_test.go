package ui

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestLayoutDAG_LayersRespectEdges(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for n := 1; n < 60; n++ {
		g := Graph{Nodes: n}
		for a := range n {
			for b := a + 1; b < n; b++ {
				if r.IntN(n) < 2 {
					g.Edges = append(g.Edges, [2]int{a, b})
				}
			}
		}
		l, err := LayoutDAG(g, DefaultLayoutConfig())
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range g.Edges {
			if l.Layer[e[0]] >= l.Layer[e[1]] {
				t.Fatalf("n=%d: edge %v: layer %d -> %d", n, e, l.Layer[e[0]], l.Layer[e[1]])
			}
		}
		for v := range n { // longest path: a node sits right below its deepest dependency
			deepest := -1
			for _, e := range g.Edges {
				if e[1] == v {
					deepest = max(deepest, l.Layer[e[0]])
				}
			}
			if l.Layer[v] != deepest+1 {
				t.Fatalf("n=%d: node %d in layer %d, deepest dependency in %d", n, v, l.Layer[v], deepest)
			}
		}
		assertNoOverlap(t, l, DefaultLayoutConfig())
	}
}

func assertNoOverlap(t testing.TB, l *Layout, cfg LayoutConfig) {
	t.Helper()
	for a := range l.Pos {
		for b := a + 1; b < len(l.Pos); b++ {
			pa, pb := l.Pos[a], l.Pos[b]
			if pa.Y == pb.Y && pa.X < pb.X+float64(cfg.NodeWidth) && pb.X < pa.X+float64(cfg.NodeWidth) {
				t.Fatalf("nodes %d and %d overlap: %v %v", a, b, pa, pb)
			}
		}
	}
}

func TestLayoutDAG_LongEdgesBendThroughDummies(t *testing.T) {
	t.Parallel()
	// 0 -> 1 -> 2 -> 3 and 0 -> 3: the long edge passes two dummy layers.
	g := Graph{Nodes: 4, Edges: [][2]int{{0, 1}, {1, 2}, {2, 3}, {0, 3}}}
	l, err := LayoutDAG(g, DefaultLayoutConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(l.Routes[3]); got != 4 {
		t.Fatalf("long edge route has %d points, want 4 (two ends, two bends): %v", got, l.Routes[3])
	}
	if got := len(l.Routes[0]); got != 2 {
		t.Fatalf("short edge route has %d points, want 2", got)
	}
	for i, p := range l.Routes[3][1:3] { // the bends must not sit on a node of their layer
		node := l.Pos[i+1]
		if p.X > node.X && p.X < node.X+float64(DefaultLayoutConfig().NodeWidth) {
			t.Fatalf("bend %d at x=%v runs through node %d at %v", i, p.X, i+1, node)
		}
	}
}

func TestLayoutDAG_CrossingReductionNeverIncreases(t *testing.T) {
	t.Parallel()
	// A known graph whose depth-first order [2 3 4] crosses once (0->3
	// with 1->2); [3 2 4] crosses none.
	g := Graph{Nodes: 5, Edges: [][2]int{{0, 2}, {0, 3}, {1, 2}, {1, 4}}}
	lg := addDummies(g, mustLayers(t, g))
	init := initialOrder(lg)
	before := crossings(lg, init)
	after := crossings(lg, reduceCrossings(lg, cloneOrder(init), 24))
	if before == 0 {
		t.Fatalf("the known graph should cross in its initial order")
	}
	if after >= before {
		t.Fatalf("crossings %d -> %d: want fewer", before, after)
	}
	// and on random graphs it never gets worse
	r := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		n := 2 + r.IntN(30)
		g := Graph{Nodes: n}
		for range r.IntN(3 * n) {
			a, b := r.IntN(n), r.IntN(n)
			if a < b {
				g.Edges = append(g.Edges, [2]int{a, b})
			}
		}
		lg := addDummies(g, mustLayers(t, g))
		init := initialOrder(lg)
		if b, a := crossings(lg, init), crossings(lg, reduceCrossings(lg, cloneOrder(init), 24)); a > b {
			t.Fatalf("crossings increased %d -> %d on %v", b, a, g.Edges)
		}
	}
}

func TestCrossings_CountsKnownCases(t *testing.T) {
	t.Parallel()
	g := Graph{Nodes: 4, Edges: [][2]int{{0, 3}, {1, 2}}}
	lg := addDummies(g, mustLayers(t, g))
	if c := crossings(lg, [][]int{{0, 1}, {2, 3}}); c != 1 {
		t.Fatalf("X shape: %d crossings, want 1", c)
	}
	if c := crossings(lg, [][]int{{0, 1}, {3, 2}}); c != 0 {
		t.Fatalf("parallel: %d crossings, want 0", c)
	}
}

func mustLayers(t testing.TB, g Graph) []int {
	t.Helper()
	l, err := longestPathLayers(g)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLayoutDAG_RejectsCycle(t *testing.T) {
	t.Parallel()
	_, err := LayoutDAG(Graph{Nodes: 2, Edges: [][2]int{{0, 1}, {1, 0}}}, DefaultLayoutConfig())
	if !errors.Is(err, ErrCycle) {
		t.Fatalf("err = %v, want ErrCycle", err)
	}
	_, err = LayoutDAG(Graph{Nodes: 2, Edges: [][2]int{{0, 5}}}, DefaultLayoutConfig())
	if err == nil {
		t.Fatal("edge to a missing node: no error")
	}
}

func TestLayoutDAG_WideFanOutIsFast(t *testing.T) {
	t.Parallel()
	g := Graph{Nodes: 2002}
	for i := 1; i <= 2000; i++ {
		g.Edges = append(g.Edges, [2]int{0, i}, [2]int{i, 2001})
	}
	l, err := LayoutDAG(g, DefaultLayoutConfig())
	if err != nil {
		t.Fatal(err)
	}
	if l.Layer[2001] != 2 {
		t.Fatalf("sink in layer %d", l.Layer[2001])
	}
}
