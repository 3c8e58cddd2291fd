package ui

import (
	"fmt"
	"slices"
	"sort"
)

// Graph is a DAG to lay out: Nodes nodes numbered 0..Nodes-1 and edges
// From -> To (From is a dependency of To).
type Graph struct {
	Nodes int
	Edges [][2]int
}

// LayoutConfig sizes a layout, in SVG user units.
type LayoutConfig struct {
	NodeWidth, NodeHeight int
	LayerGap, NodeGap     int // vertical gap between layers, horizontal between nodes
	Sweeps                int // barycenter sweeps (down and up count one each)
}

// DefaultLayoutConfig is what the run page uses.
func DefaultLayoutConfig() LayoutConfig {
	return LayoutConfig{NodeWidth: 184, NodeHeight: 40, LayerGap: 56, NodeGap: 24, Sweeps: 24}
}

// Point is a position in the layout.
type Point struct{ X, Y float64 }

// Layout is where every node sits and how every edge runs.
type Layout struct {
	Width, Height float64
	Layer         []int   // layer of each node
	Pos           []Point // top-left corner of each node
	Routes        [][]Point
	// Order is each layer's nodes, left to right; dummies (ids >= Nodes)
	// stand for long edges' bends.
	Order [][]int
}

// LayoutDAG lays g out top to bottom in layers (Sugiyama style):
// longest-path layering, a dummy node wherever an edge spans more than one
// layer, barycenter crossing reduction (the best order seen is kept, so
// it never has more crossings than the initial one), then coordinates
// pulled toward the neighbours' barycenters without overlaps. Routes are
// edge polylines from the source's bottom to the target's top.
func LayoutDAG(g Graph, cfg LayoutConfig) (*Layout, error) {
	layer, err := longestPathLayers(g)
	if err != nil {
		return nil, err
	}
	lg := addDummies(g, layer)
	order := initialOrder(lg)
	order = reduceCrossings(lg, order, cfg.Sweeps)
	x := assignX(lg, order, cfg)
	return finish(g, lg, order, x, cfg), nil
}

// longestPathLayers puts each node one layer below its deepest dependency.
func longestPathLayers(g Graph) ([]int, error) {
	indeg := make([]int, g.Nodes)
	succ := make([][]int, g.Nodes)
	for i, e := range g.Edges {
		if e[0] < 0 || e[0] >= g.Nodes || e[1] < 0 || e[1] >= g.Nodes {
			return nil, fmt.Errorf("edges[%d]: node out of range 0..%d", i, g.Nodes-1)
		}
		succ[e[0]] = append(succ[e[0]], e[1])
		indeg[e[1]]++
	}
	layer := make([]int, g.Nodes)
	queue := make([]int, 0, g.Nodes)
	for v := range g.Nodes {
		if indeg[v] == 0 {
			queue = append(queue, v)
		}
	}
	for head := 0; head < len(queue); head++ {
		v := queue[head]
		for _, w := range succ[v] {
			layer[w] = max(layer[w], layer[v]+1)
			if indeg[w]--; indeg[w] == 0 {
				queue = append(queue, w)
			}
		}
	}
	if len(queue) != g.Nodes {
		return nil, fmt.Errorf("%w: %d of %d nodes are on a cycle", ErrCycle, g.Nodes-len(queue), g.Nodes)
	}
	return layer, nil
}

// layered is g with dummies: every edge joins adjacent layers.
type layered struct {
	n      int     // nodes including dummies
	real   int     // nodes of g
	layer  []int   // per node
	up     [][]int // neighbours one layer up
	down   [][]int // neighbours one layer down
	chains [][]int // per edge of g: the nodes it passes, source to target
	layers int
}

func addDummies(g Graph, layer []int) *layered {
	lg := &layered{n: g.Nodes, real: g.Nodes, layer: slices.Clone(layer)}
	for _, l := range layer {
		lg.layers = max(lg.layers, l+1)
	}
	lg.up = make([][]int, g.Nodes)
	lg.down = make([][]int, g.Nodes)
	link := func(a, b int) {
		lg.down[a] = append(lg.down[a], b)
		lg.up[b] = append(lg.up[b], a)
	}
	for _, e := range g.Edges {
		chain := []int{e[0]}
		prev := e[0]
		for l := layer[e[0]] + 1; l < layer[e[1]]; l++ {
			d := lg.n
			lg.n++
			lg.layer = append(lg.layer, l)
			lg.up = append(lg.up, nil)
			lg.down = append(lg.down, nil)
			link(prev, d)
			chain = append(chain, d)
			prev = d
		}
		link(prev, e[1])
		lg.chains = append(lg.chains, append(chain, e[1]))
	}
	return lg
}

// initialOrder places nodes by a depth-first walk from the sources, which
// keeps chains together.
func initialOrder(lg *layered) [][]int {
	order := make([][]int, lg.layers)
	seen := make([]bool, lg.n)
	var visit func(v int)
	visit = func(v int) {
		if seen[v] {
			return
		}
		seen[v] = true
		order[lg.layer[v]] = append(order[lg.layer[v]], v)
		for _, w := range lg.down[v] {
			visit(w)
		}
	}
	for v := range lg.n {
		if len(lg.up[v]) == 0 {
			visit(v)
		}
	}
	return order
}

// reduceCrossings sweeps down and up, sorting each layer by the barycenter
// of its neighbours in the layer just fixed, and keeps the best order.
func reduceCrossings(lg *layered, order [][]int, sweeps int) [][]int {
	best := cloneOrder(order)
	bestC := crossings(lg, order)
	pos := make([]float64, lg.n)
	for s := 0; s < sweeps && bestC > 0; s++ {
		if s%2 == 0 {
			for l := 1; l < len(order); l++ {
				sortByBarycenter(order[l], order[l-1], lg.up, pos)
			}
		} else {
			for l := len(order) - 2; l >= 0; l-- {
				sortByBarycenter(order[l], order[l+1], lg.down, pos)
			}
		}
		if c := crossings(lg, order); c < bestC {
			best, bestC = cloneOrder(order), c
		}
	}
	return best
}

func cloneOrder(o [][]int) [][]int {
	out := make([][]int, len(o))
	for i := range o {
		out[i] = slices.Clone(o[i])
	}
	return out
}

// sortByBarycenter orders layer by the mean position of each node's
// neighbours in fixed; a node without any keeps its place.
func sortByBarycenter(layer, fixed []int, nbrs [][]int, pos []float64) {
	for i, v := range fixed {
		pos[v] = float64(i)
	}
	bc := make(map[int]float64, len(layer))
	for i, v := range layer {
		if len(nbrs[v]) == 0 {
			bc[v] = float64(i)
			continue
		}
		sum := 0.0
		for _, w := range nbrs[v] {
			sum += pos[w]
		}
		bc[v] = sum / float64(len(nbrs[v]))
	}
	sort.SliceStable(layer, func(i, j int) bool { return bc[layer[i]] < bc[layer[j]] })
}

// crossings counts edge crossings between adjacent layers: for each layer
// pair, the inversions among edges sorted by their upper end (a Fenwick
// tree, so a wide layer costs E log E, not E²).
func crossings(lg *layered, order [][]int) int {
	pos := make([]int, lg.n)
	for _, layer := range order {
		for i, v := range layer {
			pos[v] = i
		}
	}
	total := 0
	for l := 0; l+1 < len(order); l++ {
		var lower []int // lower ends, in the order of the upper ends
		for _, v := range order[l] {
			ends := make([]int, 0, len(lg.down[v]))
			for _, w := range lg.down[v] {
				ends = append(ends, pos[w])
			}
			slices.Sort(ends)
			lower = append(lower, ends...)
		}
		tree := make([]int, len(order[l+1])+1)
		for i, p := range lower {
			// count earlier edges whose lower end is right of p
			le := 0
			for k := p + 1; k > 0; k -= k & -k {
				le += tree[k]
			}
			total += i - le
			for k := p + 1; k < len(tree); k += k & -k {
				tree[k]++
			}
		}
	}
	return total
}

// assignX spaces each layer's nodes, then pulls them toward their
// neighbours' mean x a few times, keeping order and the minimum gap.
func assignX(lg *layered, order [][]int, cfg LayoutConfig) []float64 {
	x := make([]float64, lg.n)
	width := func(v int) float64 {
		if v >= lg.real {
			return 0
		}
		return float64(cfg.NodeWidth)
	}
	gap := float64(cfg.NodeGap)
	for _, layer := range order {
		cur := 0.0
		for _, v := range layer {
			x[v] = cur + width(v)/2
			cur += width(v) + gap
		}
	}
	for pass := range 8 {
		nbrs := lg.up
		ls := make([]int, 0, len(order))
		for l := range order {
			ls = append(ls, l)
		}
		if pass%2 == 1 {
			nbrs = lg.down
			slices.Reverse(ls)
		}
		for _, l := range ls {
			place(order[l], nbrs, x, width, gap)
		}
	}
	minX := 0.0
	for v := range lg.n {
		minX = min(minX, x[v]-width(v)/2)
	}
	for v := range x {
		x[v] -= minX
	}
	return x
}

// place moves a layer's nodes toward their neighbours' mean x, then
// pushes overlapping nodes apart, rightwards then leftwards, and centres
// the result on the wanted positions.
func place(layer []int, nbrs [][]int, x []float64, width func(int) float64, gap float64) {
	if len(layer) == 0 {
		return
	}
	want := make([]float64, len(layer))
	for i, v := range layer {
		want[i] = x[v]
		if len(nbrs[v]) > 0 {
			sum := 0.0
			for _, w := range nbrs[v] {
				sum += x[w]
			}
			want[i] = sum / float64(len(nbrs[v]))
		}
	}
	got := slices.Clone(want)
	for i := 1; i < len(layer); i++ {
		minGap := (width(layer[i-1])+width(layer[i]))/2 + gap
		got[i] = max(got[i], got[i-1]+minGap)
	}
	// shift the block so that it sits, on average, where it wants to
	shift := 0.0
	for i := range got {
		shift += want[i] - got[i]
	}
	shift /= float64(len(got))
	for i, v := range layer {
		x[v] = got[i] + shift
	}
}

func finish(g Graph, lg *layered, order [][]int, x []float64, cfg LayoutConfig) *Layout {
	h, w := float64(cfg.NodeHeight), float64(cfg.NodeWidth)
	y := func(v int) float64 { return float64(lg.layer[v]) * (h + float64(cfg.LayerGap)) }
	out := &Layout{Layer: lg.layer[:g.Nodes], Pos: make([]Point, g.Nodes), Order: order}
	for v := range g.Nodes {
		out.Pos[v] = Point{X: x[v] - w/2, Y: y(v)}
		out.Width = max(out.Width, x[v]+w/2)
		out.Height = max(out.Height, y(v)+h)
	}
	for _, chain := range lg.chains {
		pts := []Point{{X: x[chain[0]], Y: y(chain[0]) + h}}
		for _, d := range chain[1 : len(chain)-1] {
			pts = append(pts, Point{X: x[d], Y: y(d) + h/2})
		}
		last := chain[len(chain)-1]
		pts = append(pts, Point{X: x[last], Y: y(last)})
		out.Routes = append(out.Routes, pts)
	}
	return out
}
