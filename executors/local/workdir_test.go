package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

func exists(p string) bool {
	_, err := os.Lstat(p)
	return !errors.Is(err, fs.ErrNotExist)
}

// TestLocal_WorkDirRemovedAfterExit: once an execution's outputs and log
// are stored and reported, its root and log are gone, whether it
// succeeded or failed.
func TestLocal_WorkDirRemovedAfterExit(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for _, s := range []*executors.Spec{shSpec("ok-1", "echo hi; echo 1 > outputs/n"), shSpec("fail-1", "echo no; exit 2")} {
		s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeInt}}
		ev := f.run(t, s)
		if got := string(f.blobBytes(t, ev.Logs)); got != "hi\n" && got != "no\n" {
			t.Fatalf("%s: logs = %q", s.ID, got)
		}
		root, log := f.ex.Root(s.ID), executors.LogPath(f.ex.cfg.WorkDir, s.ID)
		waitFor(t, func() bool { return !exists(root) && !exists(log) })
	}
}

// TestLocal_KeepWorkDirs keeps both, and the log is outside the root (the
// directory the step can write).
func TestLocal_KeepWorkDirs(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.KeepWorkDirs = true })
	s := shSpec("ok-1", "echo hi; ls -a")
	ev := f.run(t, s)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("exited %+v", ev)
	}
	root, log := f.ex.Root(s.ID), executors.LogPath(f.ex.cfg.WorkDir, s.ID)
	if rel, err := filepath.Rel(root, log); err != nil || filepath.IsLocal(rel) {
		t.Fatalf("log %s is inside the root %s", log, root)
	}
	if b, err := os.ReadFile(log); err != nil || !strings.HasPrefix(string(b), "hi\n") || strings.Contains(string(b), "output.log") {
		t.Fatalf("log = %q, %v; want the step's output and no log file in its root", b, err)
	}
	if !exists(root) {
		t.Fatal("root removed despite KeepWorkDirs")
	}
}

func TestLocal_MaxOutputBytes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.MaxOutputBytes = 100 })
	s := shSpec("big-1", "head -c 101 /dev/zero > outputs/model")
	s.Outputs = []executors.OutputSpec{{Name: "model", Type: spec.TypeModel}}
	ev := f.run(t, s)
	if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, `output "model"`) || !strings.Contains(ev.Reason, "limit of 100 bytes") {
		t.Fatalf("state %s reason %q; want FAILED naming the output and the limit", ev.State, ev.Reason)
	}
}

// TestLocal_WaitWaitsForRemovals: the work dir is removed just after the
// report, off its path; Wait returns once it is gone (skiff run calls it
// before it exits). A Start of the same ID right after the report gets a
// root of its own, not one the previous removal deletes under it.
func TestLocal_WaitWaitsForRemovals(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	for i := range 20 {
		s := shSpec("again", "echo x > tmp/f && sleep 0.01 && test -f tmp/f && echo "+strconv.Itoa(i)+" > outputs/n")
		s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeInt}}
		rec := newRecorder()
		if err := f.ex.Start(context.Background(), s, rec.report); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		ev := rec.wait(t, "again", executors.EventExited)
		if ev.State != spec.TaskSucceeded || string(ev.Outputs["n"].Param) != strconv.Itoa(i) {
			t.Fatalf("run %d: %s %s %v", i, ev.State, ev.Reason, ev.Outputs)
		}
	}
	f.ex.Wait()
	root, log := f.ex.Root("again"), executors.LogPath(f.ex.cfg.WorkDir, "again")
	if exists(root) || exists(log) {
		t.Fatalf("after Wait: root there %v, log there %v", exists(root), exists(log))
	}
}
