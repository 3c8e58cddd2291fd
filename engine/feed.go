package engine

import (
	"context"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// The engine learns of new runs, cancellations and retries from the
// store's feed of applied changes, never from the calls that proposed
// them: a run submitted or cancelled through any node (or any process
// sharing the log) reaches the engine of the leader by the log.

// rescan is posted when the feed dropped changes (the engine fell behind,
// or a snapshot replaced the state): the loop reads what it acts on from
// the store again.
type rescan struct{}

// follow turns the subscription's changes into loop messages until ctx
// ends.
func (e *Engine) follow(ctx context.Context, sub *store.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Ready():
		}
		changes, lagged := sub.Next()
		if lagged {
			e.post(rescan{})
		}
		for _, ch := range changes {
			for _, id := range ch.RunsCreated {
				e.post(activate{runID: id, fresh: true})
			}
			for _, id := range ch.RunsRetried {
				e.post(activate{runID: id})
			}
			for _, id := range ch.RunsCanceled {
				e.post(cancelRun{runID: id})
			}
		}
	}
}

// onRescan activates every unfinished run the loop does not follow, and
// cancels those whose cancellation the loop has not seen.
func (e *Engine) onRescan(ctx context.Context, b *batch) {
	runs, err := e.cfg.Store.UnfinishedRuns()
	if err != nil {
		e.log.Error("engine: rescan after the change feed fell behind", "err", err)
		return
	}
	e.log.Warn("engine: the change feed fell behind; rescanning unfinished runs", "runs", len(runs))
	for _, rec := range runs {
		r := e.active[rec.ID]
		switch {
		case r == nil:
			e.activate(ctx, rec.ID, nil, false, b)
		case rec.CancelRequested && !r.canceled:
			e.onCancel(rec.ID, b)
		}
	}
}

// takePlan returns (and forgets) the plan Submit kept for a run it just
// created, so that activating it does not decode the stored copy.
func (e *Engine) takePlan(runID string) *spec.Plan {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.plans[runID]
	delete(e.plans, runID)
	return p
}
