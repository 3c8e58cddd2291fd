package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
//
// state.db is written without fsyncs: the raft log (synced) is what makes
// an entry durable, and state.db is only its cache. Its commits reach the
// page cache, which survives the process (kill -9); a power loss could
// leave it torn. So state.db is trusted only when it was closed cleanly,
// or when the process that had it open died and the machine did not
// restart since: Close syncs it and writes state.db.clean; open removes
// that marker (and syncs the directory) before the first write, and
// stamps state.db.boot with the machine's boot id and the file's device
// and inode. A state.db with neither marker, or whose stamp names another
// boot or another file (a copy), or that does not open as a whole, is
// discarded, and the store rebuilds it from the latest snapshot and the
// raft log after it (see Store.catchUpFromSnapshot). Keeping it after a
// kill -9 spares a restart the replay of every entry since the last
// snapshot. This saves two of the four fsyncs of every entry.
type fsm struct {
	path    string // state.db
	logger  *slog.Logger
	metrics *metrics

	mu sync.RWMutex // guards db (swapped by Restore)
	db *bolt.DB

	applied     atomic.Uint64         // index of the last applied entry
	appliedTerm atomic.Uint64         // its term (0: unknown, a data dir from before terms were kept)
	halted      atomic.Pointer[error] // set once on an unrecoverable error

	feed feed // applied changes, published after each commit

	proposed proposedEntries // entries this node proposed, decoded
}

// proposedEntries holds the commands of the entries Store.Apply is
// proposing, as encodeBatch's check decoded them, by the address of the
// entry's bytes: on the leader raft hands the FSM the slice it was given,
// and the FSM takes them instead of decoding the entry again. The key
// keeps the bytes alive, so no other entry can have that address while
// they are held; a follower, or a log read back, finds nothing and
// decodes.
type proposedEntries struct {
	mu sync.Mutex
	m  map[*byte][]decodedCmd
}

func (p *proposedEntries) put(data []byte, cmds []decodedCmd) {
	if len(data) == 0 {
		return
	}
	p.mu.Lock()
	if p.m == nil {
		p.m = make(map[*byte][]decodedCmd)
	}
	p.m[&data[0]] = cmds
	p.mu.Unlock()
}

func (p *proposedEntries) drop(data []byte) {
	if len(data) == 0 {
		return
	}
	p.mu.Lock()
	delete(p.m, &data[0])
	p.mu.Unlock()
}

// take returns the commands of data if this node proposed these very
// bytes and they are still held.
func (p *proposedEntries) take(data []byte) ([]decodedCmd, bool) {
	if len(data) == 0 {
		return nil, false
	}
	p.mu.Lock()
	cmds, ok := p.m[&data[0]]
	p.mu.Unlock()
	return cmds, ok
}

var _ raft.BatchingFSM = (*fsm)(nil)

// openFSM opens (creating if needed) the state db at path. lockTimeout 0
// fails at once when another process holds it.
func openFSM(path string, lockTimeout time.Duration, logger *slog.Logger, m *metrics) (*fsm, error) {
	f := &fsm{path: path, logger: logger, metrics: m}
	crashed, err := f.checkClean()
	if err != nil {
		return nil, err
	}
	db, err := openStateDB(path, lockTimeout)
	if err != nil && crashed && !errors.Is(err, ErrLocked) {
		f.logger.Warn("store: state.db left by a process that died does not open; rebuilding it from the latest snapshot and the raft log", "err", err)
		if rerr := os.Remove(path); rerr != nil {
			return nil, fmt.Errorf("discard %s: %w (it did not open: %w)", path, rerr, err)
		}
		db, err = openStateDB(path, lockTimeout)
	}
	if err != nil {
		return nil, err
	}
	if err := f.stampBoot(); err != nil {
		_ = db.Close()
		return nil, err
	}
	f.db = db
	if err := f.loadApplied(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return f, nil
}

// cleanMarker is the file that says state.db was closed cleanly.
func (f *fsm) cleanMarker() string { return f.path + ".clean" }

// checkClean discards state.db unless it was closed cleanly or left by a
// process that died on this boot of the machine (crashed: then it is kept,
// and must still open as a whole), then removes the clean marker (durably)
// before anything writes state.db again. stampBoot stamps it once open.
func (f *fsm) checkClean() (crashed bool, err error) {
	marker := f.cleanMarker()
	fi, dbErr := os.Stat(f.path)
	_, markErr := os.Stat(marker)
	switch {
	case dbErr == nil && errors.Is(markErr, os.ErrNotExist):
		if stamp := bootStamp(fi); stamp != "" && readBootMarker(f.bootMarker()) == stamp {
			// Every commit of the dead process reached the page cache,
			// which the machine still has: state.db is as it left it.
			crashed = true
			break
		}
		f.logger.Warn("store: state.db was not closed cleanly (and the machine restarted since, or it is a copy, or the boot is unknown); rebuilding it from the latest snapshot and the raft log")
		if err := os.Remove(f.path); err != nil {
			return false, fmt.Errorf("discard %s: %w", f.path, err)
		}
	case markErr == nil:
		if err := os.Remove(marker); err != nil {
			return false, fmt.Errorf("remove %s: %w", marker, err)
		}
	case !errors.Is(markErr, os.ErrNotExist):
		return false, fmt.Errorf("check %s: %w", marker, markErr)
	}
	return crashed, syncDir(filepath.Dir(f.path))
}

// stampBoot records which file state.db is, on which boot of the machine
// (bootStamp), once it is open: a later open after a crash of this
// process keeps that file, and only it. Until the stamp is written (a
// crash while opening) the previous one stands: it names this same file
// on this boot, or the next open rebuilds state.db.
func (f *fsm) stampBoot() error {
	fi, err := os.Stat(f.path)
	if err != nil {
		return err
	}
	stamp := bootStamp(fi)
	if stamp != "" && readBootMarker(f.bootMarker()) == stamp {
		return nil // kept: the stamp names it already
	}
	if stamp == "" {
		if err := os.Remove(f.bootMarker()); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", f.bootMarker(), err)
		}
	} else if err := writeFileAtomic(f.bootMarker(), []byte(stamp+"\n")); err != nil {
		return fmt.Errorf("write %s: %w", f.bootMarker(), err)
	}
	return syncDir(filepath.Dir(f.path))
}

// bootMarker is the file that holds the stamp (bootStamp) of the state.db
// that was last opened for writing.
func (f *fsm) bootMarker() string { return f.path + ".boot" }

// bootStamp names the file fi on the machine's running boot: boot id,
// device and inode ("" where the boot id or the inode is unknown). A copy
// of state.db (a restored backup, a data dir copied while skiff ran) is
// another inode, so it is never taken for the file a dead process left.
func bootStamp(fi os.FileInfo) string {
	boot := bootID()
	st, ok := fi.Sys().(*syscall.Stat_t)
	if boot == "" || !ok {
		return ""
	}
	return fmt.Sprintf("%s %d %d", boot, st.Dev, st.Ino)
}

// bootIDFile is Linux's id of the running boot of the machine (containers
// see their host's).
var bootIDFile = "/proc/sys/kernel/random/boot_id"

// bootID is the machine's boot id, or "" where there is none.
func bootID() string { return readBootMarker(bootIDFile) }

// readBootMarker is the one short line the file at path holds ("" if it
// cannot be read or is not short): a boot marker's stamp, or a boot id.
func readBootMarker(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 256 {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeFileAtomic writes data to path through a synced temporary file
// renamed over it (the caller syncs the directory).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// stateMmapSize is the address space state.db is mapped with from the
// start (bbolt's InitialMmapSize; only what the file holds is ever
// touched). A smaller map is remapped as the file grows: each remap waits
// for every read transaction to end, blocking the FSM meanwhile, and
// copies out every node the commit holds (a 100,000-task expansion).
const stateMmapSize = 1 << 30

func openStateDB(path string, lockTimeout time.Duration) (*bolt.DB, error) {
	if lockTimeout <= 0 {
		lockTimeout = time.Nanosecond // bbolt's 0 means wait forever
	}
	var db *bolt.DB
	err := guard(filepath.Base(path), func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, NoSync: true, NoFreelistSync: true, FreelistType: bolt.FreelistMapType, InitialMmapSize: stateMmapSize})
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("open %s: %w", path, ErrLocked)
		}
		if err != nil {
			return fmt.Errorf("open %s: %w: %w", path, ErrDamaged, err)
		}
		fi, err := os.Stat(path)
		if err == nil {
			err = db.View(func(tx *bolt.Tx) error { return walkBoltTx(tx, fi.Size()) })
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		if db != nil {
			_ = guard(filepath.Base(path), db.Close)
		}
		return nil, err
	}
	if err := db.Update(initSchemaTx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("init %s: %w", path, err)
	}
	return db, nil
}

func (f *fsm) loadApplied() error {
	return f.db.View(func(tx *bolt.Tx) error {
		f.setApplied(appliedTx(tx))
		return nil
	})
}

// logID returns the id of the raft log state.db belongs to, or nil.
func (f *fsm) logID() ([]byte, error) {
	var id []byte
	err := f.view(func(tx *bolt.Tx) error {
		id = bytes.Clone(tx.Bucket(bucketMeta).Get(keyLogID))
		return nil
	})
	return id, err
}

// setLogID records the raft log state.db belongs to.
func (f *fsm) setLogID(id []byte) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.db == nil {
		return ErrClosed
	}
	return f.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyLogID, id) })
}

func (f *fsm) setApplied(p logPosition) {
	f.applied.Store(p.Index)
	f.appliedTerm.Store(p.Term)
}

// appliedAt is the position of the last applied entry.
func (f *fsm) appliedAt() logPosition {
	return logPosition{Index: f.applied.Load(), Term: f.appliedTerm.Load()}
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
		cmds, ok := f.proposed.take(l.Data)
		var err error
		if !ok {
			cmds, err = decodeBatch(l.Data)
		}
		if err != nil {
			haltErr = f.halt(fmt.Errorf("raft entry %d cannot be decoded: %w; "+
				"if a newer skiff wrote it, run that one; otherwise stop skiff and run `skiff store skip-entry %d` to drop it (the change it carries is lost)",
				l.Index, err, l.Index))
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

	// A command whose handler fails (a key bbolt refuses, a record that
	// does not encode) would fail the same way at every replay and halt
	// the FSM for good: the batch is applied again with that command
	// rejected. Handler errors are deterministic (same state, same
	// command); a failed commit (I/O) is not, and halts.
	skip := map[cmdPos]string{}
	for {
		st, changes, err := f.applyTx(logs[:n], decoded, applied, skip, resp)
		var ce *cmdError
		if errors.As(err, &ce) {
			f.logger.Error("store: a command cannot be applied; rejecting it", "err", ce)
			skip[ce.pos] = ce.Error()
			continue
		}
		if err != nil {
			err = f.halt(err)
			for i := range resp {
				resp[i] = &applyResponse{err: err}
			}
			return resp
		}
		f.setApplied(logPosition{logs[n-1].Index, logs[n-1].Term})
		f.metrics.observeApplied(st.entries, st.cmdCounts, st.rejections)
		f.feed.publish(changes)
		return resp
	}
}

// cmdPos is one command of one entry of a batch.
type cmdPos struct{ entry, cmd int }

// cmdError is a command handler's error.
type cmdError struct {
	pos   cmdPos
	index uint64
	name  string
	err   error
}

func (e *cmdError) Error() string {
	return fmt.Sprintf("raft entry %d command %d (%s): %v", e.index, e.pos.cmd, e.name, e.err)
}

func (e *cmdError) Unwrap() error { return e.err }

type applyStats struct {
	entries, rejections int
	cmdCounts           map[CommandType]int
}

// applyTx applies logs (decoded) in one transaction, rejecting the
// commands in skip, and fills resp. It returns what the entries changed
// (for the feed), or a *cmdError when a handler fails.
func (f *fsm) applyTx(logs []*raft.Log, decoded [][]decodedCmd, applied uint64, skip map[cmdPos]string, resp []any) (applyStats, []Change, error) {
	st := applyStats{cmdCounts: map[CommandType]int{}}
	var changes []Change
	err := f.db.Update(func(tx *bolt.Tx) error {
		changes = changes[:0]
		for i, l := range logs {
			r := &applyResponse{}
			resp[i] = r
			if l.Index <= applied {
				continue
			}
			st.entries++
			ch := Change{Index: l.Index}
			ch.memoTasks = assignsIn(decoded[i])
			for ci, dc := range decoded[i] {
				if dc.cmd == nil {
					continue // unknown but ignorable
				}
				st.cmdCounts[dc.typ]++
				if reason, ok := skip[cmdPos{i, ci}]; ok {
					r.rejected = append(r.rejected, Rejection{Cmd: ci, Reason: "cannot be applied: " + reason})
					continue
				}
				rej, err := registry[dc.typ].apply(tx, dc.cmd, &ch)
				if err != nil {
					return &cmdError{pos: cmdPos{i, ci}, index: l.Index, name: registry[dc.typ].name, err: err}
				}
				for _, rj := range rej {
					rj.Cmd = ci
					r.rejected = append(r.rejected, rj)
				}
				noteChange(dc, rej, &ch)
			}
			st.rejections += len(r.rejected)
			ch.memo, ch.nodes, ch.tasks, ch.cursors = nil, nil, nil, nil
			if !ch.empty() {
				changes = append(changes, ch)
			}
		}
		return putAppliedTx(tx, logPosition{logs[len(logs)-1].Index, logs[len(logs)-1].Term})
	})
	return st, changes, err
}

// assignsIn reports whether an entry's commands hold an assignment: its
// tasks' records are then worth keeping decoded (Change.task).
func assignsIn(cmds []decodedCmd) bool {
	for _, dc := range cmds {
		if dc.typ == TypeAssignExecution {
			return true
		}
	}
	return false
}

// noteChange adds what an applied command changed to ch, by its noteFunc.
// A command without batch items that was rejected changed nothing.
func noteChange(dc decodedCmd, rej []Rejection, ch *Change) {
	note, ok := notes[dc.typ]
	if !ok {
		return
	}
	var items map[int]bool
	if len(rej) > 0 {
		if dc.typ != TypeTransitionTasks {
			return
		}
		items = make(map[int]bool, len(rej))
		for _, rj := range rej {
			items[rj.Item] = true
		}
	}
	note(dc.cmd, items, ch)
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

// stateIndex returns the index of the last entry state.db holds, as a
// read made now sees it.
func (f *fsm) stateIndex() (uint64, error) {
	var idx uint64
	err := f.view(func(tx *bolt.Tx) error {
		idx = appliedTx(tx).Index
		return nil
	})
	return idx, err
}

// close syncs state.db, closes it and marks it clean.
func (f *fsm) close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.db == nil {
		return nil
	}
	err := f.db.Sync()
	if cerr := f.db.Close(); err == nil {
		err = cerr
	}
	f.db = nil
	if err == nil {
		err = f.markCleanFile()
	}
	return err
}

// markCleanFile writes the clean marker (state.db is closed and synced).
func (f *fsm) markCleanFile() error {
	m, err := os.OpenFile(f.cleanMarker(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = m.Sync()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return syncDir(filepath.Dir(f.path))
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
