package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// damagedDir is a closed data dir with two snapshots and entries after the
// newest, and the state it holds.
type damagedDir struct {
	dir   string
	want  map[string]map[string]string
	snaps []string // snapshot directories, newest first
}

func newDamagedDir(tb testing.TB) damagedDir {
	tb.Helper()
	dir := tb.TempDir()
	s := openTestStore(tb, dir)
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
	return damagedDir{dir: dir, want: want, snaps: snapshotDirs(tb, dir)}
}

// snapshotDirs lists dir's snapshot directories, newest first.
func snapshotDirs(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "snapshots"))
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, "snapshots", e.Name()))
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
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

func truncateHalf(tb testing.TB, path string) {
	tb.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
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
	cfg := DefaultConfig(dir)
	cfg.NoSync = true
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
