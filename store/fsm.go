package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Rejection says why one command (or one item of a batch command, such as
// one Transition) was not applied.
type Rejection struct {
	Cmd    int    `json:"cmd"`  // index into the commands passed to Apply
	Item   int    `json:"item"` // index within a batch command; 0 otherwise
	Reason string `json:"reason"`
}

// applyResponse is what the FSM returns for one raft entry.
type applyResponse struct {
	rejected []Rejection
	err      error
}

// fsm applies raft entries to state.db. Apply, ApplyBatch, Snapshot and
// Restore run on raft's FSM goroutine; reads run concurrently on any
// goroutine and hold mu for reading so Restore can swap the database.
type fsm struct {
	path    string // state.db
	noSync  bool
	logger  *slog.Logger
	metrics *metrics

	mu sync.RWMutex // guards db (swapped by Restore)
	db *bolt.DB

	applied atomic.Uint64
	halted  atomic.Pointer[error] // set once on an unrecoverable error
}

var _ raft.BatchingFSM = (*fsm)(nil)

// openFSM opens (creating if needed) the state db at path. lockTimeout 0
// fails at once when another process holds it.
func openFSM(path string, lockTimeout time.Duration, noSync bool, logger *slog.Logger, m *metrics) (*fsm, error) {
	f := &fsm{path: path, noSync: noSync, logger: logger, metrics: m}
	db, err := openStateDB(path, lockTimeout, noSync)
	if err != nil {
		return nil, err
	}
	f.db = db
	if err := f.loadApplied(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return f, nil
}

func openStateDB(path string, lockTimeout time.Duration, noSync bool) (*bolt.DB, error) {
	if lockTimeout <= 0 {
		lockTimeout = time.Nanosecond // bbolt's 0 means wait forever
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, NoSync: noSync, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.Update(initSchemaTx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return db, nil
}

func (f *fsm) loadApplied() error {
	return f.db.View(func(tx *bolt.Tx) error {
		f.applied.Store(appliedIndexTx(tx))
		return nil
	})
}

// haltErr returns the sticky error, or nil.
func (f *fsm) haltErr() error {
	if p := f.halted.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *fsm) halt(err error) error {
	err = fmt.Errorf("%w: %w", ErrFSMHalted, err)
	if f.halted.CompareAndSwap(nil, &err) {
		f.logger.Error("store: state machine halted; restart with a binary that knows this log", "err", err)
	}
	return f.haltErr()
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: all entries of the batch (and all
// their commands) are applied in one bbolt transaction together with the
// new applied index. Entries at or below the stored applied index (replayed
// after a restart) are skipped.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resp := make([]any, len(logs))
	if err := f.haltErr(); err != nil {
		for i := range resp {
			resp[i] = &applyResponse{err: err}
		}
		return resp
	}
	f.mu.RLock()
	defer f.mu.RUnlock()

	applied := f.applied.Load()
	// Decode first: an undecodable entry halts the FSM before it, so the
	// entries ahead of it still commit.
	decoded := make([][]decodedCmd, len(logs))
	n := len(logs)
	var haltErr error
	for i, l := range logs {
		if l.Index <= applied || l.Type != raft.LogCommand {
			continue
		}
		cmds, err := decodeBatch(l.Data)
		if err != nil {
			haltErr = f.halt(fmt.Errorf("raft index %d: %w", l.Index, err))
			n = i
			break
		}
		decoded[i] = cmds
	}
	for i := n; i < len(logs); i++ {
		resp[i] = &applyResponse{err: haltErr}
	}
	if n == 0 || logs[n-1].Index <= applied {
		for i := 0; i < n; i++ {
			resp[i] = &applyResponse{}
		}
		return resp
	}

	var entries, rejections int
	cmdCounts := map[CommandType]int{}
	err := f.db.Update(func(tx *bolt.Tx) error {
		for i := 0; i < n; i++ {
			r := &applyResponse{}
			resp[i] = r
			if logs[i].Index <= applied {
				continue
			}
			entries++
			for ci, dc := range decoded[i] {
				if dc.cmd == nil {
					continue // unknown but ignorable
				}
				cmdCounts[dc.typ]++
				rej, err := registry[dc.typ].apply(tx, dc.cmd)
				if err != nil {
					return fmt.Errorf("raft index %d command %d (%s): %w", logs[i].Index, ci, registry[dc.typ].name, err)
				}
				for _, rj := range rej {
					rj.Cmd = ci
					r.rejected = append(r.rejected, rj)
				}
			}
			rejections += len(r.rejected)
		}
		return putAppliedIndexTx(tx, logs[n-1].Index)
	})
	if err != nil {
		err = f.halt(err)
		for i := range resp {
			resp[i] = &applyResponse{err: err}
		}
		return resp
	}
	f.applied.Store(logs[n-1].Index)
	f.metrics.observeApplied(entries, cmdCounts, rejections)
	return resp
}

// view runs fn in a read transaction on the current db.
func (f *fsm) view(fn func(tx *bolt.Tx) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return ErrClosed
	}
	return f.db.View(fn)
}

func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return nil
	}
	err := f.db.Close()
	f.db = nil
	return err
}

// syncDir fsyncs a directory so a rename in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
