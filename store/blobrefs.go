package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// BlobRefs returns the digest of every blob that the state refers to, each
// with the first place that refers to it: the outputs of every run and
// task (finished or not), the logs of every attempt, and the outputs of
// every cache entry (an entry may be reused for as long as a task's
// max_cache_staleness allows, which can be forever, so every one counts).
// It reads one consistent view of this node's state (see AppliedIndex).
// Runs for which skipRun (when not nil) is true are left out, with their
// tasks: what would stay referenced once they are deleted. Garbage
// collection of the blob store keeps exactly these.
func (s *Store) BlobRefs(skipRun func(runID string) bool) (map[string]string, error) {
	var refs map[string]string
	err := s.fsm.view(func(tx *bolt.Tx) error {
		var err error
		if refs, err = blobRefsTx(tx, skipRun); err != nil {
			return err
		}
		return tx.Bucket(bucketCache).ForEach(func(k, v []byte) error {
			var e CacheEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("cache entry %q: %w", k, err)
			}
			for name, val := range e.Outputs {
				for _, a := range append(val.Artifacts, derefArtifact(val.Artifact)...) {
					if _, seen := refs[a.Digest]; !seen {
						refs[a.Digest] = fmt.Sprintf("cache entry %s output %s", e.Key, name)
					}
				}
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: blob refs: %w", err)
	}
	return refs, nil
}
