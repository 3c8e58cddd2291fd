package store

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// The checks Open runs before it hands anything to raft: raft and bbolt
// panic (in goroutines no one can recover) on a damaged file, and a
// state.db that is not the state of this raft log would make the FSM skip
// new entries as "already applied". Each failure is one line naming the
// file and saying how to recover (ErrDamaged).

// guard runs fn and turns a panic or a memory fault (bbolt reads an mmap:
// a truncated file faults) into an error naming file.
func guard(file string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %w: unreadable (%v)", file, ErrDamaged, p)
		}
	}()
	return fn()
}

// walkBoltTx reads every page of the database that tx sees: the file
// must be as long as its meta page says and every bucket and key
// reachable. It must run under guard.
func walkBoltTx(tx *bolt.Tx, size int64) error {
	if size < tx.Size() {
		return fmt.Errorf("%w: truncated: %d bytes, its pages need %d", ErrDamaged, size, tx.Size())
	}
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if child := b.Bucket(k); child != nil {
					return walk(child)
				}
			}
			return nil
		})
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return walk(b) })
}

// checkBoltFile opens the bbolt file at path read-only (if it exists and
// is not empty: bbolt initialises those) and walks it.
func checkBoltFile(path string, timeout time.Duration) error {
	name := filepath.Base(path)
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) || (err == nil && fi.Size() == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return guard(name, func() error {
		db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: max(timeout, time.Nanosecond)})
		if err != nil {
			return fmt.Errorf("%s: %w: %w", name, ErrDamaged, err)
		}
		defer db.Close()
		if err := db.View(func(tx *bolt.Tx) error { return walkBoltTx(tx, fi.Size()) }); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	})
}

// logRange is the span of entries a raft log store holds; First is 0 when
// it is empty. file names the log (raft.db or raft-wal) in messages.
type logRange struct {
	First, Last uint64
	file        string
}

// checkLog reads every entry of the log (raft panics on an entry it cannot
// read or find) and returns its range.
func checkLog(logs *raftLog) (logRange, error) {
	r := logRange{file: logs.file}
	err := guard(logs.file, func() error {
		var err error
		if r.First, err = logs.FirstIndex(); err != nil {
			return fmt.Errorf("%s: %w: %w", logs.file, ErrDamaged, err)
		}
		if r.Last, err = logs.LastIndex(); err != nil {
			return fmt.Errorf("%s: %w: %w", logs.file, ErrDamaged, err)
		}
		if r.First > r.Last || (r.First == 0) != (r.Last == 0) {
			return fmt.Errorf("%s: %w: first entry %d after last entry %d", logs.file, ErrDamaged, r.First, r.Last)
		}
		for i := r.First; i != 0 && i <= r.Last; i++ {
			var l raft.Log
			if err := logs.GetLog(i, &l); err != nil {
				return fmt.Errorf("%s: %w: entry %d of %d..%d: %w", logs.file, ErrDamaged, i, r.First, r.Last, err)
			}
			if l.Index != i {
				return fmt.Errorf("%s: %w: entry %d of %d..%d reads as entry %d", logs.file, ErrDamaged, i, r.First, r.Last, l.Index)
			}
		}
		return nil
	})
	return r, err
}

// raftKeyLogID is the key of the log id in the raft log's stable store.
var raftKeyLogID = []byte("skiff_log_id")

// raftLogID returns the raft log's id, or nil if it has none (yet).
func raftLogID(logs *raftLog) ([]byte, error) {
	id, err := getStable(logs, raftKeyLogID)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: log id: %w", logs.file, ErrDamaged, err)
	}
	return id, nil
}

// newLogID returns a fresh random log id.
func newLogID() ([]byte, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return []byte(hex.EncodeToString(b)), nil
}

func orNone(id []byte) string {
	if id == nil {
		return "a log without an id"
	}
	return "log " + string(id)
}

// pairLog gives raft.db a log id if it has none, then records it in
// state.db (once the checks have accepted the pair). raft.db is written
// first: a state.db naming a log that raft.db does not is a mismatch.
func (s *Store) pairLog() error {
	id, err := raftLogID(s.log)
	if err != nil {
		return err
	}
	if id == nil {
		if id, err = newLogID(); err != nil {
			return err
		}
		if err := s.log.Set(raftKeyLogID, id); err != nil {
			return fmt.Errorf("%s: write log id: %w", s.log.file, err)
		}
	}
	cur, err := s.fsm.logID()
	if err != nil || bytes.Equal(cur, id) {
		return err
	}
	if err := s.fsm.setLogID(id); err != nil {
		return fmt.Errorf("state.db: write log id: %w", err)
	}
	return nil
}

// recoverHint is the way out of a state.db that does not belong to the log.
const recoverHint = "to recover, stop every skiff using this data dir and either put back the raft log that belongs to it, " +
	"or run `skiff store reset-log` to keep what state.db holds and start a new raft log from it, " +
	"or move state.db away to rebuild the state from raft.db and snapshots/ (what only state.db holds is lost)"

// checkStateMatchesLog refuses a state.db whose last applied entry is not
// in this raft log (nor in a snapshot of it): raft.db was deleted,
// emptied or replaced, or state.db comes from another data dir. Raft
// would number new entries from its own last index, and the FSM would
// skip them as already applied.
func (s *Store) checkStateMatchesLog(log logRange, snaps []*raft.SnapshotMeta) error {
	stateID, err := s.fsm.logID()
	if err != nil {
		return fmt.Errorf("store: data dir %s: state.db: %w", s.cfg.Dir, err)
	}
	if err := checkPairing(s.fsm.appliedAt(), stateID, s.log, log, snaps); err != nil {
		return fmt.Errorf("store: data dir %s: %w", s.cfg.Dir, err)
	}
	return nil
}

// checkPairing is checkStateMatchesLog for a state.db at position at
// belonging to log stateID.
func checkPairing(at logPosition, stateID []byte, logs *raftLog, log logRange, snaps []*raft.SnapshotMeta) error {
	if at.Index == 0 {
		return nil
	}
	mismatch := func(format string, args ...any) error {
		what := fmt.Sprintf(format, args...)
		return fmt.Errorf("%w: state.db has applied raft entry %d (term %d), but %s: "+
			"%s was deleted, emptied or replaced, or state.db comes from another data dir; %s",
			ErrStateMismatch, at.Index, at.Term, what, logs.file, recoverHint)
	}
	raftID, err := raftLogID(logs)
	if err != nil {
		return err
	}
	if stateID != nil && !bytes.Equal(stateID, raftID) {
		return mismatch("it is the state of raft log %s and %s is %s", stateID, logs.file, orNone(raftID))
	}
	if log.First != 0 && at.Index >= log.First && at.Index <= log.Last {
		var l raft.Log
		if err := logs.GetLog(at.Index, &l); err != nil {
			return fmt.Errorf("%s: %w: entry %d: %w", logs.file, ErrDamaged, at.Index, err)
		}
		if at.Term != 0 && l.Term != at.Term {
			return mismatch("%s holds entry %d at term %d", logs.file, at.Index, l.Term)
		}
		return nil
	}
	for _, m := range snaps {
		if m.Index == at.Index {
			if at.Term != 0 && m.Term != at.Term {
				return mismatch("snapshot %s ends at entry %d of term %d", m.ID, m.Index, m.Term)
			}
			return nil
		}
	}
	if log.First == 0 {
		return mismatch("%s holds no entries and no snapshot ends there", logs.file)
	}
	if at.Index > log.Last {
		return mismatch("%s ends at entry %d", logs.file, log.Last)
	}
	return mismatch("%s starts at entry %d and no snapshot ends there", logs.file, log.First)
}
