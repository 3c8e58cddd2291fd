package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The raft log and stable store of a data dir has two backends:
//
//	raft-wal/   hashicorp/raft-wal: append-only segment files, one fsync
//	            per appended batch (wal.go)
//	raft.db     hashicorp/raft-boltdb/v2: one bbolt commit (two
//	            fdatasyncs and page writes) per appended batch
//
// Config.LogStore picks one. A data dir holding the other one is migrated
// when the store opens (migrateLog): every entry and the stable-store keys
// are copied into a temporary copy that is synced and then renamed into
// place, and only then is the old log renamed aside (raft.db.migrated,
// raft-wal.migrated). A kill -9 at any point leaves the old log, or both
// (identical: the next open finishes the move), or the new one.

// Log store backends (Config.LogStore).
const (
	LogStoreWAL  = "wal"
	LogStoreBolt = "bolt"
)

// DefaultLogStore is the backend DefaultConfig picks.
const DefaultLogStore = LogStoreWAL

// LogStores lists the backends, the default first.
var LogStores = []string{LogStoreWAL, LogStoreBolt}

// Names of the logs in a data dir, and of their temporary copies while a
// migration or a rewrite writes them.
const (
	boltLogFile = "raft.db"
	walLogDir   = "raft-wal"
	tmpSuffix   = ".tmp"
	// newSuffix marks a complete rewrite of the WAL (skip-entry) not yet
	// renamed into place.
	newSuffix = ".new"
	// asideSuffix marks the log a migration replaced (kept, not used).
	asideSuffix = ".migrated"
)

// logFileOf is the data-dir entry of a backend's log.
func logFileOf(kind string) string {
	if kind == LogStoreBolt {
		return boltLogFile
	}
	return walLogDir
}

func otherLogStore(kind string) string {
	if kind == LogStoreBolt {
		return LogStoreWAL
	}
	return LogStoreBolt
}

func validLogStore(kind string) bool { return kind == LogStoreWAL || kind == LogStoreBolt }

// logBackend is what the store needs of a raft log: raft's two stores.
type logBackend interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// raftLog is an open log of a data dir: the backend and the name of its
// file (raft.db or raft-wal) for messages.
type raftLog struct {
	logBackend
	kind string
	file string
	// syncs counts the fsyncs the log made (the WAL only; see wal.go).
	syncs atomic.Uint64
}

// logOptions are how a log is opened.
type logOptions struct {
	noSync      bool
	lockTimeout time.Duration
	segmentSize int // raft-wal segment size; 0: its default
	logger      hclog.Logger
}

// openRaftLog opens (creating if needed) the kind log of dir after checking
// what can be checked before the backend reads it: bbolt files are walked
// whole (bbolt faults on a truncated file). Panics of the backend while
// opening are turned into ErrDamaged.
func openRaftLog(dir, kind string, o logOptions) (*raftLog, error) {
	l := &raftLog{kind: kind, file: logFileOf(kind)}
	lockTimeout := max(o.lockTimeout, time.Nanosecond)
	path := filepath.Join(dir, l.file)
	meta := path
	if kind == LogStoreWAL {
		meta = filepath.Join(path, walMetaFile)
	}
	if err := checkBoltFile(meta, lockTimeout); err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%s: %w", l.file, ErrLocked)
		}
		if kind == LogStoreWAL {
			return nil, fmt.Errorf("%s/%w", l.file, err)
		}
		return nil, err
	}
	err := guard(l.file, func() error {
		var err error
		switch kind {
		case LogStoreBolt:
			l.logBackend, err = raftboltdb.New(raftboltdb.Options{
				Path:        path,
				BoltOptions: &bolt.Options{Timeout: lockTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
				NoSync:      o.noSync,
			})
			if errors.Is(err, berrors.ErrTimeout) {
				err = ErrLocked
			}
		default:
			l.logBackend, err = openWAL(path, o.noSync, o.segmentSize, &l.syncs, o.logger)
			if err != nil {
				err = fmt.Errorf("%w: %w", ErrDamaged, err)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: %w", l.file, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l, nil
}

// backend is what raft gets: the library's own store, so that raft sees
// the optional interfaces it implements (raft-wal is a
// raft.MonotonicLogStore).
func (l *raftLog) backend() logBackend { return l.logBackend }

// syncsCounted reports whether LogSyncs counts this log's fsyncs.
func (l *raftLog) syncsCounted() bool { return l.kind == LogStoreWAL }

// exists reports whether path exists (an error other than "not there"
// counts as there: the caller's open reports it).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, os.ErrNotExist)
}

// presentLogs returns the backends whose log dir holds.
func presentLogs(dir string) []string {
	var kinds []string
	for _, k := range LogStores {
		if exists(filepath.Join(dir, logFileOf(k))) {
			kinds = append(kinds, k)
		}
	}
	return kinds
}

// prepareLog makes the kind log the one of the locked data dir dir: it
// drops copies an interrupted migration left, finishes an interrupted
// rewrite, migrates the other backend's log when only that one is there,
// and finishes a migration that stopped after its rename into place.
func prepareLog(dir, kind string, o logOptions, logger *slog.Logger) error {
	for _, k := range LogStores {
		if err := os.RemoveAll(filepath.Join(dir, logFileOf(k)+tmpSuffix)); err != nil {
			return err
		}
	}
	if err := finishRewrite(dir); err != nil {
		return err
	}
	want, other := filepath.Join(dir, logFileOf(kind)), filepath.Join(dir, logFileOf(otherLogStore(kind)))
	switch {
	case !exists(other):
		return nil
	case exists(want):
		return finishMigration(dir, kind, o)
	}
	logger.Info("store: migrating the raft log", "from", logFileOf(otherLogStore(kind)), "to", logFileOf(kind))
	if err := migrateLog(dir, otherLogStore(kind), kind, o); err != nil {
		return fmt.Errorf("migrate %s to %s: %w", logFileOf(otherLogStore(kind)), logFileOf(kind), err)
	}
	logger.Info("store: raft log migrated", "to", logFileOf(kind), "old", logFileOf(otherLogStore(kind))+asideSuffix)
	return nil
}

// logSummary is what two copies of a log must share to be the same log.
type logSummary struct {
	First, Last, LastTerm, CurrentTerm uint64
	ID                                 string
}

func summarize(l *raftLog) (logSummary, error) {
	r, err := checkLog(l)
	if err != nil {
		return logSummary{}, err
	}
	s := logSummary{First: r.First, Last: r.Last}
	if r.Last != 0 {
		var e raft.Log
		if err := l.GetLog(r.Last, &e); err != nil {
			return s, fmt.Errorf("%s: %w: entry %d: %w", l.file, ErrDamaged, r.Last, err)
		}
		s.LastTerm = e.Term
	}
	if s.CurrentTerm, err = getUint64(l, raftKeyCurrentTerm); err != nil {
		return s, err
	}
	id, err := raftLogID(l)
	s.ID = string(id)
	return s, err
}

// finishMigration handles a data dir holding both logs: a migration to
// kind renamed its copy into place and stopped before it moved the old log
// aside (or a migration the other way did). Both then hold the same log
// and the other one moves aside; if they differ, nothing is touched.
func finishMigration(dir, kind string, o logOptions) error {
	sums := map[string]logSummary{}
	for _, k := range LogStores {
		l, err := openRaftLog(dir, k, logOptions{noSync: true, lockTimeout: o.lockTimeout, logger: o.logger})
		if err != nil {
			return err
		}
		sums[k], err = summarize(l)
		if cerr := l.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	a, b := sums[kind], sums[otherLogStore(kind)]
	if a != b {
		return fmt.Errorf("%w: both %s (entries %d..%d, term %d) and %s (entries %d..%d, term %d) hold a raft log and they differ: "+
			"move the one not in use out of the data dir",
			ErrDamaged, logFileOf(kind), a.First, a.Last, a.CurrentTerm, logFileOf(otherLogStore(kind)), b.First, b.Last, b.CurrentTerm)
	}
	return moveAside(dir, logFileOf(otherLogStore(kind)))
}

// moveAside renames dir/name to dir/name.migrated (or .migrated.N when that
// is taken) and syncs dir.
func moveAside(dir, name string) error {
	to := filepath.Join(dir, name+asideSuffix)
	for i := 1; exists(to); i++ {
		to = filepath.Join(dir, name+asideSuffix+"."+strconv.Itoa(i))
	}
	if err := os.Rename(filepath.Join(dir, name), to); err != nil {
		return err
	}
	return syncDir(dir)
}

// migrateLog copies the from log of dir into a new to log: written under a
// temporary name, synced, renamed into place; then the from log is moved
// aside.
func migrateLog(dir, from, to string, o logOptions) error {
	src, err := openRaftLog(dir, from, logOptions{noSync: true, lockTimeout: o.lockTimeout, logger: o.logger})
	if err != nil {
		return err
	}
	defer src.Close()
	if err := writeLogCopy(dir, src, to, logFileOf(to), o, nil); err != nil {
		return err
	}
	if err := src.Close(); err != nil {
		return err
	}
	return moveAside(dir, src.file)
}

// writeLogCopy writes a copy of src, in the to backend, as dir/target:
// into a temporary name, synced, then renamed to target (where nothing may
// be). edit, when not nil, may change each entry on the way.
func writeLogCopy(dir string, src *raftLog, to, target string, o logOptions, edit func(*raft.Log)) error {
	name := logFileOf(to)
	tmp := filepath.Join(dir, name+tmpSuffix)
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	// The copy is written without syncs, then synced whole.
	var dst logBackend
	var err error
	switch to {
	case LogStoreBolt:
		dst, err = raftboltdb.New(raftboltdb.Options{Path: tmp, NoSync: true})
	default:
		dst, err = openWAL(tmp, true, o.segmentSize, nil, o.logger)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name+tmpSuffix, err)
	}
	err = copyLog(src, dst, edit)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncTree(tmp)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("%s: %w", name+tmpSuffix, err), os.RemoveAll(tmp))
	}
	if err := os.Rename(tmp, filepath.Join(dir, target)); err != nil {
		return err
	}
	return syncDir(dir)
}

// emptyEntry replaces entry index of the log l of the stopped data dir dir
// by an empty batch. raft-boltdb overwrites it in place; raft-wal only
// appends, so the WAL is rewritten whole into raft-wal.new, then the old
// one moves to damaged/ and the new one into place (finishRewrite
// completes that after a crash). l is closed on return.
func emptyEntry(dir string, l *raftLog, index uint64) error {
	defer l.Close()
	if l.kind == LogStoreBolt {
		var e raft.Log
		if err := l.GetLog(index, &e); err != nil {
			return err
		}
		e.Data = []byte{batchFormat}
		return l.StoreLog(&e)
	}
	edit := func(e *raft.Log) {
		if e.Index == index {
			e.Data = []byte{batchFormat}
		}
	}
	if err := writeLogCopy(dir, l, LogStoreWAL, walLogDir+newSuffix, logOptions{}, edit); err != nil {
		return err
	}
	if err := l.Close(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "damaged"), 0o700); err != nil {
		return err
	}
	old := filepath.Join("damaged", walLogDir+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(filepath.Join(dir, walLogDir), filepath.Join(dir, old)); err != nil {
		return err
	}
	return finishRewrite(dir)
}

// finishRewrite completes or drops a rewrite of the WAL: raft-wal.new
// replaces a missing raft-wal (the old one was moved to damaged/), and is
// dropped while raft-wal is still there (the rewrite did not finish).
func finishRewrite(dir string) error {
	next := filepath.Join(dir, walLogDir+newSuffix)
	if !exists(next) {
		return nil
	}
	if exists(filepath.Join(dir, walLogDir)) {
		return os.RemoveAll(next)
	}
	if err := os.Rename(next, filepath.Join(dir, walLogDir)); err != nil {
		return err
	}
	return syncDir(dir)
}

// copyBatch is the entries one StoreLogs call of a copy carries.
const copyBatch = 512

// stableUint64Keys and stableBytesKeys are the stable-store keys a copy
// carries: raft's (hashicorp/raft's api.go and raft.go) and Skiff's log
// id. The backends encode uint64 values differently (big- and
// little-endian), so those go through GetUint64/SetUint64.
var (
	stableUint64Keys = [][]byte{raftKeyCurrentTerm, []byte("LastVoteTerm")}
	stableBytesKeys  = [][]byte{[]byte("LastVoteCand"), raftKeyLogID}
)

// copyLog copies every entry and the stable-store keys of src into the
// empty dst.
func copyLog(src *raftLog, dst logBackend, edit func(*raft.Log)) error {
	r, err := checkLog(src)
	if err != nil {
		return err
	}
	batch := make([]*raft.Log, 0, copyBatch)
	for i := r.First; i != 0 && i <= r.Last; i++ {
		e := new(raft.Log)
		if err := src.GetLog(i, e); err != nil {
			return fmt.Errorf("%s: %w: entry %d: %w", src.file, ErrDamaged, i, err)
		}
		if edit != nil {
			edit(e)
		}
		batch = append(batch, e)
		if len(batch) == copyBatch || i == r.Last {
			if err := dst.StoreLogs(batch); err != nil {
				return fmt.Errorf("write entries up to %d: %w", i, err)
			}
			batch = batch[:0]
		}
	}
	for _, k := range stableUint64Keys {
		v, err := getUint64(src, k)
		if err != nil {
			return err
		}
		if v != 0 {
			if err := dst.SetUint64(k, v); err != nil {
				return fmt.Errorf("write %s: %w", k, err)
			}
		}
	}
	for _, k := range stableBytesKeys {
		v, err := getStable(src, k)
		if err != nil {
			return err
		}
		if v != nil {
			if err := dst.Set(k, v); err != nil {
				return fmt.Errorf("write %s: %w", k, err)
			}
		}
	}
	return nil
}

// getStable reads key of l's stable store: nil when it is not set (the
// backends say so differently).
func getStable(l *raftLog, key []byte) ([]byte, error) {
	v, err := l.Get(key)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) || (err == nil && len(v) == 0) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w: stable key %s: %w", l.file, ErrDamaged, key, err)
	}
	return v, nil
}

// getUint64 reads a uint64 key of l's stable store: 0 when it is not set.
func getUint64(l *raftLog, key []byte) (uint64, error) {
	v, err := l.GetUint64(key)
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w: stable key %s: %w", l.file, ErrDamaged, key, err)
	}
	return v, nil
}

// syncTree fsyncs path (a file, or a directory and the files in it).
func syncTree(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := syncTree(filepath.Join(path, e.Name())); err != nil {
				return err
			}
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return errors.Join(f.Sync(), f.Close())
}
