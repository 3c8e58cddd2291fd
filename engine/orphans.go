package engine

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// OrphanDeleter is an executor whose executions outlive the engine and
// that can remove those nobody follows any more (the kube executor's pods
// of attempts the store does not record as running). After every Resume
// the engine calls DeleteOrphans, off the caller, with known telling the
// executions the store records as running.
type OrphanDeleter interface {
	DeleteOrphans(ctx context.Context, known func(id string) bool) ([]string, error)
}

// deleteOrphans runs every OrphanDeleter's DeleteOrphans in the
// background, bounded by CleanupTimeout.
func (e *Engine) deleteOrphans() {
	for _, x := range e.cfg.Executors {
		od, ok := x.(OrphanDeleter)
		if !ok {
			continue
		}
		e.calls.Add(1)
		go func() {
			defer e.calls.Done()
			ctx, cancel := context.WithTimeout(e.callCtx, e.cfg.CleanupTimeout)
			defer cancel()
			gone, err := od.DeleteOrphans(ctx, e.runningInStore)
			if err != nil {
				e.m.executorErrors.Inc()
				e.log.Warn("delete orphaned executions", "executor", x.Name(), "err", err)
			}
			if len(gone) > 0 {
				e.log.Info("deleted orphaned executions", "executor", x.Name(), "executions", gone)
			}
		}()
	}
}

// runningInStore reports whether the store records execution id
// (ExecutionID(run, task, attempt)) as the running attempt of its task.
// When the store cannot tell, it says yes: nothing is deleted on doubt.
func (e *Engine) runningInStore(id string) bool {
	i := strings.LastIndexByte(id, '-')
	if i <= 0 {
		return false
	}
	j := strings.LastIndexByte(id[:i], '-')
	if j <= 0 {
		return false
	}
	task, err1 := strconv.Atoi(id[j+1 : i])
	attempt, err2 := strconv.Atoi(id[i+1:])
	if err1 != nil || err2 != nil || attempt < 1 {
		return false
	}
	t, err := e.cfg.Store.Task(id[:j], task)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false
	case err != nil:
		return true
	}
	return len(t.Attempts) == attempt && t.Attempts[attempt-1].State == spec.TaskRunning
}
