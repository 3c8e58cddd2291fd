package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Pipeline is a named group of immutable versions. Names are unique within
// a namespace.
type Pipeline struct {
	ID          string    `json:"id"`
	Namespace   string    `json:"namespace"`
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
}

// PipelineVersion is one immutable, content-hashed spec of a pipeline.
// Names are unique within a pipeline.
type PipelineVersion struct {
	ID          string          `json:"id"`
	PipelineID  string          `json:"pipeline_id"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Spec        json.RawMessage `json:"spec"`   // as uploaded (a JSON string or object)
	Digest      string          `json:"digest"` // "sha256:<hex>" of Spec
	CreatedAt   time.Time       `json:"created_at,omitzero"`
}

// CreatePipeline creates a pipeline and, when Version is set, its first
// version, atomically.
type CreatePipeline struct {
	Pipeline Pipeline         `json:"pipeline"`
	Version  *PipelineVersion `json:"version,omitempty"`
}

// CreatePipelineVersion adds a version to an existing pipeline.
type CreatePipelineVersion struct {
	Version PipelineVersion `json:"version"`
}

// DeletePipeline deletes one version (VersionID set) or the pipeline with
// every version.
type DeletePipeline struct {
	PipelineID string `json:"pipeline_id"`
	VersionID  string `json:"version_id,omitempty"`
}

func (CreatePipeline) Type() CommandType        { return TypeCreatePipeline }
func (CreatePipelineVersion) Type() CommandType { return TypeCreatePipelineVersion }
func (DeletePipeline) Type() CommandType        { return TypeDeletePipeline }

func init() {
	registerJSON(TypeCreatePipeline, "create_pipeline", 1, applyCreatePipeline)
	registerJSON(TypeCreatePipelineVersion, "create_pipeline_version", 1, applyCreatePipelineVersion)
	registerJSON(TypeDeletePipeline, "delete_pipeline", 1, applyDeletePipeline)
}

func applyCreatePipeline(tx *bolt.Tx, c CreatePipeline) ([]Rejection, error) {
	p := c.Pipeline
	switch {
	case p.ID == "" || p.Namespace == "" || p.Name == "":
		return reject("create pipeline: id, namespace and name are required"), nil
	case tx.Bucket(bucketPipelines).Get([]byte(p.ID)) != nil:
		return reject("create pipeline %q: id already exists", p.ID), nil
	case tx.Bucket(bucketPipelinesByName).Get(nsKey(p.Namespace, p.Name)) != nil:
		return reject("create pipeline: namespace %q already has a pipeline named %q", p.Namespace, p.Name), nil
	}
	if c.Version != nil {
		if c.Version.PipelineID != p.ID {
			return reject("create pipeline %q: version belongs to pipeline %q", p.ID, c.Version.PipelineID), nil
		}
		if rj := checkVersionTx(tx, *c.Version, false); rj != nil {
			return rj, nil
		}
	}
	if err := tx.Bucket(bucketPipelinesByName).Put(nsKey(p.Namespace, p.Name), []byte(p.ID)); err != nil {
		return nil, err
	}
	if err := putJSON(tx, bucketPipelines, p.ID, &p); err != nil {
		return nil, err
	}
	if c.Version != nil {
		return nil, putJSON(tx, bucketPipelineVersions, c.Version.ID, c.Version)
	}
	return nil, nil
}

func checkVersionTx(tx *bolt.Tx, v PipelineVersion, pipelineMustExist bool) []Rejection {
	switch {
	case v.ID == "" || v.PipelineID == "" || v.Name == "":
		return reject("create pipeline version: id, pipeline id and name are required")
	case tx.Bucket(bucketPipelineVersions).Get([]byte(v.ID)) != nil:
		return reject("create pipeline version %q: id already exists", v.ID)
	case pipelineMustExist && tx.Bucket(bucketPipelines).Get([]byte(v.PipelineID)) == nil:
		return reject("create pipeline version: pipeline %q: %v", v.PipelineID, ErrNotFound)
	}
	dup := false
	_ = forEachVersionTx(tx, v.PipelineID, func(o PipelineVersion) { dup = dup || o.Name == v.Name })
	if dup {
		return reject("create pipeline version: pipeline %q already has a version named %q", v.PipelineID, v.Name)
	}
	return nil
}

func applyCreatePipelineVersion(tx *bolt.Tx, c CreatePipelineVersion) ([]Rejection, error) {
	if rj := checkVersionTx(tx, c.Version, true); rj != nil {
		return rj, nil
	}
	return nil, putJSON(tx, bucketPipelineVersions, c.Version.ID, &c.Version)
}

func applyDeletePipeline(tx *bolt.Tx, c DeletePipeline) ([]Rejection, error) {
	var p Pipeline
	if err := getJSON(tx, bucketPipelines, c.PipelineID, &p); err != nil {
		return reject("delete pipeline %q: %v", c.PipelineID, err), nil
	}
	if c.VersionID != "" {
		var v PipelineVersion
		if err := getJSON(tx, bucketPipelineVersions, c.VersionID, &v); err != nil || v.PipelineID != p.ID {
			return reject("delete pipeline version %q: %v", c.VersionID, ErrNotFound), nil
		}
		return nil, tx.Bucket(bucketPipelineVersions).Delete([]byte(v.ID))
	}
	var ids []string
	_ = forEachVersionTx(tx, p.ID, func(v PipelineVersion) { ids = append(ids, v.ID) })
	for _, id := range ids {
		if err := tx.Bucket(bucketPipelineVersions).Delete([]byte(id)); err != nil {
			return nil, err
		}
	}
	if err := tx.Bucket(bucketPipelinesByName).Delete(nsKey(p.Namespace, p.Name)); err != nil {
		return nil, err
	}
	return nil, tx.Bucket(bucketPipelines).Delete([]byte(p.ID))
}

func forEachVersionTx(tx *bolt.Tx, pipelineID string, fn func(PipelineVersion)) error {
	return tx.Bucket(bucketPipelineVersions).ForEach(func(_, b []byte) error {
		var v PipelineVersion
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if v.PipelineID == pipelineID {
			fn(v)
		}
		return nil
	})
}

// GetPipeline returns one pipeline (ErrNotFound).
func (s *Store) GetPipeline(id string) (Pipeline, error) {
	var p Pipeline
	err := s.fsm.view(func(tx *bolt.Tx) error { return getJSON(tx, bucketPipelines, id, &p) })
	if err != nil {
		return p, fmt.Errorf("pipeline %q: %w", id, err)
	}
	return p, nil
}

// PipelineByName returns the namespace's pipeline with this name.
func (s *Store) PipelineByName(ns, name string) (Pipeline, error) {
	var p Pipeline
	err := s.fsm.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketPipelinesByName).Get(nsKey(ns, name))
		if id == nil {
			return ErrNotFound
		}
		return getJSON(tx, bucketPipelines, string(id), &p)
	})
	if err != nil {
		return p, fmt.Errorf("pipeline %q in namespace %q: %w", name, ns, err)
	}
	return p, nil
}

// ListPipelines returns the pipelines of ns ("" = all) in ID order.
func (s *Store) ListPipelines(ns string) ([]Pipeline, error) {
	var out []Pipeline
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPipelines).ForEach(func(_, b []byte) error {
			var p Pipeline
			if err := json.Unmarshal(b, &p); err != nil {
				return err
			}
			if ns == "" || p.Namespace == ns {
				out = append(out, p)
			}
			return nil
		})
	})
	return out, err
}

// GetPipelineVersion returns one version (ErrNotFound).
func (s *Store) GetPipelineVersion(id string) (PipelineVersion, error) {
	var v PipelineVersion
	err := s.fsm.view(func(tx *bolt.Tx) error { return getJSON(tx, bucketPipelineVersions, id, &v) })
	if err != nil {
		return v, fmt.Errorf("pipeline version %q: %w", id, err)
	}
	return v, nil
}

// ListPipelineVersions returns a pipeline's versions, oldest first.
func (s *Store) ListPipelineVersions(pipelineID string) ([]PipelineVersion, error) {
	var out []PipelineVersion
	err := s.fsm.view(func(tx *bolt.Tx) error {
		return forEachVersionTx(tx, pipelineID, func(v PipelineVersion) { out = append(out, v) })
	})
	slices.SortStableFunc(out, func(a, b PipelineVersion) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}
