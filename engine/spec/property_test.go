package spec

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// genDAG draws a random acyclic graph: edges go from a lower to a higher
// rank, and ranks are shuffled over list positions so that the task list
// is not in topological order. edges[i] lists the positions task i waits
// for; viaFrom[i][j] says whether edge j is a From reference (else After).
func genDAG(t *rapid.T) (n int, edges [][]int, viaFrom [][]bool) {
	n = rapid.IntRange(1, 12).Draw(t, "n")
	rank := rapid.Permutation(seq(n)).Draw(t, "rank") // rank[pos]
	pos := make([]int, n)
	for p, r := range rank {
		pos[r] = p
	}
	edges = make([][]int, n)
	viaFrom = make([][]bool, n)
	for r := 1; r < n; r++ {
		for s := 0; s < r; s++ {
			if rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("e%d_%d", r, s)) == 0 {
				edges[pos[r]] = append(edges[pos[r]], pos[s])
				viaFrom[pos[r]] = append(viaFrom[pos[r]], rapid.Bool().Draw(t, fmt.Sprintf("f%d_%d", r, s)))
			}
		}
	}
	return n, edges, viaFrom
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func buildPlan(n int, edges [][]int, viaFrom [][]bool) *Plan {
	p := &Plan{Name: "g"}
	for i := 0; i < n; i++ {
		t := Task{Name: fmt.Sprintf("t%d", i), Image: "x", Outputs: []Output{{Name: "o", Type: TypeInt}}}
		for j, d := range edges[i] {
			if viaFrom[i][j] {
				t.Inputs = append(t.Inputs, Input{Name: fmt.Sprintf("i%d", d), Type: TypeFloat, From: &Ref{Task: fmt.Sprintf("t%d", d), Output: "o"}})
			} else {
				t.After = append(t.After, fmt.Sprintf("t%d", d))
			}
		}
		p.Tasks = append(p.Tasks, t)
	}
	return p
}

func TestFinalize_RandomDAGs(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n, edges, viaFrom := genDAG(t)
		p := buildPlan(n, edges, viaFrom)
		if err := p.Finalize(); err != nil {
			t.Fatalf("acyclic graph rejected: %v", err)
		}
		for i, task := range p.Tasks {
			want := slices.Sorted(slices.Values(edges[i]))
			if len(want) == 0 {
				want = nil
			}
			if !slices.Equal(task.Deps, want) {
				t.Fatalf("%s deps %v, want %v", task.Name, task.Deps, want)
			}
			for _, in := range task.Inputs {
				if p.Tasks[in.From.TaskIndex].Name != in.From.Task {
					t.Fatalf("%s.%s TaskIndex %d is wrong", task.Name, in.Name, in.From.TaskIndex)
				}
			}
		}
		// Kahn's algorithm over Deps must order every task.
		done := make([]bool, n)
		for left := n; left > 0; {
			progress := false
			for i, task := range p.Tasks {
				if !done[i] && !slices.ContainsFunc(task.Deps, func(d int) bool { return !done[d] }) {
					done[i], progress = true, true
					left--
				}
			}
			if !progress {
				t.Fatalf("Deps are not topologically consistent")
			}
		}
		roundTrip(t, p)
	})
}

func TestFinalize_RandomCyclesRejected(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		n, edges, viaFrom := genDAG(t)
		// Close a cycle: a path of random length over distinct tasks, its
		// last task waiting for... its first.
		k := rapid.IntRange(1, min(n, 5)).Draw(t, "k")
		if k == 1 && n > 1 {
			k = 2
		}
		cyc := rapid.Permutation(seq(n)).Draw(t, "cyc")[:k]
		if k == 1 {
			t.Skip("one task cannot form a cycle without a self edge")
		}
		for j := range cyc {
			from, to := cyc[j], cyc[(j+1)%k] // to waits for from
			edges[to] = append(edges[to], from)
			viaFrom[to] = append(viaFrom[to], false)
		}
		p := buildPlan(n, edges, viaFrom)
		err := p.Finalize()
		if err == nil {
			t.Fatalf("cycle %v accepted", cyc)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "tasks: cycle ") {
			t.Fatalf("got %v", err)
		}
		names := strings.Split(strings.TrimPrefix(msg, "tasks: cycle "), " -> ")
		if len(names) < 3 || names[0] != names[len(names)-1] {
			t.Fatalf("malformed cycle %q", msg)
		}
		for j := 0; j+1 < len(names); j++ { // names[j+1] waits for names[j]
			from, to := p.TaskIndex(names[j]), p.TaskIndex(names[j+1])
			if !slices.Contains(edges[to], from) {
				t.Fatalf("%q: %s does not wait for %s", msg, names[j+1], names[j])
			}
		}
		if p.Tasks[0].Deps != nil || p.Version != 0 {
			t.Fatalf("rejected plan was changed")
		}
	})
}
