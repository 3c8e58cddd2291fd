package store

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// tester is the part of testing.TB that rapid.T also has.
type tester interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// testFSM is an FSM without raft: entries are fed in directly.
type testFSM struct {
	*fsm
	next uint64
}

func newTestFSM(tb testing.TB) *testFSM {
	tb.Helper()
	f, err := openFSM(filepath.Join(tb.TempDir(), "state.db"), 0, discardLogger(), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = f.close() })
	return &testFSM{fsm: f, next: 1}
}

// apply feeds cmds as the next raft entry and returns its response.
func (f *testFSM) apply(tb tester, cmds ...Command) *applyResponse {
	tb.Helper()
	data, err := encodeBatch(cmds)
	if err != nil {
		tb.Fatal(err)
	}
	r := f.Apply(&raft.Log{Index: f.next, Term: 1, Type: raft.LogCommand, Data: data}).(*applyResponse)
	f.next++
	if r.err != nil {
		tb.Fatalf("apply: %v", r.err)
	}
	return r
}

// mustAccept applies cmds and fails on any rejection.
func (f *testFSM) mustAccept(tb tester, cmds ...Command) {
	tb.Helper()
	if r := f.apply(tb, cmds...); len(r.rejected) > 0 {
		tb.Fatalf("unexpected rejections: %+v", r.rejected)
	}
}

func (f *testFSM) task(tb tester, runID string, i int) Task {
	tb.Helper()
	var t Task
	err := f.view(func(tx *bolt.Tx) (err error) { t, err = getTaskTx(tx, runID, i); return })
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func (f *testFSM) run(tb tester, id string) Run {
	tb.Helper()
	var r Run
	err := f.view(func(tx *bolt.Tx) (err error) { r, err = getRunTx(tx, id, true); return })
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func newRun(id string, n int) CreateRun {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("task-%d", i)
	}
	return CreateRun{
		Run:       Run{ID: id, Name: "run " + id, State: spec.RunRunning, CreatedAt: t0, Plan: []byte(`{"name":"p"}`)},
		TaskNames: names,
	}
}

// dumpDB returns every bucket's keys and values as strings.
func dumpDB(tb testing.TB, db *bolt.DB) map[string]map[string]string {
	tb.Helper()
	out := map[string]map[string]string{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			m := map[string]string{}
			out[string(name)] = m
			return b.ForEach(func(k, v []byte) error { m[string(k)] = string(v); return nil })
		})
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

func openTestStore(tb testing.TB, dir string) *Store {
	tb.Helper()
	return openTestStoreOf(tb, dir, DefaultLogStore)
}

func openTestStoreOf(tb testing.TB, dir, kind string) *Store {
	tb.Helper()
	cfg := DefaultConfig(dir)
	cfg.NoSync = true
	cfg.LogStore = kind
	// A store closed a moment ago may still look held: a child another
	// test forks meanwhile holds a copy of its LOCK descriptor until its
	// exec (see toolLockWait). It failed TestCheck_ReportsWhatItFinds once,
	// with the machine loaded.
	cfg.LockTimeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Open(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
