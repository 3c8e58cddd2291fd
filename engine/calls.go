package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// Executor calls happen off the loop, each within its Config deadline:
// the loop only decides and commits, so a hung executor (a Docker daemon
// that does not answer) delays its own tasks, never the other runs. What a
// call learns comes back to the loop as a message.

// Messages the off-loop calls post.
type (
	// startFailed: an executor rejected a spec (or did not answer) after
	// the attempt was committed as RUNNING.
	startFailed struct {
		id     string
		reason string
	}
	// stopFailed: an executor did not confirm a stop.
	stopFailed struct {
		id     string
		reason string
	}
	// recovered: what became of a RUNNING attempt found when its run was
	// (re)activated: adopted, or gone (its leftovers killed).
	recovered struct {
		id      string
		adopted bool
		reason  string // why it was not adopted, when that is not plain
	}
)

// within runs f with a deadline of d. A call still running at the deadline
// is abandoned (its goroutine ends whenever f returns) and within returns
// an error wrapping ErrExecutorTimeout that names the call.
//
// An ended parent ctx (the engine stopping) abandons the call too, and
// within returns ctx's error.
func within[T any](parent context.Context, d time.Duration, what string, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		if r.err != nil && errors.Is(r.err, context.DeadlineExceeded) {
			r.err = fmt.Errorf("%s: %w (no answer within %s): %w", what, ErrExecutorTimeout, d, r.err)
		}
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		if err := parent.Err(); err != nil {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		return zero, fmt.Errorf("%s: %w (no answer within %s)", what, ErrExecutorTimeout, d)
	}
}

// callQueue runs one executor's starts and stops one at a time, in the
// order the loop committed them (an executor may hand out resources in
// Start order; a stop must not overtake its start).
type callQueue struct {
	mu      sync.Mutex
	jobs    []func()
	running bool
	closed  bool
	idle    *sync.Cond
}

func newCallQueue() *callQueue {
	q := &callQueue{}
	q.idle = sync.NewCond(&q.mu)
	return q
}

func (q *callQueue) push(job func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.jobs = append(q.jobs, job)
	if !q.running {
		q.running = true
		go q.drain()
	}
}

func (q *callQueue) drain() {
	for {
		q.mu.Lock()
		if len(q.jobs) == 0 || q.closed {
			q.running = false
			q.jobs = nil
			q.idle.Broadcast()
			q.mu.Unlock()
			return
		}
		job := q.jobs[0]
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		q.mu.Unlock()
		job()
	}
}

// close drops the calls not begun (the store holds their attempts as
// RUNNING: the next engine recovers them) and waits for the one under way,
// which the engine abandons as it stops.
func (q *callQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for q.running {
		q.idle.Wait()
	}
}

// startExecution queues the start of a committed attempt.
func (e *Engine) startExecution(ef effect) {
	ref, id, s, ws := ef.start, ef.id, ef.spec, ef.workspace
	var ctx context.Context
	x := ref.exec
	d := e.cfg.StartTimeout
	// The execution must not end with the loop's context: the call ends
	// with the engine.
	ctx = e.callCtx
	e.queues[x.Name()].push(func() {
		// Invariant 8: nothing starts once the run's cancellation is
		// committed, though the attempt was committed before it.
		if canceled, err := e.cfg.Store.CancelRequested(s.RunID); err == nil && canceled {
			e.report(executors.Event{ID: id, Kind: executors.EventExited, Time: e.now(), State: spec.TaskCanceled,
				ExitCode: -1, Reason: "canceled before it started"})
			return
		}
		_, err := within(ctx, d, x.Name()+" executor: start", func(ctx context.Context) (struct{}, error) {
			if ws != "" {
				if err := os.MkdirAll(ws, 0o755); err != nil {
					return struct{}{}, fmt.Errorf("creating the run's workspace: %w", err)
				}
			}
			return struct{}{}, x.Start(ctx, s, e.report)
		})
		if err == nil {
			return
		}
		e.m.executorErrors.Inc()
		e.post(startFailed{id: id, reason: err.Error()})
		if errors.Is(err, ErrExecutorTimeout) {
			// It may still start: make sure it does not run unfollowed.
			_, _ = within(ctx, e.cfg.StopTimeout, x.Name()+" executor: cancel", func(ctx context.Context) (struct{}, error) {
				return struct{}{}, x.Cancel(ctx, id)
			})
		}
	})
}

// stopExecution queues the stop of a live execution; a stop the executor
// does not confirm ends the attempt CANCELED all the same.
func (e *Engine) stopExecution(ref *execRef, id string) {
	x, ctx := ref.exec, e.callCtx
	e.queues[x.Name()].push(func() {
		_, err := within(ctx, e.cfg.StopTimeout, x.Name()+" executor: cancel", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, x.Cancel(ctx, id)
		})
		if err != nil {
			e.m.executorErrors.Inc()
			e.log.Warn("cancel execution", "execution", id, "err", err)
			e.post(stopFailed{id: id, reason: err.Error()})
		}
	})
}

// recoverExecution settles, off the loop, a RUNNING attempt that no live
// execution of this engine follows: an executor that can adopt it
// re-attaches to it (s is its spec; nil = not adoptable), otherwise its
// leftovers are killed. The outcome comes back as a recovered message.
func (e *Engine) recoverExecution(ref *execRef, id string, s *executors.Spec) {
	x, ctx := ref.exec, e.callCtx
	e.calls.Add(1)
	go func() {
		defer e.calls.Done()
		why := ""
		if ad, ok := x.(executors.Adopter); ok && s != nil {
			adopted, err := within(ctx, e.cfg.AdoptTimeout, x.Name()+" executor: adopt", func(ctx context.Context) (bool, error) {
				return ad.Adopt(ctx, s, e.report)
			})
			if err != nil {
				e.m.executorErrors.Inc()
				e.log.Warn("adopt execution", "execution", id, "err", err)
				why = err.Error()
			}
			if adopted {
				e.log.Info("adopted execution", "execution", id)
				e.post(recovered{id: id, adopted: true})
				return
			}
		}
		if k, ok := x.(leftoverKiller); ok {
			_, err := within(ctx, e.cfg.CleanupTimeout, x.Name()+" executor: kill leftovers", func(context.Context) (struct{}, error) {
				return struct{}{}, k.KillLeftover(id)
			})
			if err != nil {
				e.log.Debug("kill leftover execution", "execution", id, "err", err)
				if errors.Is(err, ErrExecutorTimeout) {
					e.m.executorErrors.Inc()
					why = join(why, err.Error())
				}
			}
		}
		e.post(recovered{id: id, reason: why})
	}()
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
