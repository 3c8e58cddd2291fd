package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// batch collects what one loop turn changes: the commands proposed as one
// store entry, and the side effects allowed once that entry is committed.
type batch struct {
	cmds        []store.Command
	byRun       map[string]int // run id -> index of its TransitionTasks in cmds
	transitions int
	effects     []effect
	updates     []Update
	finals      []string
	// ctx and err: a batch that grows past MaxBatch inside one message (a
	// loop's thousands of starts) is committed part by part; err is the
	// store failure of such a part.
	ctx     context.Context
	err     error
	flushed bool // a part was committed already
}

// effect is a side effect held back until its commit: start or stop one
// execution.
type effect struct {
	id    string
	start *execRef
	stop  *execRef
	spec  *executors.Spec
	// cmd and item locate the transition that must not have been rejected
	// for the effect to happen.
	cmd, item int
}

func newBatch(ctx context.Context) *batch { return &batch{byRun: map[string]int{}, ctx: ctx} }

// reset empties b after its commit.
func (b *batch) reset() {
	b.cmds, b.transitions, b.effects, b.updates, b.finals = nil, 0, nil, nil, nil
	clear(b.byRun)
}

// flushFull commits b now when it holds MaxBatch transitions: the store
// entry stays bounded, and the first of a big loop's executions start
// while the engine is still deciding the rest. Each part is a consistent
// state: the scheduler resumes from any of them. The first part is small
// (firstPart transitions), so that the first executions start early.
func (e *Engine) flushFull(b *batch) {
	limit := e.cfg.MaxBatch
	if !b.flushed {
		limit = min(limit, firstPart)
	}
	if b.transitions < limit || b.err != nil {
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

func (b *batch) transition(r *activeRun, t store.Transition) {
	i, ok := b.byRun[r.id]
	if !ok {
		i = len(b.cmds)
		b.byRun[r.id] = i
		b.cmds = append(b.cmds, &store.TransitionTasks{RunID: r.id})
	}
	tt := b.cmds[i].(*store.TransitionTasks)
	tt.Items = append(tt.Items, t)
	b.transitions++
}

func (b *batch) cmdOf(r *activeRun) int { return b.byRun[r.id] }

func (b *batch) lastItem(r *activeRun) int {
	return len(b.cmds[b.byRun[r.id]].(*store.TransitionTasks).Items) - 1
}

func (b *batch) runState(r *activeRun, to spec.RunState, reason string, outs map[string]spec.Value, now time.Time) {
	b.cmds = append(b.cmds, store.SetRunState{RunID: r.id, From: r.state, To: to, Time: now, Error: reason, Outputs: outs})
}

func (b *batch) update(u Update) { b.updates = append(b.updates, u) }

// flush commits the batch as one store entry, then performs its effects.
func (e *Engine) flush(ctx context.Context, b *batch) error {
	if len(b.cmds) > 0 {
		cmds := make([]store.Command, len(b.cmds))
		for i, c := range b.cmds {
			if tt, ok := c.(*store.TransitionTasks); ok {
				cmds[i] = *tt
			} else {
				cmds[i] = c
			}
		}
		start := time.Now()
		res, err := e.cfg.Store.Apply(context.WithoutCancel(ctx), cmds...)
		if err != nil {
			return fmt.Errorf("commit %d commands: %w", len(cmds), err)
		}
		e.m.commitSeconds.Observe(time.Since(start).Seconds())
		e.m.transitions.Add(float64(b.transitions))
		rejected := map[[2]int]bool{}
		for _, rj := range res.Rejected {
			rejected[[2]int{rj.Cmd, rj.Item}] = true
			e.log.Error("store rejected a change", "command", rj.Cmd, "item", rj.Item, "reason", rj.Reason)
		}
		if len(rejected) > 0 {
			kept := b.effects[:0]
			for _, ef := range b.effects {
				if ef.start != nil && rejected[[2]int{ef.cmd, ef.item}] {
					// The attempt was not recorded: it does not exist.
					delete(e.inflight, ef.id)
					if ref := ef.start; ref.run.attempts[ref.task] == ref.attempt {
						ref.run.attempts[ref.task] = ref.attempt - 1
					}
					continue
				}
				kept = append(kept, ef)
			}
			b.effects = kept
		}
	}
	for _, ef := range b.effects {
		switch {
		case ef.start != nil:
			// The execution must not end with the loop's context.
			if err := ef.start.exec.Start(context.WithoutCancel(ctx), ef.spec, e.report); err != nil {
				e.m.executorErrors.Inc()
				e.post(startFailed{id: ef.id, reason: err.Error()})
			}
		case ef.stop != nil:
			x, id := ef.stop.exec, ef.id
			go func() {
				if err := x.Cancel(context.WithoutCancel(ctx), id); err != nil {
					e.log.Warn("cancel execution", "execution", id, "err", err)
				}
			}()
		}
	}
	if e.cfg.OnUpdate != nil && len(b.updates) > 0 {
		e.cfg.OnUpdate(b.updates)
	}
	for _, id := range b.finals {
		delete(e.active, id)
		e.notifyFinal(id)
	}
	return nil
}
