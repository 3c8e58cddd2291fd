package engine

import (
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// Placer is implemented by an executor that starts an execution by
// committing where it runs (the cluster's dispatcher, which assigns it to
// a worker). The engine asks it to place the attempts of a batch before
// committing them, and commits the placements in the same store entry as
// the attempts: a step of a chain then costs one entry less, and its
// worker learns of it one commit sooner.
type Placer interface {
	// Place returns, for each spec, the command that places it, or nil
	// for one it leaves to Start (no node has room now, others wait
	// before it). Events of a placed execution go to report.
	Place(specs []*executors.Spec, report func(executors.Event)) []store.Command
	// Placed tells the outcome of Place's command for execution id once
	// the entry is committed: committed, or refused by the store with
	// reason (the executor then places it again, or reports its end), or
	// never committed (reason "": the attempt does not exist; forget it).
	// Start is not called for a placed execution.
	Placed(id string, committed bool, reason string)
}

// maxPlaced bounds the placements committed in one entry with the
// attempts (the rest go through Start): each carries its spec.
const maxPlaced = 1024

// placements are the placements of one batch's starts (none: empty).
type placements struct {
	cmds []store.Command
	// at maps an effect (index in batch.effects) to its placement.
	at map[int]placement
	// refused holds the store's reason for each refused command.
	refused map[int]string
}

type placement struct {
	placer Placer
	cmd    int // index in cmds
}

// place asks the placers among the executors of b's starts to place them.
func (e *Engine) place(b *batch) placements {
	type group struct {
		specs   []*executors.Spec
		effects []int
	}
	var groups map[Placer]*group
	var order []Placer
	n := 0
	for i, ef := range b.effects {
		if ef.start == nil || ef.workspace != "" || n == maxPlaced {
			continue
		}
		p, ok := ef.start.exec.(Placer)
		if !ok {
			continue
		}
		if groups == nil {
			groups = map[Placer]*group{}
		}
		g := groups[p]
		if g == nil {
			g = &group{}
			groups[p] = g
			order = append(order, p)
		}
		g.specs = append(g.specs, ef.spec)
		g.effects = append(g.effects, i)
		n++
	}
	if len(order) == 0 {
		return placements{}
	}
	pl := placements{at: map[int]placement{}, refused: map[int]string{}}
	for _, p := range order {
		g := groups[p]
		cmds := p.Place(g.specs, e.report)
		for k, c := range cmds {
			if c == nil || k >= len(g.effects) {
				continue
			}
			pl.at[g.effects[k]] = placement{placer: p, cmd: len(pl.cmds)}
			pl.cmds = append(pl.cmds, c)
		}
	}
	return pl
}
