package store

import (
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Command types of the server-mode entities (16–31 are theirs).
const (
	TypeCreateExperiment       CommandType = 16
	TypeSetExperimentArchived  CommandType = 17
	TypeDeleteExperiment       CommandType = 18
	TypeCreateToken            CommandType = 19
	TypeDeleteToken            CommandType = 20
	TypeSetNamespacePolicy     CommandType = 21
	TypeReserveRunMeta         CommandType = 22
	TypeSetRunArchived         CommandType = 23
	TypeDeleteRun              CommandType = 24
	TypeCreatePipeline         CommandType = 25
	TypeCreatePipelineVersion  CommandType = 26
	TypeDeletePipeline         CommandType = 27
	TypePutRecurringRun        CommandType = 28
	TypeDeleteRecurringRun     CommandType = 29
	TypeRecordRecurringTrigger CommandType = 30
)

// DefaultNamespace is the namespace of objects created without one (runs
// started by `skiff run` on the embedded node).
const DefaultNamespace = "default"

// Experiment groups runs. Names are unique within a namespace.
type Experiment struct {
	ID          string    `json:"id"`
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	Archived    bool      `json:"archived,omitempty"`
}

// CreateExperiment creates an experiment. It is rejected if the ID exists
// or the namespace already has an experiment with that name.
type CreateExperiment struct {
	Experiment Experiment `json:"experiment"`
}

// SetExperimentArchived archives or unarchives an experiment.
type SetExperimentArchived struct {
	ID       string `json:"id"`
	Archived bool   `json:"archived"`
}

// DeleteExperiment removes an experiment. It is rejected while any run of
// the experiment is unfinished; finished runs keep their experiment ID.
type DeleteExperiment struct {
	ID string `json:"id"`
}

func (CreateExperiment) Type() CommandType      { return TypeCreateExperiment }
func (SetExperimentArchived) Type() CommandType { return TypeSetExperimentArchived }
func (DeleteExperiment) Type() CommandType      { return TypeDeleteExperiment }

func init() {
	registerJSON(TypeCreateExperiment, "create_experiment", 1, applyCreateExperiment)
	registerJSON(TypeSetExperimentArchived, "set_experiment_archived", 1, applySetExperimentArchived)
	registerJSON(TypeDeleteExperiment, "delete_experiment", 1, applyDeleteExperiment)
}

// nsKey is namespace, a 0 byte, then name: a per-namespace unique index key.
func nsKey(ns, name string) []byte {
	k := make([]byte, 0, len(ns)+1+len(name))
	k = append(k, ns...)
	k = append(k, 0)
	return append(k, name...)
}

func applyCreateExperiment(tx *bolt.Tx, c CreateExperiment) ([]Rejection, error) {
	e := c.Experiment
	switch {
	case e.ID == "" || e.Namespace == "" || e.Name == "":
		return reject("create experiment: id, namespace and name are required"), nil
	case tx.Bucket(bucketExperiments).Get([]byte(e.ID)) != nil:
		return reject("create experiment %q: id already exists", e.ID), nil
	case tx.Bucket(bucketExperimentsByName).Get(nsKey(e.Namespace, e.Name)) != nil:
		return reject("create experiment: namespace %q already has an experiment named %q", e.Namespace, e.Name), nil
	}
	if err := tx.Bucket(bucketExperimentsByName).Put(nsKey(e.Namespace, e.Name), []byte(e.ID)); err != nil {
		return nil, err
	}
	return nil, putJSON(tx, bucketExperiments, e.ID, &e)
}

func applySetExperimentArchived(tx *bolt.Tx, c SetExperimentArchived) ([]Rejection, error) {
	e, err := getExperimentTx(tx, c.ID)
	if err != nil {
		return reject("archive experiment: %v", err), nil
	}
	e.Archived = c.Archived
	return nil, putJSON(tx, bucketExperiments, e.ID, &e)
}

func applyDeleteExperiment(tx *bolt.Tx, c DeleteExperiment) ([]Rejection, error) {
	e, err := getExperimentTx(tx, c.ID)
	if err != nil {
		return reject("delete experiment: %v", err), nil
	}
	runs := tx.Bucket(bucketRuns)
	var busy string
	_ = tx.Bucket(bucketRunsActive).ForEach(func(k, _ []byte) error {
		var r Run
		if json.Unmarshal(runs.Get(k), storedRun(&r)) == nil && r.ExperimentID == e.ID {
			busy = r.ID
		}
		return nil
	})
	if busy != "" {
		return reject("delete experiment %q: run %s is unfinished", e.ID, busy), nil
	}
	if err := tx.Bucket(bucketExperimentsByName).Delete(nsKey(e.Namespace, e.Name)); err != nil {
		return nil, err
	}
	return nil, tx.Bucket(bucketExperiments).Delete([]byte(e.ID))
}

func getExperimentTx(tx *bolt.Tx, id string) (Experiment, error) {
	var e Experiment
	err := getJSON(tx, bucketExperiments, id, &e)
	if err != nil {
		return e, fmt.Errorf("experiment %q: %w", id, err)
	}
	return e, nil
}

// putJSON writes v as JSON under key in bucket.
func putJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %q: %w", bucket, key, err)
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

// getJSON reads key from bucket into v (ErrNotFound).
func getJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b := tx.Bucket(bucket).Get([]byte(key))
	if b == nil {
		return ErrNotFound
	}
	return json.Unmarshal(b, v)
}

// GetExperiment returns one experiment (ErrNotFound).
func (s *Store) GetExperiment(id string) (Experiment, error) {
	var e Experiment
	err := s.fsm.view(func(tx *bolt.Tx) (err error) { e, err = getExperimentTx(tx, id); return })
	return e, err
}

// ExperimentByName returns the namespace's experiment with this name.
func (s *Store) ExperimentByName(ns, name string) (Experiment, error) {
	var e Experiment
	err := s.fsm.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketExperimentsByName).Get(nsKey(ns, name))
		if id == nil {
			return fmt.Errorf("experiment %q in namespace %q: %w", name, ns, ErrNotFound)
		}
		var err error
		e, err = getExperimentTx(tx, string(id))
		return err
	})
	return e, err
}

// ListExperiments returns the experiments of namespace ns ("" = all), in
// ID order.
func (s *Store) ListExperiments(ns string) ([]Experiment, error) {
	var out []Experiment
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketExperiments).ForEach(func(_, v []byte) error {
			var e Experiment
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if ns == "" || e.Namespace == ns {
				out = append(out, e)
			}
			return nil
		})
	})
	return out, err
}
