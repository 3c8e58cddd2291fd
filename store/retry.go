package store

import (
	"time"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// TypeRetryRun restarts a failed or canceled run in place (server mode's
// runs:retry; a number of the 16–31 range).
const TypeRetryRun CommandType = 31

// RetryRun restarts a FAILED or CANCELED run in place, as KFP's retry does:
// its FAILED, SKIPPED and CANCELED tasks go back to PENDING (their attempts
// are kept, so the next attempt is numbered on), SUCCEEDED tasks keep their
// outputs, and the run goes back to RUNNING with its error, finish time and
// cancellation request cleared. Any other run rejects it. The engine must
// then activate the run (Engine.Retry does both).
type RetryRun struct {
	RunID string    `json:"run_id"`
	Time  time.Time `json:"time"`
}

func (RetryRun) Type() CommandType { return TypeRetryRun }

func init() {
	registerJSON(TypeRetryRun, "retry_run", 1, applyRetryRun)
}

func applyRetryRun(tx *bolt.Tx, c RetryRun) ([]Rejection, error) {
	r, err := getRunTx(tx, c.RunID, false)
	if err != nil {
		return reject("retry run %q: %v", c.RunID, err), nil
	}
	if r.State != spec.RunFailed && r.State != spec.RunCanceled {
		return reject("retry run %s: run is %s; only a FAILED or CANCELED run can be retried", r.ID, r.State), nil
	}
	tasks, err := tasksTx(tx, r.ID)
	if err != nil {
		return nil, err
	}
	expanded := make(map[int]bool, len(r.Expansions))
	for _, x := range r.Expansions {
		expanded[x.Task] = true
	}
	for i := range tasks {
		t := &tasks[i]
		switch t.State {
		case spec.TaskFailed, spec.TaskSkipped, spec.TaskCanceled:
		default:
			continue
		}
		t.State, t.Error, t.FinishedAt = spec.TaskPending, "", time.Time{}
		if expanded[t.Index] {
			// A group that started keeps its tasks: it runs on, and its
			// own failed, skipped and canceled tasks run again.
			t.State, t.Outputs = spec.TaskRunning, nil
		}
		if len(t.Attempts) == 0 {
			t.StartedAt = time.Time{}
		}
		if err := putTaskTx(tx, t); err != nil {
			return nil, err
		}
	}
	r.State, r.Error, r.FinishedAt, r.CancelRequested, r.Outputs = spec.RunRunning, "", time.Time{}, false, nil
	if err := tx.Bucket(bucketRunsCanceled).Delete([]byte(r.ID)); err != nil {
		return nil, err
	}
	if r.StartedAt.IsZero() {
		r.StartedAt = c.Time
	}
	return nil, putRunTx(tx, &r)
}
