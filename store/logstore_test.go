package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

func TestConfig_LogStoreIsValidated(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"", LogStoreWAL, LogStoreBolt} {
		cfg := DefaultConfig(t.TempDir())
		cfg.LogStore = kind
		if err := cfg.Validate(); err != nil {
			t.Errorf("LogStore %q: %v", kind, err)
		}
	}
	cfg := DefaultConfig(t.TempDir())
	cfg.LogStore = "boltdb"
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "LogStore") || !strings.Contains(err.Error(), `"boltdb"`) {
		t.Fatalf("bad LogStore: %v", err)
	}
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Open with a bad LogStore: %v", err)
	}
	if ents, _ := os.ReadDir(cfg.Dir); len(ents) != 0 {
		t.Errorf("a refused config wrote %d entries into the data dir", len(ents))
	}
}

// stableKeys reads the stable-store keys a migration must carry.
func stableKeys(tb testing.TB, dir, kind string) map[string]any {
	tb.Helper()
	l, err := openRaftLog(dir, kind, logOptions{noSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	out := map[string]any{}
	for _, k := range stableUint64Keys {
		v, err := getUint64(l, k)
		if err != nil {
			tb.Fatal(err)
		}
		out[string(k)] = v
	}
	for _, k := range stableBytesKeys {
		v, err := getStable(l, k)
		if err != nil {
			tb.Fatal(err)
		}
		out[string(k)] = string(v)
	}
	r, err := checkLog(l)
	if err != nil {
		tb.Fatal(err)
	}
	out["first"], out["last"] = r.First, r.Last
	return out
}

// TestOpen_MigratesTheLogBothWays: a data dir written with one backend
// opens with the other: every entry and stable key is carried (the state
// replays the same from the new log alone), the old log is kept aside,
// and the store goes on and survives a restart.
func TestOpen_MigratesTheLogBothWays(t *testing.T) {
	t.Parallel()
	for _, from := range LogStores {
		to := otherLogStore(from)
		t.Run(from+" to "+to, func(t *testing.T) {
			t.Parallel()
			// A compacted log (it starts after entry 1) with entries after
			// the newest snapshot.
			d := newDamagedDirOf(t, from, withTrailingLogs(2))
			keys := stableKeys(t, d.dir, from)
			if keys["first"].(uint64) <= 1 || keys["CurrentTerm"].(uint64) == 0 || keys["skiff_log_id"] == "" {
				t.Fatalf("test data dir not as meant: %v", keys)
			}
			// state.db goes: the state is rebuilt from snapshot + migrated log.
			remove(t, filepath.Join(d.dir, "state.db"))
			s, err := openDamagedOf(t, d.dir, to)
			if err != nil {
				t.Fatal(err)
			}
			if s.LogStore() != to {
				t.Errorf("LogStore() = %q, want %q", s.LogStore(), to)
			}
			if !reflect.DeepEqual(d.want, stateDump(t, s)) {
				t.Fatal("state differs after the migration")
			}
			fill(t, s, "m", 3)
			want := stateDump(t, s)
			s.Close()
			if _, err := os.Stat(filepath.Join(d.dir, logFileOf(from)+asideSuffix)); err != nil {
				t.Errorf("old log not kept aside: %v", err)
			}
			if exists(d.logPath()) {
				t.Errorf("old log %s still in place", d.logPath())
			}
			s = openTestStoreOf(t, d.dir, to)
			defer s.Close()
			if !reflect.DeepEqual(want, stateDump(t, s)) {
				t.Fatal("state differs at the restart after the migration")
			}
		})
	}
}

// TestOpen_MigrationInterruptedLeavesAUsableDir: the states a kill -9
// can leave a migration in (each step is a rename or a write under a
// temporary name): a partial copy, both logs complete (killed between the
// rename into place and the move aside). Each opens with either backend
// with the whole state. Two differing logs are refused, untouched.
func TestOpen_MigrationInterruptedLeavesAUsableDir(t *testing.T) {
	t.Parallel()
	states := []struct {
		name  string
		crash func(tb testing.TB, d damagedDir)
	}{
		{"partial copy", func(tb testing.TB, d damagedDir) {
			tmp := filepath.Join(d.dir, logFileOf(otherLogStore(d.kind))+tmpSuffix)
			if err := os.MkdirAll(filepath.Dir(tmp), 0o700); err != nil {
				tb.Fatal(err)
			}
			if d.kind == LogStoreWAL { // the copy is a raft.db
				if err := os.WriteFile(tmp, garbage(5000), 0o600); err != nil {
					tb.Fatal(err)
				}
				return
			}
			if err := os.MkdirAll(tmp, 0o700); err != nil {
				tb.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(tmp, "00000000000000000001-0000000000000000.wal"), garbage(300), 0o600); err != nil {
				tb.Fatal(err)
			}
		}},
		{"both complete", func(tb testing.TB, d damagedDir) {
			// What a migration writes before it moves the old log aside.
			src, err := openRaftLog(d.dir, d.kind, logOptions{noSync: true})
			if err != nil {
				tb.Fatal(err)
			}
			defer src.Close()
			if err := writeLogCopy(d.dir, src, otherLogStore(d.kind), logFileOf(otherLogStore(d.kind)), logOptions{}, nil); err != nil {
				tb.Fatal(err)
			}
		}},
	}
	for _, from := range LogStores {
		for _, st := range states {
			for _, open := range LogStores {
				t.Run(from+" "+st.name+" opened as "+open, func(t *testing.T) {
					t.Parallel()
					d := newDamagedDirOf(t, from)
					st.crash(t, d)
					s, err := openDamagedOf(t, d.dir, open)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					if !reflect.DeepEqual(d.want, stateDump(t, s)) {
						t.Fatal("state differs")
					}
					if got := presentLogs(d.dir); !reflect.DeepEqual(got, []string{open}) {
						t.Errorf("logs in the dir: %v, want only %s", got, open)
					}
					for _, k := range LogStores {
						if exists(filepath.Join(d.dir, logFileOf(k)+tmpSuffix)) {
							t.Errorf("%s left behind", logFileOf(k)+tmpSuffix)
						}
					}
				})
			}
		}
	}
	t.Run("two different logs", func(t *testing.T) {
		t.Parallel()
		d := newDamagedDirOf(t, LogStoreBolt)
		other := newDamagedDirOf(t, LogStoreWAL)
		s := openTestStoreOf(t, other.dir, LogStoreWAL)
		fill(t, s, "z", 2)
		s.Close()
		replaceLog(t, other, damagedDir{dir: d.dir, kind: LogStoreWAL})
		for _, kind := range LogStores {
			_, err := openDamagedOf(t, d.dir, kind)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "differ") || !strings.Contains(err.Error(), "raft.db") || !strings.Contains(err.Error(), "raft-wal") {
				t.Fatalf("open as %s: %v", kind, err)
			}
		}
		if got := presentLogs(d.dir); len(got) != 2 {
			t.Errorf("a refused open moved a log: %v", got)
		}
	})
}

// TestStore_LogSyncsAreCounted: the WAL's fsyncs are counted where they
// are made: at least one per committed entry with syncs on (one per
// appended batch: raft may batch entries proposed together, never
// here, where each Apply waits), none under NoSync; raft-boltdb's cannot
// be counted and says so.
func TestStore_LogSyncsAreCounted(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig(t.TempDir())
	cfg.LogStore = LogStoreWAL
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	before, counted := s.LogSyncs()
	if !counted {
		t.Fatal("WAL syncs not counted")
	}
	const n = 20
	fill(t, s, "s", n)
	after, _ := s.LogSyncs()
	s.Close()
	// One fsync per entry, a few more for the directory and segment
	// metadata; never two per entry.
	if got := after - before; got < n || got > n+n/2 {
		t.Errorf("%d entries made %d counted syncs, want %d..%d", n, got, n, n+n/2)
	}

	// NoSync: segments are not synced; wal-meta.db (bbolt's own syncs)
	// still commits on elections, never per entry.
	s = openTestStoreOf(t, t.TempDir(), LogStoreWAL)
	before, _ = s.LogSyncs()
	fill(t, s, "s", n)
	if after, _ := s.LogSyncs(); after != before {
		t.Errorf("NoSync: %d entries made %d syncs", n, after-before)
	}
	s.Close()

	s = openTestStoreOf(t, t.TempDir(), LogStoreBolt)
	defer s.Close()
	if n, counted := s.LogSyncs(); counted || n != 0 {
		t.Errorf("bolt: LogSyncs = %d, %v; want 0, false", n, counted)
	}
}

// TestWAL_RestartAfterSuffixTruncation: raft deletes a suffix of a
// follower's log when a new leader's entries conflict with it. raft-wal
// v0.4.0 then marks the tail segment sealed without an index block, and
// after a restart reading it failed ("sealed segment has no index
// block"), so the node could not start (seen in the chaos suite after a
// partition of the leader). Every entry must read back after the restart:
// those below the cut from the old segment, the new ones from the next.
func TestWAL_RestartAfterSuffixTruncation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	entries := func(from, to uint64, term uint64) []*raft.Log {
		var ls []*raft.Log
		for i := from; i <= to; i++ {
			ls = append(ls, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("t%d-%d", term, i))})
		}
		return ls
	}
	l, err := openRaftLog(dir, LogStoreWAL, logOptions{noSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StoreLogs(entries(1, 20, 1)); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteRange(15, 20); err != nil { // the conflicting suffix
		t.Fatal(err)
	}
	if err := l.StoreLogs(entries(15, 25, 2)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = openRaftLog(dir, LogStoreWAL, logOptions{noSync: true})
	if err != nil {
		t.Fatalf("reopen after a suffix truncation: %v", err)
	}
	defer l.Close()
	for i := uint64(1); i <= 25; i++ {
		var got raft.Log
		if err := l.GetLog(i, &got); err != nil {
			t.Fatalf("entry %d after the restart: %v", i, err)
		}
		term := uint64(1)
		if i >= 15 {
			term = 2
		}
		if want := fmt.Sprintf("t%d-%d", term, i); string(got.Data) != want || got.Term != term {
			t.Errorf("entry %d = term %d %q, want term %d %q", i, got.Term, got.Data, term, want)
		}
	}
	if last, _ := l.LastIndex(); last != 25 {
		t.Errorf("last index %d, want 25", last)
	}
}

// TestWAL_FrameReadsOfEverySize: raft-wal's entry reads are answered with
// at most walFrameWindow bytes from a read-ahead block (readAhead); entries below, at and above that
// window, and above raft-wal's own 64 KiB buffer, read back whole from
// the tail segment, from sealed segments, and after a restart (the tail
// recovered by a scan).
func TestWAL_FrameReadsOfEverySize(t *testing.T) {
	t.Parallel()
	const header = 8 // raft-wal's frame header
	sizes := []int{0, 1, 300, walFrameWindow - header - 1, walFrameWindow - header, walFrameWindow - header + 1,
		walFrameWindow, walFrameWindow + 1, walFrameBuffer - header, walFrameBuffer, walFrameBuffer + 1, 200_000, 5}
	data := func(i, n int) []byte {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i*31 + j*7)
		}
		return b
	}
	var logs []*raft.Log
	for i, n := range sizes {
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data(i, n)})
	}
	check := func(l *raftLog, when string) {
		t.Helper()
		for i, n := range sizes {
			var got raft.Log
			if err := l.GetLog(uint64(i+1), &got); err != nil {
				t.Fatalf("%s: entry %d (%d bytes): %v", when, i+1, n, err)
			}
			if !bytes.Equal(got.Data, data(i, n)) {
				t.Fatalf("%s: entry %d (%d bytes) read back as %d different bytes", when, i+1, n, len(got.Data))
			}
		}
	}
	dir := t.TempDir()
	// Small segments: most entries end up in sealed segments.
	l, err := openRaftLog(dir, LogStoreWAL, logOptions{noSync: true, segmentSize: 96 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range logs {
		if err := l.StoreLogs([]*raft.Log{e}); err != nil {
			t.Fatal(err)
		}
		// Read between writes: the tail's read-ahead must not keep the
		// zeros of its preallocated, not yet written part.
		for j := max(0, i-1); j <= i; j++ {
			var got raft.Log
			if err := l.GetLog(uint64(j+1), &got); err != nil || !bytes.Equal(got.Data, data(j, sizes[j])) {
				t.Fatalf("entry %d read back after writing entry %d: %d bytes, %v", j+1, i+1, len(got.Data), err)
			}
		}
	}
	check(l, "written")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = openRaftLog(dir, LogStoreWAL, logOptions{noSync: true, segmentSize: 96 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	check(l, "after a restart")
}
