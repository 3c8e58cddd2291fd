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
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Config configures a Store.
type Config struct {
	// Dir is the data directory: raft.db, state.db and snapshots/.
	Dir string
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
	// by entry: see fsm.)
	NoSync bool
	// Raft: node id, transport and timing knobs (cluster.go).
	Raft RaftConfig
}

// DefaultConfig returns a durable configuration for dir.
func DefaultConfig(dir string) Config {
	return Config{Dir: dir, LockTimeout: 0, SnapshotThreshold: defaultSnapshotThreshold, Raft: LocalRaftConfig()}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: Dir: required", ErrInvalidConfig)
	case c.LockTimeout < 0:
		return fmt.Errorf("%w: LockTimeout: must not be negative", ErrInvalidConfig)
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
	logStore  *raftboltdb.BoltStore
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

func open(ctx context.Context, cfg Config, opts ...option) (s *Store, err error) {
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
	s = &Store{cfg: cfg, logger: logger, closed: make(chan struct{})}
	var cleanup []func()
	defer func() {
		if err != nil {
			for i := len(cleanup) - 1; i >= 0; i-- {
				cleanup[i]()
			}
		}
	}()
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

	lockTimeout := max(cfg.LockTimeout, time.Nanosecond)
	s.logStore, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.Dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: lockTimeout, NoFreelistSync: true, FreelistType: bolt.FreelistMapType},
		NoSync:      cfg.NoSync,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		err = ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("store: data dir %s: raft.db: %w", cfg.Dir, err)
	}
	cleanup = append(cleanup, func() { _ = s.logStore.Close() })

	rc := raftConfig(cfg, cfg.Raft.serverID())
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, snapshotsRetained, rc.Logger)
	if err != nil {
		return nil, fmt.Errorf("store: snapshots: %w", err)
	}
	if err := s.catchUpFromSnapshot(snaps); err != nil {
		return nil, err
	}

	s.transport = cfg.Raft.Transport
	if o.transport != nil {
		s.transport, rc.LocalID = o.transport, o.serverID
	}
	clustered := s.transport != nil
	if !clustered {
		_, s.transport = raft.NewInmemTransport(localAddr)
	}
	cleanup = append(cleanup, func() { closeTransport(s.transport) })

	existing, err := raft.HasExistingState(s.logStore, s.logStore, snaps)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !existing && !clustered {
		boot := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: rc.LocalID, Address: s.transport.LocalAddr()}}}
		if err := raft.BootstrapCluster(rc, s.logStore, s.logStore, snaps, s.transport, boot); err != nil {
			return nil, fmt.Errorf("store: bootstrap: %w", err)
		}
	}
	if s.raft, err = raft.NewRaft(rc, s.fsm, s.logStore, s.logStore, snaps, s.transport); err != nil {
		return nil, fmt.Errorf("store: start raft: %w", err)
	}
	cleanup = append(cleanup, func() { _ = s.raft.Shutdown().Error() })
	if clustered {
		return s, nil
	}

	if err := s.waitLeader(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// catchUpFromSnapshot restores the latest raft snapshot into state.db when
// state.db is behind it (lost or replaced): raft skips its own restore on
// start (NoSnapshotRestoreOnStart) and the log before the snapshot may be
// compacted away.
func (s *Store) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	metas, err := snaps.List()
	if err != nil || len(metas) == 0 {
		return err
	}
	if metas[0].Index <= s.fsm.applied.Load() {
		return nil
	}
	_, rc, err := snaps.Open(metas[0].ID)
	if err != nil {
		return fmt.Errorf("store: open snapshot %s: %w", metas[0].ID, err)
	}
	s.logger.Warn("store: state.db is behind the latest snapshot; restoring it",
		"applied", s.fsm.applied.Load(), "snapshot", metas[0].Index)
	if err := s.fsm.Restore(rc); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
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
		errs = append(errs, s.logStore.Close(), s.fsm.close(), s.lock.unlock())
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
	data, err := encodeBatch(cmds)
	if err != nil {
		return ApplyResult{}, err
	}
	start := time.Now()
	var timeout time.Duration
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return ApplyResult{}, ctx.Err()
		}
	}
	f := s.raft.Apply(data, timeout)
	if ctx.Done() != nil {
		done := make(chan struct{})
		go func() { _ = f.Error(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			return ApplyResult{}, fmt.Errorf("store: apply: %w (the entry may still commit)", ctx.Err())
		}
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

// AppliedIndex is the raft index of the last entry applied to state.db.
func (s *Store) AppliedIndex() uint64 { return s.fsm.applied.Load() }

// Snapshot forces a raft snapshot now (it also compacts the raft log).
func (s *Store) Snapshot() error {
	return s.raft.Snapshot().Error()
}
