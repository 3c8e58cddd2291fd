package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// Offline repairs of a stopped data directory: the ways out that Open's
// errors name. Each takes the data-dir lock (ErrLocked while a store has
// it open), keeps what it replaces under damaged/, and says what it did.

// raftKeyCurrentTerm is raft's stable-store key for its current term.
var raftKeyCurrentTerm = []byte("CurrentTerm")

// SkipEntry turns raft entry index of the data dir's log, which the state
// machine cannot decode, into an empty batch, so that the FSM goes past it
// (the change it carried is lost). Its bytes are kept in
// damaged/entry-INDEX.bin. An entry that decodes is refused: skipping it
// would make this node's state differ from the log.
func SkipEntry(dir string, index uint64) (string, error) {
	lock, err := lockDir(dir, toolLockWait)
	if err != nil {
		return "", fmt.Errorf("store: data dir %s: %w", dir, err)
	}
	defer lock.unlock()
	logs, err := openLogStore(dir)
	if err != nil {
		return "", fmt.Errorf("store: data dir %s: %w", dir, err)
	}
	defer logs.Close()
	var l raft.Log
	if err := logs.GetLog(index, &l); err != nil {
		return "", fmt.Errorf("store: data dir %s: %s: entry %d: %w", dir, logs.file, index, err)
	}
	if l.Type != raft.LogCommand {
		return "", fmt.Errorf("store: data dir %s: %s: entry %d is raft's own (%s), not a command", dir, logs.file, index, l.Type)
	}
	if _, derr := decodeBatch(l.Data); derr == nil {
		return "", fmt.Errorf("store: data dir %s: %s: entry %d decodes; skip-entry only drops an entry the state machine cannot read", dir, logs.file, index)
	}
	kept := filepath.Join("damaged", "entry-"+strconv.FormatUint(index, 10)+".bin")
	if err := os.MkdirAll(filepath.Join(dir, "damaged"), 0o700); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, kept), l.Data, 0o600); err != nil {
		return "", err
	}
	if err := emptyEntry(dir, logs, index); err != nil {
		return "", fmt.Errorf("store: data dir %s: %s: rewrite entry %d: %w", dir, logs.file, index, err)
	}
	return fmt.Sprintf("raft entry %d is now empty; its bytes are in %s", index, kept), nil
}

// ResetLog starts a new raft log from state.db, for a state.db whose
// raft.db is lost or damaged (ErrStateMismatch, ErrDamaged on raft.db):
// raft.db and snapshots/ move to damaged/, a snapshot of state.db at its
// last applied entry (index and term) becomes the start of a new log, and
// both files get a new log id. state.db must have been closed cleanly.
// This is a single-node repair: in a cluster, a node rejoins instead.
func ResetLog(dir string) (string, error) {
	lock, err := lockDir(dir, toolLockWait)
	if err != nil {
		return "", fmt.Errorf("store: data dir %s: %w", dir, err)
	}
	defer lock.unlock()
	statePath := filepath.Join(dir, "state.db")
	if _, err := os.Stat(statePath + ".clean"); err != nil {
		return "", fmt.Errorf("store: data dir %s: state.db was not closed cleanly (or is missing): it cannot be the start of a new log", dir)
	}
	db, err := openStateDB(statePath, time.Nanosecond)
	if err != nil {
		return "", fmt.Errorf("store: data dir %s: %w", dir, err)
	}
	var at logPosition
	var stateID []byte
	_ = db.View(func(tx *bolt.Tx) error {
		at, stateID = appliedTx(tx), bytes.Clone(tx.Bucket(bucketMeta).Get(keyLogID))
		return nil
	})
	if at.Index == 0 {
		db.Close()
		return "", fmt.Errorf("store: data dir %s: state.db has applied nothing: there is nothing to keep", dir)
	}
	if logIntact(dir, at, stateID) {
		db.Close()
		return "", fmt.Errorf("store: data dir %s: raft.db is intact and state.db is its state: nothing to reset (a reset would drop the entries state.db has not applied yet)", dir)
	}
	at.Term = max(at.Term, 1) // a data dir from before terms were kept
	err = resetLog(dir, db, at)
	err = errors.Join(err, db.Sync(), db.Close())
	if err != nil {
		return "", fmt.Errorf("store: data dir %s: reset log: %w", dir, err)
	}
	return fmt.Sprintf("new raft log starts after entry %d (term %d) from state.db; the old raft.db and snapshots are in damaged/", at.Index, at.Term), nil
}

func resetLog(dir string, db *bolt.DB, at logPosition) error {
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	if err := os.MkdirAll(filepath.Join(dir, "damaged"), 0o700); err != nil {
		return err
	}
	// The new log has the backend of the old one.
	kind := DefaultLogStore
	if kinds := presentLogs(dir); len(kinds) == 1 {
		kind = kinds[0]
	}
	for _, name := range []string{boltLogFile, walLogDir, "snapshots"} {
		err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, "damaged", name+"."+stamp))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	id, err := newLogID()
	if err != nil {
		return err
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyLogID, id) }); err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStore(dir, snapshotsRetained, io.Discard)
	if err != nil {
		return err
	}
	_, trans := raft.NewInmemTransport(localAddr)
	defer closeTransport(trans)
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: localServerID, Address: localAddr}}}
	sink, err := snaps.Create(raft.SnapshotVersionMax, at.Index, at.Term, conf, at.Index, trans)
	if err != nil {
		return err
	}
	if err := db.View(func(tx *bolt.Tx) error { return writeSnapshot(tx, sink) }); err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	logs, err := openRaftLog(dir, kind, logOptions{lockTimeout: time.Nanosecond})
	if err != nil {
		return err
	}
	err = errors.Join(logs.SetUint64(raftKeyCurrentTerm, at.Term), logs.Set(raftKeyLogID, id))
	return errors.Join(err, logs.Close(), syncDir(dir))
}

// logIntact reports whether raft.db reads whole and state.db, at position
// at of log stateID, is its state.
func logIntact(dir string, at logPosition, stateID []byte) bool {
	logs, err := openLogStore(dir)
	if err != nil {
		return false
	}
	defer logs.Close()
	log, err := checkLog(logs)
	if err != nil {
		return false
	}
	snaps, err := raft.NewFileSnapshotStore(dir, snapshotsRetained, io.Discard)
	if err != nil {
		return false
	}
	metas, err := snaps.List()
	return err == nil && checkPairing(at, stateID, logs, log, metas) == nil && checkLogCoverage(log, metas) == nil
}

// openLogStore opens the raft log of a stopped data dir (raft-wal or
// raft.db, whichever it holds) after checking it.
func openLogStore(dir string) (*raftLog, error) {
	if err := finishRewrite(dir); err != nil {
		return nil, err
	}
	kinds := presentLogs(dir)
	switch len(kinds) {
	case 0:
		return nil, fmt.Errorf("%s: %w (nor %s)", boltLogFile, os.ErrNotExist, walLogDir)
	case 2:
		return nil, fmt.Errorf("%w: both %s and %s are there: a migration between them was interrupted; "+
			"the next open of the store finishes it", ErrDamaged, walLogDir, boltLogFile)
	}
	return openRaftLog(dir, kinds[0], logOptions{lockTimeout: time.Nanosecond})
}
