package docker_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
)

// TestExecutor_LogExactWhenFollowMisbehaves: a busy engine can end the
// followed log stream before it delivered everything, or deliver part of it
// twice; the log is read again whole after the container stopped, so the
// stored log is exactly what the step printed.
func TestExecutor_LogExactWhenFollowMisbehaves(t *testing.T) {
	for name, mangle := range map[string]func(*docker.Executor){
		"ends early": func(x *docker.Executor) { docker.CutFollowedLogs(x, 64<<10) },
		"repeats":    func(x *docker.Executor) { docker.RepeatFollowedLogs(x, 64<<10) },
	} {
		t.Run(name, func(t *testing.T) {
			x, blobs := newExecutor(t, t.TempDir(), nil)
			mangle(x)
			s := testSpec(t, `i=0; while [ $i -lt 20000 ]; do echo "line $i of the step's output"; i=$((i+1)); done >&2; echo END`)
			ev := run(t, x, s)
			if ev.State != spec.TaskSucceeded || ev.Logs == nil {
				t.Fatalf("state %s reason %q logs %v", ev.State, ev.Reason, ev.Logs)
			}
			rc, err := blobs.Open(t.Context(), ev.Logs.Digest)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			b, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			logs := string(b)
			// stdout and stderr are two streams: END may come before the
			// last lines of stderr.
			if n := strings.Count(logs, "\n"); n != 20001 || !strings.Contains(logs, "\nEND\n") || !strings.Contains(logs, "line 19999 of") {
				t.Fatalf("stored log has %d lines (%d bytes), ends %q; want 20001 lines with END", n, len(logs), logs[max(0, len(logs)-40):])
			}
			if n := strings.Count(logs, "line 7 of the step's output\n"); n != 1 {
				t.Fatalf("line 7 is in the stored log %d times, want once", n)
			}
		})
	}
}

// TestExecutor_WorkDirRemovedAfterReport: the work dir and log go once the
// results are reported; KeepWorkDirs keeps them, with the log outside the
// directory the container can write.
func TestExecutor_WorkDirRemovedAfterReport(t *testing.T) {
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		x, _ := newExecutor(t, dir, func(c *docker.Config) { c.KeepWorkDirs = keep })
		s := testSpec(t, "echo hi > /skiff/outputs/n; echo logged", "")
		s.Outputs = []executors.OutputSpec{{Name: "n", Type: spec.TypeString}}
		if ev := run(t, x, s); ev.State != spec.TaskSucceeded {
			t.Fatalf("state %s reason %q", ev.State, ev.Reason)
		}
		root, log := x.HostRoot(s.ID), executors.LogPath(filepath.Join(dir, "work"), s.ID)
		if rel, err := filepath.Rel(root, log); err != nil || filepath.IsLocal(rel) {
			t.Fatalf("log %s is inside the mounted work dir %s", log, root)
		}
		gone := func(p string) bool { _, err := os.Lstat(p); return errors.Is(err, fs.ErrNotExist) }
		if keep {
			if b, err := os.ReadFile(log); err != nil || string(b) != "logged\n" {
				t.Errorf("KeepWorkDirs: log %q, %v", b, err)
			}
			if gone(root) {
				t.Error("KeepWorkDirs: work dir removed")
			}
			continue
		}
		for end := time.Now().Add(deadline); !gone(root) || !gone(log); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("work dir or log not removed after the report")
			}
		}
	}
}
