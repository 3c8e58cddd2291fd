package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/skiffml/skiff/engine/spec"
)

// fill applies n entries (each a CreateRun plus transitions) to s.
func fill(tb testing.TB, s *Store, prefix string, n int) {
	tb.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		id := prefix + string(rune('a'+i%26)) + strings.Repeat("x", i/26)
		res, err := s.Apply(ctx, newRun(id, 3), TransitionTasks{RunID: id, Items: []Transition{tr(0, 1, pend, runn), tr(1, 0, pend, skip)}})
		if err != nil || len(res.Rejected) > 0 {
			tb.Fatalf("apply %d: %+v %v", i, res, err)
		}
	}
}

// stateDump is the FSM content minus the applied position (raft-internal
// entries such as no-ops may move it without changing data) and the
// node-local log id.
func stateDump(tb testing.TB, s *Store) map[string]map[string]string {
	tb.Helper()
	s.fsm.mu.RLock()
	defer s.fsm.mu.RUnlock()
	d := dumpDB(tb, s.fsm.db)
	delete(d["meta"], string(keyAppliedIndex))
	delete(d["meta"], string(keyAppliedTerm))
	delete(d["meta"], string(keyLogID))
	return d
}

func TestStore_RestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Now()
	s := openTestStore(t, dir)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Open took %v", d)
	}
	fill(t, s, "r", 20)
	want, idx := stateDump(t, s), s.AppliedIndex()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Apply(context.Background(), RequestCancel{RunID: "ra"}); !errors.Is(err, ErrClosed) {
		t.Errorf("apply after close: %v", err)
	}
	s = openTestStore(t, dir)
	defer s.Close()
	if !reflect.DeepEqual(want, stateDump(t, s)) {
		t.Fatal("state differs after restart")
	}
	if s.AppliedIndex() < idx {
		t.Errorf("applied index %d < %d", s.AppliedIndex(), idx)
	}
	// Still writable, and stale transitions are still rejected.
	res, err := s.Apply(context.Background(), TransitionTasks{RunID: "ra", Items: []Transition{tr(0, 1, pend, runn), tr(0, 1, runn, succ)}})
	if err != nil || len(res.Rejected) != 1 || res.Rejected[0].Item != 0 || res.Index <= idx {
		t.Fatalf("after restart: %+v %v", res, err)
	}
}

// TestStore_CatchesUpWhenStateLags: state.db is older than the raft log
// (as after a crash between the log fsync and the state commit); Open must
// apply the missing committed entries before returning.
func TestStore_CatchesUpWhenStateLags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	fill(t, s, "a", 5)
	s.Close()
	old, err := os.ReadFile(filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	fill(t, s, "b", 7)
	want := stateDump(t, s)
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, "state.db"), old, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	defer s.Close()
	if !reflect.DeepEqual(want, stateDump(t, s)) {
		t.Fatal("Open returned before the lagging state caught up with the log")
	}
}

func TestStore_LockedDataDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	defer s.Close()
	cfg := DefaultConfig(dir)
	start := time.Now()
	_, err := Open(context.Background(), cfg)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("second open: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("LockTimeout 0 waited %v", d)
	}
	cfg.LockTimeout = 100 * time.Millisecond
	if _, err := Open(context.Background(), cfg); !errors.Is(err, ErrLocked) {
		t.Fatalf("open with timeout: %v", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	if err := (Config{}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("empty dir: %v", err)
	}
	if err := (Config{Dir: "x", LockTimeout: -1}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("negative timeout: %v", err)
	}
	if err := DefaultConfig("x").Validate(); err != nil {
		t.Error(err)
	}
}

type memSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (m *memSink) ID() string    { return "mem" }
func (m *memSink) Close() error  { m.closed = true; return nil }
func (m *memSink) Cancel() error { m.canceled = true; return nil }

func TestFSM_SnapshotRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	a := newTestFSM(t)
	for i, data := range randomLog(t, 7, 100) {
		a.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink memSink
	if err := snap.Persist(&sink); err != nil || !sink.closed {
		t.Fatalf("persist: %v", err)
	}
	snap.Release()
	b := newTestFSM(t)
	b.mustAccept(t, newRun("to-be-replaced", 1))
	if err := b.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dumpDB(t, a.db), dumpDB(t, b.db)) {
		t.Fatal("restored state differs")
	}
	if b.applied.Load() != 100 {
		t.Errorf("applied after restore %d", b.applied.Load())
	}
	if err := b.Restore(io.NopCloser(strings.NewReader("not zstd"))); err == nil {
		t.Error("restore of garbage succeeded")
	}
	// The failed restore left the restored state in place.
	if !reflect.DeepEqual(dumpDB(t, a.db), dumpDB(t, b.db)) {
		t.Fatal("failed restore changed the state")
	}
}

func TestStore_ForcedSnapshotThenRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	fill(t, s, "s", 10)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	fill(t, s, "t", 3)
	want := stateDump(t, s)
	s.Close()

	s = openTestStore(t, dir)
	if !reflect.DeepEqual(want, stateDump(t, s)) {
		t.Fatal("state differs after snapshot and restart")
	}
	s.Close()

	// state.db lost: Open restores the snapshot, then replays the log tail.
	if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	defer s.Close()
	if !reflect.DeepEqual(want, stateDump(t, s)) {
		t.Fatal("state differs after losing state.db")
	}
}

func TestStore_Metrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig(t.TempDir())
	cfg.NoSync, cfg.Registerer = true, reg
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Apply(ctx, newRun("m", 2), TransitionTasks{RunID: "m", Items: []Transition{tr(0, 1, pend, runn), tr(0, 5, runn, succ)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(ctx, SetRunState{RunID: "m", From: spec.RunRunning, To: spec.RunSucceeded, Time: t0}); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, s.metrics.rejections); got != 1 {
		t.Errorf("rejections %v", got)
	}
	if got := counterValue(t, s.metrics.commands.WithLabelValues("transition_tasks")); got != 1 {
		t.Errorf("transition commands %v", got)
	}
	if got := counterValue(t, s.metrics.entries); got < 2 {
		t.Errorf("entries %v", got)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	for _, mf := range mfs {
		if mf.GetName() == "skiff_store_apply_seconds" {
			count = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if count != 2 {
		t.Errorf("apply histogram count %d", count)
	}
	// A second store on the same registry fails cleanly; after Close it works.
	cfg2 := DefaultConfig(t.TempDir())
	cfg2.NoSync, cfg2.Registerer = true, reg
	if _, err := Open(ctx, cfg2); err == nil {
		t.Error("duplicate metrics registration accepted")
	}
	s.Close()
	s2, err := Open(ctx, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestStore_ApplyContext(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Apply(ctx, newRun("c", 1)); !errors.Is(err, context.Canceled) {
		t.Logf("apply with canceled ctx: %v (may have won the race)", err)
	}
	if _, err := s.Apply(context.Background(), bogusCmd{}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("unknown command: %v", err)
	}
	if res, err := s.Apply(context.Background()); err != nil || res.Index != 0 {
		t.Errorf("empty apply: %+v %v", res, err)
	}
}

func counterValue(tb testing.TB, c prometheus.Counter) float64 {
	tb.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		tb.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestStore_RaftLogsGoToSlog(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	cfg := DefaultConfig(t.TempDir())
	cfg.NoSync = true
	cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if out := buf.String(); !strings.Contains(out, "component=raft") {
		t.Errorf("no raft logs in slog output:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestStore_UncleanStateIsRebuiltFromSnapshotAndLog: state.db is written
// without fsyncs; one left without the clean marker is kept only when it
// is the file a dead process left on this boot and it opens whole. Here it
// is that file but garbage (as a power loss could leave it): Open rebuilds
// it from the latest snapshot and the raft log, and does not fail.
func TestStore_UncleanStateIsRebuiltFromSnapshotAndLog(t *testing.T) {
	t.Parallel()
	for _, snapshot := range []bool{false, true} {
		t.Run(fmt.Sprintf("snapshot=%v", snapshot), func(t *testing.T) {
			dir := t.TempDir()
			s := openTestStore(t, dir)
			fill(t, s, "a", 6)
			if snapshot {
				if err := s.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			fill(t, s, "b", 4)
			want := stateDump(t, s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			marker := filepath.Join(dir, "state.db.clean")
			if _, err := os.Stat(marker); err != nil {
				t.Fatalf("a clean close left no marker: %v", err)
			}
			if err := os.Remove(marker); err != nil {
				t.Fatal(err)
			}
			garbage := bytes.Repeat([]byte{0xA5}, 64<<10)
			if err := os.WriteFile(filepath.Join(dir, "state.db"), garbage, 0o600); err != nil {
				t.Fatal(err)
			}
			s = openTestStore(t, dir)
			if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the marker exists while the store is open: %v", err)
			}
			if !reflect.DeepEqual(want, stateDump(t, s)) {
				t.Fatal("state differs after rebuilding an unclean state.db")
			}
			s.Close()
		})
	}
}

// TestStore_LeaderAppliesWhatItsCheckDecoded: the FSM takes the commands
// of an entry whose very bytes this node is proposing as Apply's check
// decoded them (it does not decode them twice), other bytes it decodes,
// and Apply holds none once it returns.
func TestStore_LeaderAppliesWhatItsCheckDecoded(t *testing.T) {
	f := newTestFSM(t)
	proposed, _, err := encodeBatchDecoded([]Command{newRun("r1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	// Held with other commands than its bytes say: what the FSM applies
	// shows which it took.
	_, held, err := encodeBatchDecoded([]Command{newRun("r2", 1)})
	if err != nil {
		t.Fatal(err)
	}
	f.proposed.put(proposed, held)
	f.Apply(&raft.Log{Index: f.next, Term: 1, Type: raft.LogCommand, Data: proposed})
	f.next++
	f.proposed.drop(proposed)
	f.run(t, "r2")
	// The same content in other bytes (a follower's copy) is decoded.
	f.Apply(&raft.Log{Index: f.next, Term: 1, Type: raft.LogCommand, Data: bytes.Clone(proposed)})
	f.next++
	f.run(t, "r1")

	s := openTestStore(t, t.TempDir())
	defer s.Close()
	if _, err := s.Apply(context.Background(), newRun("r3", 2)); err != nil {
		t.Fatal(err)
	}
	res, err := s.Apply(context.Background(), TransitionTasks{RunID: "r3", Items: []Transition{tr(0, 1, pend, runn)}})
	if err != nil || len(res.Rejected) > 0 {
		t.Fatalf("apply: %v %+v", err, res.Rejected)
	}
	if task, err := s.Task("r3", 0); err != nil || task.State != spec.TaskRunning {
		t.Errorf("task 0: %+v, %v; want RUNNING", task, err)
	}
	s.fsm.proposed.mu.Lock()
	left := len(s.fsm.proposed.m)
	s.fsm.proposed.mu.Unlock()
	if left != 0 {
		t.Errorf("%d proposed entries still held after Apply returned", left)
	}
}
