package store

import bolt "go.etcd.io/bbolt"

// Reads are served from the local state.db; every record returned is a
// freshly decoded copy.

// GetRun returns the run with this exact ID (ErrNotFound).
func (s *Store) GetRun(id string) (Run, error) {
	var r Run
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { r, err = getRunTx(tx, id, true); return })
	return r, err
}

// FindRun returns the run with this exact ID, else the only run whose ID
// starts with idOrPrefix (ErrNotFound, ErrAmbiguous).
func (s *Store) FindRun(idOrPrefix string) (Run, error) {
	var r Run
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { r, err = findRunTx(tx, idOrPrefix); return })
	return r, err
}

// RunByRequestID returns the run created with this request ID (ErrNotFound).
func (s *Store) RunByRequestID(reqID string) (Run, error) {
	var r Run
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { r, err = runByRequestIDTx(tx, reqID); return })
	return r, err
}

// ListRuns returns every run, newest first (CreatedAt desc, then ID).
func (s *Store) ListRuns() ([]Run, error) {
	var runs []Run
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { runs, err = listRunsTx(tx, false); return })
	sortRunsNewestFirst(runs)
	return runs, err
}

// UnfinishedRuns returns the runs whose state is not final, newest first.
func (s *Store) UnfinishedRuns() ([]Run, error) {
	var runs []Run
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { runs, err = listRunsTx(tx, true); return })
	sortRunsNewestFirst(runs)
	return runs, err
}

// Tasks returns the run's tasks ordered by Index (ErrNotFound for no run).
func (s *Store) Tasks(runID string) ([]Task, error) {
	var ts []Task
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { ts, err = tasksTx(tx, runID); return })
	return ts, err
}

// Task returns one task (ErrNotFound).
func (s *Store) Task(runID string, index int) (Task, error) {
	var t Task
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { t, err = getTaskTx(tx, runID, index); return })
	return t, err
}

// CancelRequested reports whether the run's cancellation was requested
// (and not undone by a retry). It reads one key: cheap enough to ask
// before every start.
func (s *Store) CancelRequested(runID string) (bool, error) {
	var canceled bool
	err := s.fsm.view(func(tx *bolt.Tx) error {
		canceled = tx.Bucket(bucketRunsCanceled).Get([]byte(runID)) != nil
		return nil
	})
	return canceled, err
}
