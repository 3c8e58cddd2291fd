package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// RunMeta is what the API knows of a run beyond what the engine stores: it
// is reserved under the run's request ID before the engine creates the run,
// and CreateRun copies Namespace and ExperimentID into the run, so a run is
// never visible without its namespace.
type RunMeta struct {
	RequestID    string          `json:"request_id"`
	Namespace    string          `json:"namespace"`
	ExperimentID string          `json:"experiment_id,omitempty"`
	Description  string          `json:"description,omitempty"`
	PipelineSpec json.RawMessage `json:"pipeline_spec,omitempty"` // as submitted
	// PipelineID and PipelineVersionID are set for runs of a stored
	// pipeline version.
	PipelineID        string `json:"pipeline_id,omitempty"`
	PipelineVersionID string `json:"pipeline_version_id,omitempty"`
	RecurringRunID    string `json:"recurring_run_id,omitempty"`
	// Labels are the key=value pairs the run was created with.
	Labels map[string]string `json:"labels,omitempty"`
}

// ReserveRunMeta records RunMeta under its request ID. A second reservation
// of the same request ID is rejected (the first one stands).
type ReserveRunMeta struct {
	Meta RunMeta `json:"meta"`
}

// SetRunArchived archives or restores a run.
type SetRunArchived struct {
	RunID    string `json:"run_id"`
	Archived bool   `json:"archived"`
}

// DeleteRun removes a finished run, its plan, tasks and indexes.
type DeleteRun struct {
	RunID string `json:"run_id"`
}

func (ReserveRunMeta) Type() CommandType { return TypeReserveRunMeta }
func (SetRunArchived) Type() CommandType { return TypeSetRunArchived }
func (DeleteRun) Type() CommandType      { return TypeDeleteRun }

func init() {
	registerJSON(TypeReserveRunMeta, "reserve_run_meta", 1, applyReserveRunMeta)
	registerJSON(TypeSetRunArchived, "set_run_archived", 1, applySetRunArchived)
	registerJSON(TypeDeleteRun, "delete_run", 1, applyDeleteRun)
}

func applyReserveRunMeta(tx *bolt.Tx, c ReserveRunMeta) ([]Rejection, error) {
	m := c.Meta
	switch {
	case m.RequestID == "" || m.Namespace == "":
		return reject("reserve run meta: request id and namespace are required"), nil
	case tx.Bucket(bucketRunMeta).Get([]byte(m.RequestID)) != nil:
		return reject("reserve run meta: request id %q already reserved", m.RequestID), nil
	}
	return nil, putJSON(tx, bucketRunMeta, m.RequestID, &m)
}

// applyRunMetaTx fills r's namespace and experiment from the RunMeta
// reserved under its request ID, if any (called by applyCreateRun).
func applyRunMetaTx(tx *bolt.Tx, r *Run) {
	if r.RequestID == "" {
		return
	}
	var m RunMeta
	if getJSON(tx, bucketRunMeta, r.RequestID, &m) == nil {
		r.Namespace, r.ExperimentID = m.Namespace, m.ExperimentID
	}
}

func applySetRunArchived(tx *bolt.Tx, c SetRunArchived) ([]Rejection, error) {
	r, err := getRunTx(tx, c.RunID, false)
	if err != nil {
		return reject("archive run: %v", err), nil
	}
	r.Archived = c.Archived
	return nil, putRunTx(tx, &r)
}

func applyDeleteRun(tx *bolt.Tx, c DeleteRun) ([]Rejection, error) {
	r, err := getRunTx(tx, c.RunID, false)
	if err != nil {
		return reject("delete run: %v", err), nil
	}
	if !r.State.Final() {
		return reject("delete run %s: run is %s; terminate it first", r.ID, r.State), nil
	}
	id := []byte(r.ID)
	for _, b := range [][]byte{bucketRuns, bucketPlans, bucketRunsActive, bucketRunsCanceled} {
		if err := tx.Bucket(b).Delete(id); err != nil {
			return nil, err
		}
	}
	if r.RequestID != "" {
		for _, b := range [][]byte{bucketRunsByRequest, bucketRunMeta} {
			if err := tx.Bucket(b).Delete([]byte(r.RequestID)); err != nil {
				return nil, err
			}
		}
	}
	tasks := tx.Bucket(bucketTasks)
	prefix := taskPrefix(r.ID)
	var keys [][]byte
	c2 := tasks.Cursor()
	for k, _ := c2.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c2.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := tasks.Delete(k); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// RunNamespace is the namespace of r: its own, or DefaultNamespace.
func RunNamespace(r Run) string {
	if r.Namespace == "" {
		return DefaultNamespace
	}
	return r.Namespace
}

// RunFilter selects runs in ListRunsBy. Empty fields match everything.
type RunFilter struct {
	Namespace    string
	ExperimentID string
	// Archived: nil = both, else only runs with that archived flag.
	Archived *bool
}

func (f RunFilter) match(r *Run) bool {
	return (f.Namespace == "" || RunNamespace(*r) == f.Namespace) &&
		(f.ExperimentID == "" || r.ExperimentID == f.ExperimentID) &&
		(f.Archived == nil || r.Archived == *f.Archived)
}

// ListRunsBy returns the runs f selects, without their plans, newest first.
func (s *Store) ListRunsBy(f RunFilter) ([]Run, error) {
	var runs []Run
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(_, v []byte) error {
			r, err := decodeRun(tx, v, false)
			if err != nil {
				return err
			}
			if f.match(&r) {
				runs = append(runs, r)
			}
			return nil
		})
	})
	sortRunsNewestFirst(runs)
	return runs, err
}

// RunMetaFor returns the RunMeta reserved under reqID (ErrNotFound).
func (s *Store) RunMetaFor(reqID string) (RunMeta, error) {
	var m RunMeta
	err := s.fsm.view(func(tx *bolt.Tx) error {
		if err := getJSON(tx, bucketRunMeta, reqID, &m); err != nil {
			return fmt.Errorf("run meta %q: %w", reqID, err)
		}
		return nil
	})
	return m, err
}

// CountRunsByState returns the number of runs in each state (for metrics).
func (s *Store) CountRunsByState() (map[string]int, error) {
	out := map[string]int{}
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRuns).ForEach(func(_, v []byte) error {
			var r struct {
				State runStateCode `json:"state"`
			}
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out[spec.RunState(r.State).String()]++
			return nil
		})
	})
	return out, err
}
