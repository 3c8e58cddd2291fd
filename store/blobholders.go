package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TypeRecordHolders records which nodes hold a blob (the replicated blob
// store: cluster/blobs.go). Numbers only grow.
const TypeRecordHolders CommandType = 46

// maxHolderDigests bounds the digests of one RecordHolders command.
const maxHolderDigests = 4096

// RecordHolders says that node NodeID now holds the blobs Add and no
// longer holds the blobs Drop. A worker commits it for its outputs (after
// a majority of voters hold them, before it reports the execution
// succeeded), a node that repaired a blob for what it fetched, and garbage
// collection for what it deleted. A digest that is not "sha256:" and 64
// lower-case hex digits rejects the whole command, which then changes
// nothing.
type RecordHolders struct {
	NodeID string    `json:"node_id"`
	Add    []string  `json:"add,omitempty"`
	Drop   []string  `json:"drop,omitempty"`
	Time   time.Time `json:"time"`
}

func (RecordHolders) Type() CommandType { return TypeRecordHolders }

// holderRecord is bucketBlobHolders' value.
type holderRecord struct {
	// Nodes are the ids of the nodes holding the blob, sorted.
	Nodes []string `json:"nodes"`
	// Since is the proposer's time of the first record of the blob.
	Since time.Time `json:"since,omitzero"`
}

func init() {
	registerJSON(TypeRecordHolders, "record_holders", 1, applyRecordHolders)
}

// validHolderDigest is blob.ParseDigest's rule (store does not import
// store/blob, which imports engine packages).
func validHolderDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range []byte(h) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func applyRecordHolders(tx *bolt.Tx, c RecordHolders) ([]Rejection, error) {
	switch {
	case c.NodeID == "":
		return reject("record holders: node_id: required"), nil
	case len(c.Add)+len(c.Drop) > maxHolderDigests:
		return reject("record holders: add, drop: %d digests, at most %d in one command", len(c.Add)+len(c.Drop), maxHolderDigests), nil
	}
	for _, f := range []struct {
		name string
		ds   []string
	}{{"add", c.Add}, {"drop", c.Drop}} {
		for i, d := range f.ds {
			if !validHolderDigest(d) {
				return reject("record holders: %s[%d]: invalid digest %q", f.name, i, d), nil
			}
		}
	}
	b := tx.Bucket(bucketBlobHolders)
	update := func(d string, add bool) error {
		var r holderRecord
		if v := b.Get([]byte(d)); v != nil {
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("holders of %s: %w", d, err)
			}
		} else if !add {
			return nil
		} else {
			r.Since = c.Time
		}
		i, found := slices.BinarySearch(r.Nodes, c.NodeID)
		switch {
		case add && !found:
			r.Nodes = slices.Insert(r.Nodes, i, c.NodeID)
		case !add && found:
			r.Nodes = slices.Delete(r.Nodes, i, i+1)
		default:
			return nil
		}
		if len(r.Nodes) == 0 {
			return b.Delete([]byte(d))
		}
		v, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put([]byte(d), v)
	}
	for _, d := range c.Add {
		if err := update(d, true); err != nil {
			return nil, err
		}
	}
	for _, d := range c.Drop {
		if err := update(d, false); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// Holders returns the ids of the nodes recorded as holding the blob with
// digest, sorted (none: nil).
func (s *Store) Holders(digest string) ([]string, error) {
	var r holderRecord
	err := s.fsm.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketBlobHolders).Get([]byte(digest))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return nil, fmt.Errorf("store: holders of %s: %w", digest, err)
	}
	return r.Nodes, nil
}

// EachHeld calls fn for every blob with a holder record, in digest order,
// until fn returns an error (which EachHeld returns). fn must not call the
// store.
func (s *Store) EachHeld(fn func(digest string, holders []string) error) error {
	return s.fsm.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlobHolders).ForEach(func(k, v []byte) error {
			var r holderRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("store: holders of %s: %w", k, err)
			}
			return fn(string(k), r.Nodes)
		})
	})
}
