package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	bolt "go.etcd.io/bbolt"
)

// damagedDir is a closed data dir with two snapshots and entries after the
// newest, and the state it holds.
type damagedDir struct {
	dir   string
	kind  string // its log store
	want  map[string]map[string]string
	snaps []string // snapshot directories, newest first
}

// logPath is the path of the dir's raft log (raft.db or raft-wal).
func (d damagedDir) logPath() string { return filepath.Join(d.dir, logFileOf(d.kind)) }

func newDamagedDir(tb testing.TB, opts ...option) damagedDir {
	tb.Helper()
	return newDamagedDirOf(tb, DefaultLogStore, opts...)
}

// testSegmentSize makes the WAL of test dirs rotate segments every few
// entries, so that sealed segments and a tail are there to damage.
const testSegmentSize = 2048

func newDamagedDirOf(tb testing.TB, kind string, opts ...option) damagedDir {
	tb.Helper()
	dir := tb.TempDir()
	cfg := DefaultConfig(dir)
	cfg.NoSync = true
	cfg.LogStore = kind
	opts = append([]option{withWALSegmentSize(testSegmentSize)}, opts...)
	s, err := open(context.Background(), cfg, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	fill(tb, s, "a", 4)
	if err := s.Snapshot(); err != nil {
		tb.Fatal(err)
	}
	fill(tb, s, "b", 4)
	if err := s.Snapshot(); err != nil {
		tb.Fatal(err)
	}
	fill(tb, s, "c", 3)
	want := stateDump(tb, s)
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	return damagedDir{dir: dir, kind: kind, want: want, snaps: snapshotDirs(tb, dir)}
}

// snapshotDirs lists dir's snapshot directories, newest first.
func snapshotDirs(tb testing.TB, dir string) []string {
	tb.Helper()
	snaps, err := raft.NewFileSnapshotStore(dir, snapshotsRetained, io.Discard)
	if err != nil {
		tb.Fatal(err)
	}
	metas, err := snaps.List()
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, m := range metas {
		out = append(out, filepath.Join(dir, "snapshots", m.ID))
	}
	return out
}

func garbage(n int) []byte { return bytes.Repeat([]byte("\xA5garbage\x00"), n/9+1)[:n] }

func overwrite(tb testing.TB, path string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, garbage(int(fi.Size())), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// truncateHalf cuts the bbolt file at path to half the size its pages use
// (bbolt preallocates: the file's tail may be unused).
func truncateHalf(tb testing.TB, path string) {
	tb.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		tb.Fatal(err)
	}
	var used int64
	_ = db.View(func(tx *bolt.Tx) error { used = tx.Size(); return nil })
	db.Close()
	if err := os.Truncate(path, used/2); err != nil {
		tb.Fatal(err)
	}
}

func remove(tb testing.TB, path string) {
	tb.Helper()
	if err := os.RemoveAll(path); err != nil {
		tb.Fatal(err)
	}
}

// openDamaged opens dir and returns the store or the error; a panic fails
// the test.
func openDamaged(tb testing.TB, dir string) (*Store, error) {
	tb.Helper()
	return openDamagedOf(tb, dir, DefaultLogStore)
}

func openDamagedOf(tb testing.TB, dir, kind string) (*Store, error) {
	tb.Helper()
	cfg := DefaultConfig(dir)
	cfg.NoSync = true
	cfg.LogStore = kind
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var s *Store
	var err error
	func() {
		defer func() {
			if p := recover(); p != nil {
				tb.Fatalf("Open panicked: %v", p)
			}
		}()
		s, err = Open(ctx, cfg)
	}()
	return s, err
}

// TestOpen_ErrorsAfterTheLockAreReturned: errors after the data-dir lock
// is taken come back as errors (the cleanups once panicked on a nil
// store), and the directory is left unlocked.
func TestOpen_ErrorsAfterTheLockAreReturned(t *testing.T) {
	t.Parallel()
	t.Run("cancelled context", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		cfg := DefaultConfig(dir)
		var err error
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Open panicked: %v", p)
				}
			}()
			_, err = Open(ctx, cfg)
		}()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Open with a cancelled context: %v", err)
		}
		openTestStore(t, dir).Close() // not left locked
	})
	t.Run("schema too new", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		openTestStore(t, dir).Close()
		db, err := bolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchemaVersion, u64(99)) })
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		_, err = openDamaged(t, dir)
		if err == nil || !strings.Contains(err.Error(), "schema version 99") || !strings.Contains(err.Error(), "state.db") {
			t.Fatalf("Open of a newer schema: %v", err)
		}
	})
}

// TestOpen_DamagedDataDirIsAnErrorNamingTheFile: each kind of damage gives
// one line naming the damaged file, and never a panic.
func TestOpen_DamagedDataDirIsAnErrorNamingTheFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		kind   string
		damage func(tb testing.TB, d damagedDir)
		file   string
	}{
		{"raft.db truncated", LogStoreBolt, func(tb testing.TB, d damagedDir) { truncateHalf(tb, d.logPath()) }, "raft.db"},
		{"raft.db garbage", LogStoreBolt, func(tb testing.TB, d damagedDir) { overwrite(tb, d.logPath()) }, "raft.db"},
		{"raft.db emptied", LogStoreBolt, func(tb testing.TB, d damagedDir) {
			if err := os.Truncate(d.logPath(), 0); err != nil {
				tb.Fatal(err)
			}
		}, "raft.db"},
		{"raft.db deleted", LogStoreBolt, func(tb testing.TB, d damagedDir) { remove(tb, d.logPath()) }, "raft.db"},
		{"wal-meta.db truncated", LogStoreWAL, func(tb testing.TB, d damagedDir) { truncateHalf(tb, filepath.Join(d.logPath(), walMetaFile)) }, "raft-wal"},
		{"wal-meta.db garbage", LogStoreWAL, func(tb testing.TB, d damagedDir) { overwrite(tb, filepath.Join(d.logPath(), walMetaFile)) }, "raft-wal"},
		{"wal-meta.db deleted", LogStoreWAL, func(tb testing.TB, d damagedDir) { remove(tb, filepath.Join(d.logPath(), walMetaFile)) }, "raft-wal"},
		{"wal first segment garbage", LogStoreWAL, func(tb testing.TB, d damagedDir) { overwrite(tb, walSegments(tb, d)[0]) }, "raft-wal"},
		{"wal first segment truncated", LogStoreWAL, func(tb testing.TB, d damagedDir) { truncateFile(tb, walSegments(tb, d)[0], 0.5) }, "raft-wal"},
		{"wal first segment deleted", LogStoreWAL, func(tb testing.TB, d damagedDir) { remove(tb, walSegments(tb, d)[0]) }, "raft-wal"},
		{"wal tail segment garbage", LogStoreWAL, func(tb testing.TB, d damagedDir) { overwrite(tb, lastOf(walSegments(tb, d))) }, "raft-wal"},
		{"wal tail segment emptied", LogStoreWAL, func(tb testing.TB, d damagedDir) { truncateFile(tb, lastOf(walSegments(tb, d)), 0) }, "raft-wal"},
		{"wal segments deleted", LogStoreWAL, func(tb testing.TB, d damagedDir) {
			for _, seg := range walSegments(tb, d) {
				remove(tb, seg)
			}
		}, "raft-wal"},
		{"raft-wal deleted", LogStoreWAL, func(tb testing.TB, d damagedDir) { remove(tb, d.logPath()) }, "raft-wal"},
		{"state.db garbage", DefaultLogStore, func(tb testing.TB, d damagedDir) { overwrite(tb, filepath.Join(d.dir, "state.db")) }, "state.db"},
		{"state.db truncated", DefaultLogStore, func(tb testing.TB, d damagedDir) { truncateHalf(tb, filepath.Join(d.dir, "state.db")) }, "state.db"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := newDamagedDirOf(t, c.kind)
			c.damage(t, d)
			s, err := openDamagedOf(t, d.dir, c.kind)
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged data dir succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.file) || strings.Contains(msg, "\n") {
				t.Fatalf("want one line naming %s, got %q", c.file, msg)
			}
		})
	}
}

// walSegments lists the segment files of d's WAL, oldest first.
func walSegments(tb testing.TB, d damagedDir) []string {
	tb.Helper()
	segs, err := filepath.Glob(filepath.Join(d.logPath(), "*.wal"))
	if err != nil || len(segs) == 0 {
		tb.Fatalf("no WAL segments in %s: %v", d.logPath(), err)
	}
	return segs
}

func lastOf(s []string) string { return s[len(s)-1] }

// truncateFile cuts path to frac of its size.
func truncateFile(tb testing.TB, path string, frac float64) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(path, int64(float64(fi.Size())*frac)); err != nil {
		tb.Fatal(err)
	}
}

// replaceLog puts a copy of the raft log of from (a file or a directory)
// in place of to's.
func replaceLog(tb testing.TB, from, to damagedDir) {
	tb.Helper()
	remove(tb, to.logPath())
	fi, err := os.Stat(from.logPath())
	if err != nil {
		tb.Fatal(err)
	}
	if fi.IsDir() {
		err = os.CopyFS(to.logPath(), os.DirFS(from.logPath()))
	} else {
		var raw []byte
		if raw, err = os.ReadFile(from.logPath()); err == nil {
			err = os.WriteFile(to.logPath(), raw, 0o600)
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// TestOpen_FallsBackToThePreviousSnapshot: state.db must be rebuilt and
// the newest snapshot is damaged or gone: Open restores the previous one
// and replays the log after it (moving a damaged snapshot to damaged/, or
// raft would count it as applied and skip the entries it covers).
func TestOpen_FallsBackToThePreviousSnapshot(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		damage      func(tb testing.TB, snap string)
		quarantined bool
	}{
		{"state.bin garbage", func(tb testing.TB, snap string) { overwrite(tb, filepath.Join(snap, "state.bin")) }, true},
		{"state.bin missing", func(tb testing.TB, snap string) { remove(tb, filepath.Join(snap, "state.bin")) }, true},
		{"meta.json garbage", func(tb testing.TB, snap string) { overwrite(tb, filepath.Join(snap, "meta.json")) }, false},
		{"snapshot dir missing", func(tb testing.TB, snap string) { remove(tb, snap) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := newDamagedDir(t)
			c.damage(t, d.snaps[0])
			remove(t, filepath.Join(d.dir, "state.db"))
			s, err := openDamaged(t, d.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !reflect.DeepEqual(d.want, stateDump(t, s)) {
				t.Fatal("state differs after falling back to the previous snapshot")
			}
			_, err = os.Stat(filepath.Join(d.dir, "damaged", "snapshot-"+filepath.Base(d.snaps[0])))
			if c.quarantined != (err == nil) {
				t.Errorf("quarantined: %v, want %v", err == nil, c.quarantined)
			}
		})
	}
}

// TestOpen_NoUsableSnapshotForACompactedLog: the log was compacted past
// every snapshot that still reads; raft would panic ("log not found")
// replaying it. Open says which entries are gone instead.
func TestOpen_NoUsableSnapshotForACompactedLog(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 2} {
		for _, kind := range LogStores {
			t.Run(fmt.Sprintf("%s %d damaged", kind, n), func(t *testing.T) {
				t.Parallel()
				d := newDamagedDirOf(t, kind, withTrailingLogs(1))
				for _, snap := range d.snaps[:n] {
					overwrite(t, filepath.Join(snap, "state.bin"))
				}
				remove(t, filepath.Join(d.dir, "state.db"))
				s, err := openDamagedOf(t, d.dir, kind)
				if err == nil {
					s.Close()
					t.Fatal("Open succeeded without the entries the snapshots held")
				}
				if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), logFileOf(kind)) || !strings.Contains(err.Error(), "snapshot") {
					t.Fatalf("err = %v", err)
				}
			})
		}
	}
}

// TestOpen_StateAheadOfTheLogIsRefused: state.db from a log that is not
// raft.db (deleted, emptied, replaced by another data dir's) once made
// Apply acknowledge new commands and skip them. Open refuses it and says
// how to recover.
func TestOpen_StateAheadOfTheLogIsRefused(t *testing.T) {
	t.Parallel()
	for _, kind := range LogStores {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			d := newDamagedDirOf(t, kind)
			other := newDamagedDirOf(t, kind)
			// The other dir's log has more entries than ours, other terms.
			s := openTestStoreOf(t, other.dir, kind)
			fill(t, s, "z", 20)
			s.Close()
			replaceLog(t, other, d)
			s, err := openDamagedOf(t, d.dir, kind)
			if err == nil {
				s.Close()
				t.Fatal("Open of a state.db with another data dir's raft log succeeded")
			}
			if !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "term") || !strings.Contains(err.Error(), "to recover") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
