package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// ErrNotRetryable is returned when retrying a run that is not FAILED or
// CANCELED.
var ErrNotRetryable = errors.New("only a FAILED or CANCELED run can be retried")

// Retry restarts a FAILED or CANCELED run in place (KFP's runs:retry): its
// failed, skipped and canceled tasks go back to PENDING with their earlier
// attempts kept (the next attempt is numbered on), the tasks that succeeded
// keep their outputs and do not run again, and the run goes back to RUNNING
// and is handed to the loop.
func (e *Engine) Retry(ctx context.Context, runID string) error {
	r, err := e.cfg.Store.GetRun(runID)
	if err != nil {
		return err
	}
	if r.State != spec.RunFailed && r.State != spec.RunCanceled {
		return fmt.Errorf("retry run %s: it is %s: %w", r.ID, r.State, ErrNotRetryable)
	}
	res, err := e.cfg.Store.Apply(ctx, store.RetryRun{RunID: r.ID, Time: e.now().UTC()})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return fmt.Errorf("%s: %w", res.Rejected[0].Reason, ErrNotRetryable)
	}
	return nil // the feed hands the run to the loop
}
