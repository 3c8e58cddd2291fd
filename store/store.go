package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Store.
type Config struct {
	// Dir is the data directory: the raft log (raft-wal/ or raft.db),
	// state.db and snapshots/.
	Dir string
	// LogStore is the raft log's backend: LogStoreWAL ("wal",
	// hashicorp/raft-wal, one fsync per appended batch) or LogStoreBolt
	// ("bolt", hashicorp/raft-boltdb, one bbolt commit per batch); ""
	// means DefaultLogStore. A data dir holding the other backend's log
	// is migrated to this one when it opens (logstore.go).
	LogStore string
	// Logger receives the store's and raft's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the store's metrics; nil exports none.
	Registerer prometheus.Registerer
	// LockTimeout is how long Open waits while another process holds the
	// data directory; 0 fails at once with an error wrapping ErrLocked.
	LockTimeout time.Duration
	// SnapshotThreshold is raft's SnapshotThreshold (log entries between
	// snapshots); 0 means 4096.
	SnapshotThreshold uint64
	// NoSync skips fsyncs of the raft log. Tests and benchmarks only: a
	// crash may lose acknowledged writes. (state.db is never synced entry
	// by entry: see fsm. With the WAL, its small metadata file wal-meta.db
	// still syncs its rare commits.)
	NoSync bool
	// Raft: node id, transport and timing knobs (cluster.go).
	Raft RaftConfig
}

// DefaultConfig returns a durable configuration for dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, LogStore: DefaultLogStore, LockTimeout: 0, SnapshotThreshold: defaultSnapshotThreshold, Raft: LocalRaftConfig()}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: Dir: required", ErrInvalidConfig)
	case c.LockTimeout < 0:
		return fmt.Errorf("%w: LockTimeout: must not be negative", ErrInvalidConfig)
	case c.LogStore != "" && !validLogStore(c.LogStore):
		return fmt.Errorf("%w: LogStore: %q: want %q or %q", ErrInvalidConfig, c.LogStore, LogStoreWAL, LogStoreBolt)
	}
	return c.Raft.validate()
}

// Store is the replicated state of one node. All methods are safe for
// concurrent use.
type Store struct {
	cfg       Config
	logger    *slog.Logger
	metrics   *metrics
	fsm       *fsm
	lock      *dirLock
	log       *raftLog
	transport raft.Transport
	raft      *raft.Raft

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// ApplyResult is the outcome of Apply: the raft index of the entry and the
// commands (or batch items) the FSM rejected as stale or invalid. Commands
// not listed were applied.
type ApplyResult struct {
	Index    uint64
	Rejected []Rejection
}

// Open opens (creating if needed) the data directory and starts raft. The
// first open bootstraps a one-voter cluster. Open returns once this node is
// leader and its state machine has applied every committed entry. With
// cfg.Raft.Transport set, Open returns once raft runs (see RaftConfig).
func Open(ctx context.Context, cfg Config) (*Store, error) {
	return open(ctx, cfg)
}

func open(ctx context.Context, cfg Config, opts ...option) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var o openOptions
	for _, fn := range opts {
		fn(&o)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// s is local, never the result: the cleanups below use it after an
	// error return, which must not see a nil *Store.
	s := &Store{cfg: cfg, logger: logger, closed: make(chan struct{})}
	var cleanup []func()
	ok := false
	defer func() {
		if !ok {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
	var err error
	if s.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	cleanup = append(cleanup, s.metrics.unregister)

	// The directory lock first: it decides who owns the directory.
	if s.lock, err = lockDir(cfg.Dir, cfg.LockTimeout); err != nil {
		return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
	}
	cleanup = append(cleanup, func() { _ = s.lock.unlock() })
	if s.fsm, err = openFSM(filepath.Join(cfg.Dir, "state.db"), cfg.LockTimeout, logger, s.metrics); err != nil {
		return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
	}
	cleanup = append(cleanup, func() { _ = s.fsm.close() })

	if err := s.openLog(o); err != nil {
		return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
	}
	cleanup = append(cleanup, func() { _ = s.log.Close() })
	logRange, err := checkLog(s.log)
	if err != nil {
		return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
	}

	rc := raftConfig(cfg, cfg.Raft.serverID())
	if o.trailingLogs > 0 {
		rc.TrailingLogs = o.trailingLogs
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsRetained, rc.Logger)
	if err != nil {
		return nil, fmt.Errorf("store: snapshots: %w", err)
	}
	if err := s.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("store: data dir %s: snapshots: %w", cfg.Dir, err)
	}
	if err := s.checkStateMatchesLog(logRange, metas); err != nil {
		return nil, err
	}
	if err := checkLogCoverage(logRange, metas); err != nil {
		return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
	}
	if err := s.pairLog(); err != nil {
		return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
	}

	s.transport = cfg.Raft.Transport
	clustered := s.transport != nil
	if !clustered {
		_, s.transport = raft.NewInmemTransport(localAddr)
	}
	cleanup = append(cleanup, func() { closeTransport(s.transport) })

	logs := s.log.backend()
	if !clustered {
		if err := s.redoInterruptedBootstrap(snaps); err != nil {
			return nil, fmt.Errorf("store: data dir %s: %w", cfg.Dir, err)
		}
	}
	existing, err := raft.HasExistingState(logs, logs, snaps)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !existing && !clustered {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: s.transport.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, logs, logs, snaps, s.transport, boot); err != nil {
			return nil, fmt.Errorf("store: bootstrap: %w", err)
		}
	}
	// raft reads back each entry it applies on a follower, and each it
	// sends to a follower on the leader: recent entries come from memory.
	cached, err := newLogCache(logs, logCacheEntries, logCacheBytes)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if s.raft, err = raft.NewRaft(rc, s.fsm, cached, logs, snaps, s.transport); err != nil {
		return nil, fmt.Errorf("store: start raft: %w", err)
	}
	cleanup = append(cleanup, func() { _ = s.raft.Shutdown().Error() })
	if !clustered {
		if err := s.waitLeader(ctx); err != nil {
			return nil, err
		}
	}
	ok = true
	return s, nil
}

// redoInterruptedBootstrap undoes what a kill -9 inside raft's bootstrap
// of a one-node cluster leaves: raft writes the term first and the
// configuration entry second, and a term with an empty log and no
// snapshot is existing state to raft (it will not bootstrap again) that
// holds no configuration (the node would never lead). Nothing was ever
// written through such a log: its term is cleared, and the bootstrap runs
// again. A clustered node is left alone: an empty log with a term is
// also a member that has voted and not yet been sent an entry.
func (s *Store) redoInterruptedBootstrap(snaps raft.SnapshotStore) error {
	last, err := s.log.LastIndex()
	if err != nil {
		return fmt.Errorf("%s: %w", s.log.file, err)
	}
	term, err := getUint64(s.log, raftKeyCurrentTerm)
	if err != nil || last > 0 || term == 0 {
		return err
	}
	metas, err := snaps.List()
	if err != nil || len(metas) > 0 {
		return err
	}
	s.logger.Warn("store: the raft log holds a term and no entry: a bootstrap was interrupted; bootstrapping again", "log", s.log.file, "term", term)
	return s.log.SetUint64(raftKeyCurrentTerm, 0)
}

// openLog opens the data dir's raft log with the configured backend,
// migrating the other backend's log first if that is what the dir holds.
func (s *Store) openLog(o openOptions) error {
	kind := s.cfg.LogStore
	if kind == "" {
		kind = DefaultLogStore
	}
	lo := logOptions{noSync: s.cfg.NoSync, lockTimeout: s.cfg.LockTimeout, segmentSize: o.walSegmentSize, logger: newHCLogger(s.cfg.Logger)}
	if err := prepareLog(s.cfg.Dir, kind, lo, s.logger); err != nil {
		return err
	}
	var err error
	s.log, err = openRaftLog(s.cfg.Dir, kind, lo)
	return err
}

// catchUpFromSnapshot restores the latest raft snapshot into state.db when
// state.db is behind it (lost or replaced): raft skips its own restore on
// start (NoSnapshotRestoreOnStart) and the log before the snapshot may be
// compacted away. A snapshot that cannot be restored is moved to
// damaged/ (raft would otherwise count it as applied) and the previous
// retained one is tried.
func (s *Store) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	for {
		metas, err := snaps.List()
		if err != nil {
			return fmt.Errorf("store: data dir %s: snapshots: %w", s.cfg.Dir, err)
		}
		if len(metas) == 0 || metas[0].Index <= s.fsm.applied.Load() {
			return nil
		}
		m := metas[0]
		s.logger.Warn("store: state.db is behind the latest snapshot; restoring it",
			"applied", s.fsm.applied.Load(), "snapshot", m.ID, "index", m.Index)
		err = restoreSnapshot(s.fsm, snaps, m.ID)
		if err == nil {
			return nil
		}
		moved, qerr := quarantineSnapshot(s.cfg.Dir, m.ID)
		if qerr != nil {
			return fmt.Errorf("store: data dir %s: snapshots/%s: %w (and moving it aside: %v)", s.cfg.Dir, m.ID, err, qerr)
		}
		s.logger.Error("store: snapshot damaged; moved aside, trying the previous one",
			"snapshot", "snapshots/"+m.ID, "moved_to", moved, "err", err)
	}
}

func restoreSnapshot(f *fsm, snaps raft.SnapshotStore, id string) error {
	_, rc, err := snaps.Open(id)
	if err != nil {
		return fmt.Errorf("%w: open: %w", ErrDamaged, err)
	}
	if err := f.Restore(rc); err != nil {
		return fmt.Errorf("%w: %w", ErrDamaged, err)
	}
	return nil
}

// quarantineSnapshot moves snapshots/id to damaged/id (kept for a look,
// out of raft's sight) and returns the new path, relative to dir.
func quarantineSnapshot(dir, id string) (string, error) {
	rel := filepath.Join("damaged", "snapshot-"+id)
	if err := os.MkdirAll(filepath.Join(dir, "damaged"), 0o700); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(dir, "snapshots", id), filepath.Join(dir, rel)); err != nil {
		return "", err
	}
	return rel, syncDir(filepath.Join(dir, "snapshots"))
}

// checkLogCoverage makes sure raft finds every entry it will apply: it
// takes the newest snapshot as applied and reads the log from there on.
func checkLogCoverage(log logRange, snaps []*raft.SnapshotMeta) error {
	var from uint64 // raft's first entry to apply is from+1
	if len(snaps) > 0 {
		from = snaps[0].Index
	}
	if log.First == 0 || log.First <= from+1 {
		return nil
	}
	return fmt.Errorf("%s: %w: its log starts at entry %d, but the newest usable snapshot ends at entry %d "+
		"(snapshots/ lost or damaged; see damaged/): entries %d..%d are gone; "+
		"if state.db is intact, `skiff store reset-log` starts a new log from it",
		log.file, ErrDamaged, log.First, from, from+1, log.First-1)
}

// waitLeader polls until this node leads, then issues a barrier so every
// committed entry (including those a restart left unapplied) is applied.
func (s *Store) waitLeader(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderWaitCap)
		defer cancel()
	}
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for s.raft.State() != raft.Leader {
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: waiting for raft leadership: %w", ctx.Err())
		case <-tick.C:
		}
	}
	dl, _ := ctx.Deadline()
	if err := s.raft.Barrier(time.Until(dl)).Error(); err != nil {
		return fmt.Errorf("store: barrier: %w", err)
	}
	return s.fsm.haltErr()
}

func closeTransport(t raft.Transport) {
	if c, ok := t.(io.Closer); ok {
		_ = c.Close()
	}
}

// Close stops raft and closes the databases. It is safe to call twice.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		errs := []error{s.raft.Shutdown().Error()}
		closeTransport(s.transport)
		errs = append(errs, s.log.Close(), s.fsm.close(), s.lock.unlock())
		s.metrics.unregister()
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Apply proposes cmds as one raft log entry, waits until it is committed and
// applied on this node, and returns the rejected commands or items. If ctx
// ends first, Apply returns ctx's error and the entry may still commit.
func (s *Store) Apply(ctx context.Context, cmds ...Command) (ApplyResult, error) {
	select {
	case <-s.closed:
		return ApplyResult{}, ErrClosed
	default:
	}
	if len(cmds) == 0 {
		return ApplyResult{}, nil
	}
	if err := s.fsm.haltErr(); err != nil {
		// Proposed now, the entry would wait behind the one that halted
		// the FSM and apply after a repair, long after this call failed.
		return ApplyResult{}, fmt.Errorf("store: apply: %w", err)
	}
	data, decoded, err := encodeBatchDecoded(cmds)
	if err != nil {
		return ApplyResult{}, err
	}
	// The leader applies the very bytes proposed: its FSM takes the
	// commands as the check above decoded them, not decoding them again.
	s.fsm.proposed.put(data, decoded)
	defer s.fsm.proposed.drop(data)
	start := time.Now()
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return ApplyResult{}, ctx.Err()
		}
	}
	f := s.raft.Apply(data, timeout)
	// Raft never answers a future still queued in its (buffered) apply
	// channel when it shuts down, so the wait also ends when the store
	// closes: an engine's last commit must not outlive its store.
	done := make(chan struct{})
	go func() { _ = f.Error(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ApplyResult{}, fmt.Errorf("store: apply: %w (the entry may still commit)", ctx.Err())
	case <-s.closed:
		return ApplyResult{}, fmt.Errorf("store: apply: %w (the entry may still have committed)", ErrClosed)
	}
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
			return ApplyResult{}, fmt.Errorf("store: apply: %w: %w", ErrNotLeader, err)
		case errors.Is(err, raft.ErrRaftShutdown):
			return ApplyResult{}, fmt.Errorf("store: apply: %w", ErrClosed)
		}
		return ApplyResult{}, fmt.Errorf("store: apply: %w", err)
	}
	s.metrics.observeApply(start)
	res := ApplyResult{Index: f.Index()}
	resp, _ := f.Response().(*applyResponse)
	if resp == nil {
		return res, fmt.Errorf("store: apply: no response from the state machine for index %d", res.Index)
	}
	if resp.err != nil {
		return res, fmt.Errorf("store: apply index %d: %w", res.Index, resp.err)
	}
	res.Rejected = resp.rejected
	return res, nil
}

// LogStore is the backend of the open raft log (LogStoreWAL or
// LogStoreBolt).
func (s *Store) LogStore() string { return s.log.kind }

// LogSyncs returns the fsyncs the raft log has made since the store
// opened, and whether they are counted: with the WAL each fsync of a
// segment file or its directory is counted where it is made, and each
// commit of its metadata file as bbolt's two; with raft-boltdb bbolt
// calls fdatasync itself and nothing here can count them (counted is
// false, n is 0). Under NoSync no fsync is made or counted.
func (s *Store) LogSyncs() (n uint64, counted bool) {
	return s.log.syncs.Load(), s.log.syncsCounted()
}

// AppliedIndex is the raft index of the last entry applied to state.db.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// StateIndex returns the index of the last raft entry the state holds, as
// a read made now sees it (AppliedIndex can trail a commit by a moment).
// A subscriber that has just read the store (a rescan) knows that the
// changes of entries at or below it are no newer than what it read.
func (s *Store) StateIndex() (uint64, error) {
	return s.fsm.stateIndex()
}

// Snapshot forces a raft snapshot now (it also compacts the raft log).
func (s *Store) Snapshot() error {
	return s.raft.Snapshot().Error()
}
