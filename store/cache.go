package store

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// CacheEntry is the latest successful execution recorded under a cache key.
// It is written by the FSM when a RUNNING -> SUCCEEDED transition carries a
// CacheKey; a failed execution never writes one.
type CacheEntry struct {
	Key         string                `json:"key"`
	RunID       string                `json:"run_id"`
	Task        int                   `json:"task"`
	ExecutionID string                `json:"execution_id"`
	Outputs     map[string]spec.Value `json:"outputs,omitempty"`
	Time        time.Time             `json:"time"`
}

func putCacheEntryTx(tx *bolt.Tx, e CacheEntry) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode cache entry: %w", err)
	}
	return tx.Bucket(bucketCache).Put([]byte(e.Key), b)
}

// CacheLookup returns the entry recorded under key, or ErrNotFound.
func (s *Store) CacheLookup(key string) (CacheEntry, error) {
	var e CacheEntry
	err := s.fsm.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCache).Get([]byte(key))
		if v == nil {
			return fmt.Errorf("cache key %q: %w", key, ErrNotFound)
		}
		return json.Unmarshal(v, &e)
	})
	return e, err
}
