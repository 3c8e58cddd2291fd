package store

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

const (
	defaultSnapshotThreshold = 4096
	trailingLogs             = 1024
	snapshotsRetained        = 2
	// restoreLockTimeout bounds the reopen of state.db after a restore.
	restoreLockTimeout = 2 * time.Second
	// leaderWaitCap bounds Open's wait for leadership when ctx has no deadline.
	leaderWaitCap = 30 * time.Second
	localServerID = raft.ServerID("skiff-1")
	localAddr     = raft.ServerAddress("skiff-local")
)

// openOptions are test-only knobs kept out of Config.
type openOptions struct {
	// trailingLogs overrides raft's TrailingLogs (tests compact the log
	// without writing a thousand entries).
	trailingLogs uint64
	// walSegmentSize overrides raft-wal's segment size (tests rotate
	// segments without writing 64 MiB).
	walSegmentSize int
}

type option func(*openOptions)

// logCacheEntries is how many of the latest raft entries are kept in
// memory for raft's reads (logCache; at most logCacheBytes of them).
const logCacheEntries = 512

// withWALSegmentSize makes raft-wal segments of n bytes.
func withWALSegmentSize(n int) option {
	return func(o *openOptions) { o.walSegmentSize = n }
}

// withTrailingLogs keeps only n entries before a snapshot in the log.
func withTrailingLogs(n uint64) option {
	return func(o *openOptions) { o.trailingLogs = n }
}

// raftConfig makes raft's config from cfg (timings: cfg.Raft).
func raftConfig(cfg Config, id raft.ServerID) *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = id
	rc.HeartbeatTimeout = cfg.Raft.HeartbeatTimeout
	rc.ElectionTimeout = cfg.Raft.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.Raft.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.Raft.CommitTimeout
	rc.MaxAppendEntries = 128
	rc.BatchApplyCh = true
	rc.SnapshotInterval = 30 * time.Second
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	if rc.SnapshotThreshold == 0 {
		rc.SnapshotThreshold = defaultSnapshotThreshold
	}
	rc.TrailingLogs = trailingLogs
	// state.db persists across restarts and records its applied index, so
	// raft need not restore a snapshot on start (see Open for the case
	// where state.db is behind the latest snapshot).
	rc.NoSnapshotRestoreOnStart = true
	rc.Logger = newHCLogger(cfg.Logger)
	return rc
}

// newHCLogger gives raft an hclog that forwards to slog: only errors (raft
// warns on every single-node election, which would be noise on a
// terminal), or everything when the slog logger has Debug enabled.
func newHCLogger(l *slog.Logger) hclog.Logger {
	if l == nil {
		return hclog.NewNullLogger()
	}
	level := hclog.Error
	if l.Enabled(context.Background(), slog.LevelDebug) {
		level = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            "raft",
		Level:           level,
		Output:          slogWriter{l},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

// slogWriter turns hclog's text lines ("[WARN]  raft: msg: k=v") into slog
// records at the matching level.
type slogWriter struct{ l *slog.Logger }

var hclogLevels = []struct {
	tag   []byte
	level slog.Level
}{
	{[]byte("[ERROR]"), slog.LevelError},
	{[]byte("[WARN]"), slog.LevelWarn},
	{[]byte("[INFO]"), slog.LevelInfo},
	{[]byte("[DEBUG]"), slog.LevelDebug},
	{[]byte("[TRACE]"), slog.LevelDebug - 4},
}

func (w slogWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, h := range hclogLevels {
		if i := bytes.Index(line, h.tag); i >= 0 {
			level = h.level
			line = bytes.TrimSpace(line[i+len(h.tag):])
			break
		}
	}
	w.l.Log(context.Background(), level, string(line), "component", "raft")
	return len(p), nil
}

var _ io.Writer = slogWriter{}
