package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The crash child: the test binary re-executed with these variables set
// opens a durable store in the dir and appends runs until it is killed,
// printing each run id once Apply has acknowledged it.
const (
	crashDirEnv    = "SKIFF_STORE_CRASH_DIR"
	crashKindEnv   = "SKIFF_STORE_CRASH_KIND"
	crashPrefixEnv = "SKIFF_STORE_CRASH_PREFIX"
)

// TestStore_CrashChild is the child's body; it does nothing in a normal
// test run.
func TestStore_CrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by the kill -9 tests only")
	}
	cfg := DefaultConfig(dir)
	cfg.LogStore = os.Getenv(crashKindEnv)
	cfg.LockTimeout = 10 * time.Second
	s, err := Open(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: open:", err)
		os.Exit(3)
	}
	fmt.Println("open")
	prefix := os.Getenv(crashPrefixEnv)
	for i := 0; ; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		if _, err := s.Apply(context.Background(), newRun(id, 2)); err != nil {
			fmt.Fprintln(os.Stderr, "crash child: apply:", err)
			os.Exit(4)
		}
		fmt.Println(id) // acknowledged
	}
}

// crashRound starts a child appending to dir with kind, kills it (SIGKILL)
// after a random time, and returns the run ids it acknowledged.
func crashRound(t *testing.T, dir, kind, prefix string, rng *rand.Rand) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStore_CrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashKindEnv+"="+kind, crashPrefixEnv+"="+prefix)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var acked []string
	opened := make(chan struct{})
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(out) // only whole lines: a cut line was not acknowledged
		for sc.Scan() {
			line := sc.Text()
			if line == "open" {
				close(opened)
				continue
			}
			if strings.HasPrefix(line, prefix+"-") {
				mu.Lock()
				acked = append(acked, line)
				mu.Unlock()
			}
		}
	}()
	// Half the kills land anywhere from the start (during open, a
	// migration, the first appends), half once appends run.
	delay := time.Duration(rng.IntN(300)) * time.Millisecond
	if rng.IntN(2) == 0 {
		select {
		case <-opened:
		case <-time.After(30 * time.Second):
			t.Fatalf("crash child did not open: %s", stderr.String())
		}
		delay = time.Duration(rng.IntN(300)) * time.Millisecond
	}
	time.Sleep(delay)
	_ = cmd.Process.Kill()
	<-read
	werr := cmd.Wait()
	if st := cmd.ProcessState; st != nil && st.Exited() && st.ExitCode() != 0 {
		t.Fatalf("crash child failed before the kill (%v): %s", werr, stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	return acked
}

// TestStore_KillNineLoop: a child appends through a durable store and is
// killed at random points (while opening, migrating, appending), again and
// again in one data dir; after each kill the dir opens and every write
// the child had acknowledged is there. One loop per backend, and one that
// switches backend every round, so that kills also land in migrations.
func TestStore_KillNineLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 loop: not in -short")
	}
	t.Parallel()
	loops := map[string]func(round int) string{
		"wal":       func(int) string { return LogStoreWAL },
		"bolt":      func(int) string { return LogStoreBolt },
		"switching": func(round int) string { return LogStores[round%2] },
	}
	for name, kindOf := range loops {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
			var all []string
			for round := range 8 {
				kind := kindOf(round)
				acked := crashRound(t, dir, kind, fmt.Sprintf("r%d", round), rng)
				all = append(all, acked...)
				cfg := DefaultConfig(dir)
				cfg.LogStore = kind
				cfg.LockTimeout = 10 * time.Second
				s, err := openCrashed(t, cfg)
				if err != nil {
					t.Fatalf("round %d (%s, %d acknowledged): open after kill -9: %v", round, kind, len(acked), err)
				}
				for _, id := range all {
					if _, err := s.GetRun(id); err != nil {
						s.Close()
						t.Fatalf("round %d (%s): acknowledged run %s lost: %v", round, kind, id, err)
					}
				}
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("%d acknowledged writes over 8 kills, none lost", len(all))
		})
	}
}

func openCrashed(tb testing.TB, cfg Config) (s *Store, err error) {
	tb.Helper()
	defer func() {
		if p := recover(); p != nil {
			tb.Fatalf("Open panicked: %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Open(ctx, cfg)
}

// TestStore_WALTornTail: the last record appended to the WAL is torn at a
// sample of byte offsets (the file cut there, or the bytes from there on
// zeroed, as a crash mid-write leaves a preallocated segment): the dir
// opens, every earlier (acknowledged) record is there, and the torn one is
// either whole or gone.
func TestStore_WALTornTail(t *testing.T) {
	t.Parallel()
	const n = 12
	base := t.TempDir()
	bcfg := DefaultConfig(base)
	bcfg.NoSync, bcfg.LogStore = true, LogStoreWAL
	s, err := open(context.Background(), bcfg, withWALSegmentSize(256<<10)) // small files to copy
	if err != nil {
		t.Fatal(err)
	}
	for i := range n - 1 {
		if _, err := s.Apply(context.Background(), newRun(fmt.Sprintf("t-%d", i), 2)); err != nil {
			t.Fatal(err)
		}
	}
	segs := func() string {
		m, err := filepath.Glob(filepath.Join(base, walLogDir, "*.wal"))
		if err != nil || len(m) == 0 {
			t.Fatalf("no segment: %v", err)
		}
		return m[len(m)-1]
	}
	tail := segs()
	before, err := os.ReadFile(tail)
	if err != nil {
		t.Fatal(err)
	}
	last := fmt.Sprintf("t-%d", n-1)
	if _, err := s.Apply(context.Background(), newRun(last, 2)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if segs() != tail {
		t.Fatal("the last record went to a new segment; make the test's segment bigger")
	}
	after, err := os.ReadFile(tail)
	if err != nil {
		t.Fatal(err)
	}
	// The last record's bytes: from the first byte that changed to the
	// end of what was written (the rest of the file is preallocated zeros).
	start := 0
	for start < len(before) && start < len(after) && before[start] == after[start] {
		start++
	}
	end := len(bytes.TrimRight(after, "\x00"))
	if start >= end {
		t.Fatalf("cannot find the last record: start %d end %d", start, end)
	}
	// The closed store appended nothing after our last record but the
	// leader's no-op of a reopen is not there: state.db is dropped and
	// rebuilt from the log, so a torn record is just not applied.
	var offsets []int
	for off := start; off <= end; off += max(1, (end-start)/24) {
		offsets = append(offsets, off)
	}
	offsets = append(offsets, start+1, end-1, end)
	for _, off := range offsets {
		for _, mode := range []string{"cut", "zeroed"} {
			t.Run(fmt.Sprintf("%s at %d of %d..%d", mode, off, start, end), func(t *testing.T) {
				dir := t.TempDir()
				if err := os.CopyFS(dir, os.DirFS(base)); err != nil {
					t.Fatal(err)
				}
				remove(t, filepath.Join(dir, "state.db"))
				remove(t, filepath.Join(dir, "state.db.clean"))
				seg := filepath.Join(dir, walLogDir, filepath.Base(tail))
				torn := append([]byte(nil), after...)
				if mode == "cut" {
					torn = torn[:off]
				} else {
					clear(torn[off:])
				}
				if err := os.WriteFile(seg, torn, 0o600); err != nil {
					t.Fatal(err)
				}
				cfg := DefaultConfig(dir)
				cfg.NoSync, cfg.LogStore = true, LogStoreWAL
				s, err := openCrashed(t, cfg)
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				defer s.Close()
				for i := range n - 1 {
					if _, err := s.GetRun(fmt.Sprintf("t-%d", i)); err != nil {
						t.Fatalf("acknowledged run t-%d lost: %v", i, err)
					}
				}
				_, err = s.GetRun(last)
				if off == end && err != nil {
					t.Fatalf("the whole last record is there but its run is not: %v", err)
				}
				// Whole or gone, and the store takes new writes.
				fill(t, s, "after", 1)
			})
		}
	}
}

// TestStore_StateOfAKilledProcessIsKept: state.db is written without
// fsyncs, and kept after a kill -9 when the machine did not restart since
// and it is the same file (state.db.boot holds boot id, device and
// inode): the reopened store uses that file, not one rebuilt by
// replaying the log. A copy of the data dir (another inode), and the same
// dir marked as opened on another boot, rebuild it, to the same state.
func TestStore_StateOfAKilledProcessIsKept(t *testing.T) {
	if bootID() == "" {
		t.Skip("no boot id on this machine: state.db is always rebuilt")
	}
	t.Parallel()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	killed := func() (string, []string) {
		dir := t.TempDir()
		var acked []string
		for len(acked) < 20 {
			acked = append(acked, crashRound(t, dir, LogStoreWAL, fmt.Sprintf("r%d", len(acked)), rng)...)
		}
		return dir, acked
	}
	dir, acked := killed()
	copied := t.TempDir()
	if err := os.CopyFS(copied, os.DirFS(dir)); err != nil { // the marker too, as it was
		t.Fatal(err)
	}
	rebooted, _ := killed()
	marker := filepath.Join(rebooted, "state.db.boot")
	stamp, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	_, devIno, _ := strings.Cut(string(stamp), " ")
	if err := os.WriteFile(marker, []byte("another-boot "+devIno), 0o600); err != nil {
		t.Fatal(err)
	}
	// A bucket of the test's own in each state.db: kept, it is still there
	// after the open; rebuilt, it is gone.
	const sentinel = "test-sentinel"
	mark := func(d string) {
		db, err := bolt.Open(filepath.Join(d, "state.db"), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte(sentinel)); return err }); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	open := func(d string) (*Store, bool) {
		mark(d)
		cfg := DefaultConfig(d)
		cfg.LogStore = LogStoreWAL
		s, err := openCrashed(t, cfg)
		if err != nil {
			t.Fatalf("open after kill -9: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		var there bool
		_ = s.fsm.view(func(tx *bolt.Tx) error { there = tx.Bucket([]byte(sentinel)) != nil; return nil })
		return s, there
	}
	kept, there := open(dir)
	if !there {
		t.Error("state.db of a killed process on this boot was rebuilt, not kept")
	}
	rebuilt, there := open(copied)
	if there {
		t.Error("a copy of a killed process's data dir kept its state.db")
	}
	if _, there := open(rebooted); there {
		t.Error("state.db marked as opened on another boot was kept")
	}
	for _, id := range acked {
		if _, err := kept.GetRun(id); err != nil {
			t.Fatalf("acknowledged run %s lost: %v", id, err)
		}
	}
	a, b := stateDump(t, kept), stateDump(t, rebuilt)
	delete(a, sentinel)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the kept state.db differs from the one rebuilt from the log")
	}
}

// TestStore_OpensAfterAKillInsideTheBootstrap: raft bootstraps a new data
// dir by writing its term, then the configuration entry. A kill -9
// between the two leaves a term with an empty log and no snapshot, which
// raft counts as existing state (it will not bootstrap again) though it
// holds no configuration (the node would never lead): the dir must still
// open, as a new one.
func TestStore_OpensAfterAKillInsideTheBootstrap(t *testing.T) {
	for _, kind := range LogStores {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			l, err := openRaftLog(dir, kind, logOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetUint64(raftKeyCurrentTerm, 1); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			s := openTestStoreOf(t, dir, kind) // fails the test unless it leads within 20 s
			defer s.Close()
			if _, err := s.Apply(context.Background(), newRun("r1", 1)); err != nil {
				t.Fatalf("apply: %v", err)
			}
		})
	}
}
