package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// batch collects what one loop turn changes: the commands proposed as one
// store entry, and what may follow only once that entry is committed (side
// effects, updates, ends of runs), each tied to the command item it needs.
type batch struct {
	cmds        []store.Command
	runs        []string       // the run of each command
	byRun       map[string]int // run id -> index of its TransitionTasks in cmds
	transitions int
	// placeable counts the starts a Placer may place with their attempts
	// (see flushFull).
	placeable int
	effects   []effect
	updates   []pendingUpdate
	finals    []pendingFinal
	// stale holds the runs the store contradicted (it rejected one of
	// their changes): the loop refreshes them before anything else. Kept
	// across the parts of a batch committed in parts.
	stale map[string]bool
	// ctx and err: a batch that grows past MaxBatch inside one message (a
	// loop's thousands of starts) is committed part by part; err is the
	// store failure of such a part.
	ctx     context.Context
	err     error
	flushed bool // a part was committed already
}

// pos locates an item of a command in a batch: what must not have been
// rejected for something to happen.
type pos struct{ cmd, item int }

// durable is the pos of a change already committed (e.g. by Cancel).
var durable = pos{-1, -1}

type pendingUpdate struct {
	u  Update
	at pos
}

type pendingFinal struct {
	id string
	at pos
}

// effect is a side effect held back until its commit: start, stop or
// recover one execution.
type effect struct {
	id      string
	start   *execRef
	stop    *execRef
	recover *execRef
	spec    *executors.Spec
	// workspace is a directory to create before the start ("" = none).
	workspace string
	at        pos // the transition a start needs
}

func newBatch(ctx context.Context) *batch {
	return &batch{byRun: map[string]int{}, stale: map[string]bool{}, ctx: ctx}
}

// reset empties b after its commit.
func (b *batch) reset() {
	b.cmds, b.runs, b.transitions, b.placeable, b.effects, b.updates, b.finals = nil, nil, 0, 0, nil, nil, nil
	clear(b.byRun)
}

// flushFull commits b now when it holds MaxBatch transitions, or as many
// starts as one entry places with their attempts (maxPlaced): the store
// entry stays bounded, the first of a big loop's executions start while
// the engine is still deciding the rest, and on a cluster every start of
// a fan-out is placed in its attempt's entry (past maxPlaced, the rest
// would wait for the dispatcher's own entries). Each part is a consistent
// state: the scheduler resumes from any of them. The first part is small
// (firstPart transitions), so that the first executions start early.
func (e *Engine) flushFull(b *batch) {
	limit := e.cfg.MaxBatch
	if !b.flushed {
		limit = min(limit, firstPart)
	}
	if b.transitions < limit && b.placeable < maxPlaced {
		return
	}
	e.flushPart(b)
}

// flushPart commits what b holds now and empties it.
func (e *Engine) flushPart(b *batch) {
	if b.err != nil || len(b.cmds)+len(b.effects)+len(b.updates)+len(b.finals) == 0 {
		return
	}
	if err := e.flush(b.ctx, b); err != nil {
		b.err = err
		return
	}
	b.reset()
	b.flushed = true
}

// firstPart is the size of the first part of a batch committed in parts.
const firstPart = 512

func (b *batch) add(runID string, c store.Command) {
	b.cmds = append(b.cmds, c)
	b.runs = append(b.runs, runID)
}

// transition adds t to r's TransitionTasks and returns where it is.
func (b *batch) transition(r *activeRun, t store.Transition) pos {
	i, ok := b.byRun[r.id]
	if !ok {
		i = len(b.cmds)
		b.byRun[r.id] = i
		b.add(r.id, &store.TransitionTasks{RunID: r.id})
	}
	tt := b.cmds[i].(*store.TransitionTasks)
	tt.Items = append(tt.Items, t)
	b.transitions++
	return pos{i, len(tt.Items) - 1}
}

func (b *batch) runState(r *activeRun, to spec.RunState, reason string, outs map[string]spec.Value, now time.Time) pos {
	b.add(r.id, store.SetRunState{RunID: r.id, From: r.state, To: to, Time: now, Error: reason, Outputs: outs})
	return pos{len(b.cmds) - 1, 0}
}

// update reports u once the change at at is committed.
func (b *batch) update(at pos, u Update) { b.updates = append(b.updates, pendingUpdate{u: u, at: at}) }

// flush commits the batch as one store entry, then does what the accepted
// changes allow. A rejected change does nothing (no effect, no update) and
// marks its run stale.
func (e *Engine) flush(ctx context.Context, b *batch) error {
	pl := e.place(b)
	rejected, err := e.commit(ctx, b, pl)
	if err != nil {
		for i, p := range pl.at {
			p.placer.Placed(b.effects[i].id, false, "")
		}
		return err
	}
	for i, ef := range b.effects {
		switch {
		case ef.start != nil:
			p, placed := pl.at[i]
			if rejected[ef.at] {
				// The attempt was not recorded: it does not exist (nor
				// does its placement, refused with it).
				if placed {
					p.placer.Placed(ef.id, false, "")
				}
				if e.inflight[ef.id] == ef.start {
					delete(e.inflight, ef.id)
				}
				continue
			}
			if placed {
				// Committed with its attempt: the executor follows it
				// (or, refused, places it again or ends it).
				reason, refused := pl.refused[p.cmd]
				p.placer.Placed(ef.id, !refused, reason)
				continue
			}
			e.startExecution(ef)
		case ef.stop != nil:
			if e.inflight[ef.id] != ef.stop {
				continue // its start was refused, or it ended meanwhile
			}
			e.stopExecution(ef.stop, ef.id)
		case ef.recover != nil:
			e.recoverExecution(ef.recover, ef.id, ef.spec)
		}
	}
	if e.cfg.OnUpdate != nil && len(b.updates) > 0 {
		ups := make([]Update, 0, len(b.updates))
		for _, u := range b.updates {
			if !rejected[u.at] {
				ups = append(ups, u.u)
			}
		}
		if len(ups) > 0 {
			e.cfg.OnUpdate(ups)
		}
	}
	for _, f := range b.finals {
		if rejected[f.at] {
			continue // the run is stale: its refresh says what it is
		}
		delete(e.active, f.id)
		e.notifyFinal(f.id)
	}
	return nil
}

// commit proposes b's commands and returns the positions the store
// rejected, marking their runs stale. The ends of runs go in a second
// entry, proposed only for runs none of whose other changes was
// rejected: a run never ends in the store with a task the store does not
// hold as final.
func (e *Engine) commit(ctx context.Context, b *batch, pl placements) (map[pos]bool, error) {
	var changes, ends []int
	for i, c := range b.cmds {
		if rs, ok := c.(store.SetRunState); ok && rs.To.Final() {
			ends = append(ends, i)
		} else {
			changes = append(changes, i)
		}
	}
	rejected := map[pos]bool{}
	if err := e.propose(ctx, b, changes, pl, rejected); err != nil {
		return nil, err
	}
	kept := ends[:0]
	for _, i := range ends {
		if b.stale[b.runs[i]] {
			rejected[pos{i, 0}] = true
			continue
		}
		kept = append(kept, i)
	}
	if err := e.propose(ctx, b, kept, placements{}, rejected); err != nil {
		return nil, err
	}
	for _, id := range b.runs {
		if !b.stale[id] {
			delete(e.refreshes, id)
		}
	}
	return rejected, nil
}

// propose commits the commands of b at indices idx, then pl's, as one
// store entry, and adds what the store rejected to rejected (pl's to
// pl.refused).
func (e *Engine) propose(ctx context.Context, b *batch, idx []int, pl placements, rejected map[pos]bool) error {
	if len(idx) == 0 {
		return nil
	}
	cmds := make([]store.Command, len(idx), len(idx)+len(pl.cmds))
	n := 0
	for k, i := range idx {
		c := b.cmds[i]
		if tt, ok := c.(*store.TransitionTasks); ok {
			c = *tt
			n += len(tt.Items)
		}
		cmds[k] = c
	}
	cmds = append(cmds, pl.cmds...)
	start := time.Now()
	res, err := e.cfg.Store.Apply(context.WithoutCancel(ctx), cmds...)
	if err != nil {
		return fmt.Errorf("commit %d commands: %w", len(cmds), err)
	}
	e.m.commitSeconds.Observe(time.Since(start).Seconds())
	e.m.transitions.Add(float64(n))
	for _, rj := range res.Rejected {
		if k := rj.Cmd - len(idx); k >= 0 && k < len(pl.cmds) {
			// A placement refused (its node went down, its run was
			// cancelled): the executor takes it from there.
			pl.refused[k] = rj.Reason
			continue
		}
		run := ""
		if rj.Cmd >= 0 && rj.Cmd < len(idx) {
			i := idx[rj.Cmd]
			rejected[pos{i, rj.Item}] = true
			run = b.runs[i]
			b.stale[run] = true
		}
		e.m.rejected.Inc()
		e.log.Warn("store rejected a change; refreshing the run", "run", run, "command", rj.Cmd, "item", rj.Item, "reason", rj.Reason)
	}
	return nil
}

// staleRuns returns the runs to refresh, sorted, and forgets them.
func (b *batch) staleRuns() []string {
	ids := make([]string, 0, len(b.stale))
	for id := range b.stale {
		ids = append(ids, id)
	}
	clear(b.stale)
	slices.Sort(ids)
	return ids
}
