package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestResetLog_KeepsTheStateAndStartsANewLog: the way out of a lost
// raft.db keeps state.db's data, and new commands are applied (not
// skipped as "already applied") and survive a restart.
func TestResetLog_KeepsTheStateAndStartsANewLog(t *testing.T) {
	t.Parallel()
	for _, kind := range LogStores {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testResetLog(t, kind)
		})
	}
}

func testResetLog(t *testing.T, kind string) {
	d := newDamagedDirOf(t, kind)
	remove(t, d.logPath())
	if _, err := openDamagedOf(t, d.dir, kind); !errors.Is(err, ErrStateMismatch) || !strings.Contains(err.Error(), "skiff store reset-log") {
		t.Fatalf("open without the raft log: %v", err)
	}
	msg, err := ResetLog(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "new raft log") {
		t.Errorf("message %q", msg)
	}
	s := openTestStoreOf(t, d.dir, kind)
	if got := stateDump(t, s); !reflect.DeepEqual(d.want, got) {
		for b := range got {
			if !reflect.DeepEqual(d.want[b], got[b]) {
				t.Logf("bucket %s: want %v\ngot %v", b, d.want[b], got[b])
			}
		}
		t.Fatal("state differs after reset-log")
	}
	fill(t, s, "new", 3)
	want := stateDump(t, s)
	s.Close()
	s = openTestStoreOf(t, d.dir, kind)
	defer s.Close()
	if !reflect.DeepEqual(want, stateDump(t, s)) {
		t.Fatal("commands applied after reset-log were lost at restart")
	}
	if _, err := s.GetRun("newa"); err != nil {
		t.Fatal(err)
	}
}

func TestResetLog_RefusesAnIntactLog(t *testing.T) {
	t.Parallel()
	d := newDamagedDir(t)
	if _, err := ResetLog(d.dir); err == nil || !strings.Contains(err.Error(), "intact") {
		t.Fatalf("reset-log of a healthy data dir: %v", err)
	}
	s := openTestStore(t, d.dir)
	defer s.Close()
	if !reflect.DeepEqual(d.want, stateDump(t, s)) {
		t.Fatal("a refused reset-log changed the state")
	}
}

func TestResetLog_RefusesAnUncleanState(t *testing.T) {
	t.Parallel()
	d := newDamagedDir(t)
	remove(t, filepath.Join(d.dir, "state.db.clean"))
	if _, err := ResetLog(d.dir); err == nil || !strings.Contains(err.Error(), "not closed cleanly") {
		t.Fatalf("reset-log of an unclean state.db: %v", err)
	}
	if _, err := os.Stat(d.logPath()); err != nil {
		t.Errorf("a refused reset-log moved the raft log: %v", err)
	}
}

// TestSkipEntry_AnUndecodableEntryIsReportedAndCanBeDropped: an entry the
// FSM cannot decode halts it with the entry's index and the way out, at
// every open (never a panic); no command is proposed behind it; skip-entry
// drops it and the store works again.
func TestSkipEntry_AnUndecodableEntryIsReportedAndCanBeDropped(t *testing.T) {
	t.Parallel()
	for _, kind := range LogStores {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testSkipEntry(t, kind)
		})
	}
}

func testSkipEntry(t *testing.T, kind string) {
	dir := t.TempDir()
	s := openTestStoreOf(t, dir, kind)
	ctx := context.Background()
	fill(t, s, "a", 2)
	payload := `{"run_id":"aa","from":"NOT A STATE","to":2}`
	bad := append([]byte{batchFormat, byte(TypeSetRunState), 1, byte(len(payload))}, payload...)
	f := s.raft.Apply(bad, 0)
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	index := f.Index()
	if r, _ := f.Response().(*applyResponse); r == nil || !errors.Is(r.err, ErrFSMHalted) {
		t.Fatalf("response to an undecodable entry: %+v", f.Response())
	}
	if _, err := s.Apply(ctx, RequestCancel{RunID: "ab"}); !errors.Is(err, ErrFSMHalted) {
		t.Fatalf("apply on a halted FSM: %v", err)
	}
	if s.raft.LastIndex() != index {
		t.Errorf("a command was proposed behind the halting entry: last index %d, halted at %d", s.raft.LastIndex(), index)
	}
	s.Close()
	for range 2 {
		_, err := openDamagedOf(t, dir, kind)
		if !errors.Is(err, ErrFSMHalted) || !strings.Contains(err.Error(), "skiff store skip-entry "+itoa(index)) {
			t.Fatalf("open: %v", err)
		}
	}
	if _, err := SkipEntry(dir, index-1); err == nil || !strings.Contains(err.Error(), "decodes") {
		t.Fatalf("skip-entry of a good entry: %v", err)
	}
	msg, err := SkipEntry(dir, index)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(filepath.Join(dir, "damaged", "entry-"+itoa(index)+".bin"))
	if err != nil || string(kept) != string(bad) || !strings.Contains(msg, "damaged") {
		t.Fatalf("the dropped entry was not kept: %q %v", msg, err)
	}
	s = openTestStoreOf(t, dir, kind)
	defer s.Close()
	fill(t, s, "b", 1)
	if _, err := s.GetRun("ab"); err != nil {
		t.Fatal(err)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
