package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// fsmSnapshot streams a consistent read transaction of state.db through
// zstd. It holds fsm.mu for reading until Release so Restore cannot close
// the db under it.
type fsmSnapshot struct {
	f  *fsm
	tx *bolt.Tx
}

// Snapshot implements raft.FSM. It runs on the FSM goroutine; Persist runs
// concurrently with later Applies, which a bbolt read transaction allows.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.haltErr(); err != nil {
		// A halted FSM lags the log; a snapshot would let raft drop entries
		// it has not applied.
		return nil, err
	}
	f.mu.RLock()
	if f.db == nil {
		f.mu.RUnlock()
		return nil, ErrClosed
	}
	tx, err := f.db.Begin(false)
	if err != nil {
		f.mu.RUnlock()
		return nil, err
	}
	return &fsmSnapshot{f: f, tx: tx}, nil
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	err := writeSnapshot(s.tx, sink)
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func writeSnapshot(tx *bolt.Tx, w io.Writer) error {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		return err
	}
	if _, err := tx.WriteTo(zw); err != nil {
		zw.Close()
		return fmt.Errorf("snapshot: write state: %w", err)
	}
	return zw.Close()
}

func (s *fsmSnapshot) Release() {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
		s.f.mu.RUnlock()
	}
}

// Restore implements raft.FSM: it replaces state.db with the snapshot. The
// snapshot is decompressed into a temp file next to state.db, synced, and
// renamed over it; the db is then reopened.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "state.db.restore-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // no-op after the rename
	zr, err := zstd.NewReader(rc)
	if err != nil {
		tmp.Close()
		return fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(tmp, zr)
	zr.Close()
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("restore: write %s: %w", tmpName, err)
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	var localID []byte // the node's own pairing survives the restore
	if f.db != nil {
		_ = f.db.View(func(tx *bolt.Tx) error {
			localID = bytes.Clone(tx.Bucket(bucketMeta).Get(keyLogID))
			return nil
		})
	}
	if f.db != nil {
		if err := f.db.Close(); err != nil {
			return fmt.Errorf("restore: close state db: %w", err)
		}
		f.db = nil
	}
	if err := os.Rename(tmpName, f.path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	db, err := openStateDB(f.path, restoreLockTimeout)
	if err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	// state.db is another file now: stamp it (see stampBoot). Without the
	// stamp, a crash later only costs a rebuild.
	if err := f.stampBoot(); err != nil {
		f.logger.Warn("store: restore: stamping state.db", "err", err)
	}
	f.db = db
	// The state was replaced wholesale: subscribers rescan it.
	defer f.feed.lagAll()
	return db.Update(func(tx *bolt.Tx) error {
		f.setApplied(appliedTx(tx))
		if localID == nil {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(keyLogID, localID)
	})
}
