package local

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store/blob"
)

// TestLocal_SilentStepMakesNoLog: a step that prints nothing never gets a
// log file (the step itself looks for it while it runs), and its exit
// carries the empty blob as its log.
func TestLocal_SilentStepMakesNoLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	s := shSpec("quiet-1", `test ! -e "$(dirname "$SKIFF_ROOT")/.logs/$SKIFF_EXECUTION_ID.log"`)
	ev := f.run(t, s)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("exited %s (%s): the log file existed while the step ran", ev.State, ev.Reason)
	}
	if ev.Logs == nil || ev.Logs.Digest != blob.EmptyDigest {
		t.Fatalf("logs %+v; want the empty blob", ev.Logs)
	}
	if b := f.blobBytes(t, ev.Logs); len(b) != 0 {
		t.Fatalf("log %q", b)
	}
}

// TestLocal_LogKeepsStreamOrder: stdout and stderr share one pipe, so the
// log has them in the order the step wrote them.
func TestLocal_LogKeepsStreamOrder(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ev := f.run(t, shSpec("order-1", `for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done`))
	want := "out1\nerr1\nout2\nerr2\nout3\nerr3\nout4\nerr4\nout5\nerr5\n"
	if got := string(f.blobBytes(t, ev.Logs)); ev.State != spec.TaskSucceeded || got != want {
		t.Fatalf("%s: log %q; want %q", ev.State, got, want)
	}
}

// TestLocal_EscapedWriterDoesNotHoldTheEnd: a process that left the step's
// group (setsid) and keeps its output open does not keep the step from
// ending: after logDrainWait its log is taken with what the step printed.
func TestLocal_EscapedWriterDoesNotHoldTheEnd(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	start := time.Now()
	ev := f.run(t, shSpec("escape-1", `echo before; setsid sh -c 'sleep 3; echo late' & echo after`))
	took := time.Since(start)
	if ev.State != spec.TaskSucceeded || took > logDrainWait+1500*time.Millisecond {
		t.Fatalf("%s after %s; want SUCCEEDED within about %s", ev.State, took, logDrainWait)
	}
	if got := string(f.blobBytes(t, ev.Logs)); got != "before\nafter\n" {
		t.Fatalf("log %q", got)
	}
}

// TestLocal_StepOutputIsBlocking: the step's stdout and stderr (the pipe's
// write end) are blocking, as a process expects; only Skiff's read end is
// non-blocking. A non-blocking stdout makes a step's write fail with
// EAGAIN once the pipe is full.
func TestLocal_StepOutputIsBlocking(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ev := f.run(t, shSpec("flags-1", `grep '^flags:' /proc/self/fdinfo/1; grep '^flags:' /proc/self/fdinfo/2 >&2`))
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("exited %s (%s)", ev.State, ev.Reason)
	}
	lines := strings.Fields(string(f.blobBytes(t, ev.Logs)))
	if len(lines) != 4 {
		t.Fatalf("log %q; want two flags lines", lines)
	}
	for _, v := range []string{lines[1], lines[3]} {
		flags, err := strconv.ParseUint(v, 8, 64)
		if err != nil {
			t.Fatalf("flags %q: %v", v, err)
		}
		if flags&syscall.O_NONBLOCK != 0 {
			t.Errorf("the step's output has O_NONBLOCK (flags %s)", v)
		}
	}
}

// lateSink is a sink whose copy starts reading only once gate is closed,
// as when its goroutine waits to run on a loaded machine, with a short
// drain wait; w is the step's end of the pipe. What the sink logs is in
// logged, to be read once finish has returned (the copy has ended then).
func lateSink(t *testing.T) (s *logSink, w *os.File, gate chan struct{}, logged *bytes.Buffer, path string) {
	t.Helper()
	logged = &bytes.Buffer{}
	path = filepath.Join(t.TempDir(), "x.log")
	s, w, err := newLogSink(path, "x", slog.New(slog.NewTextHandler(logged, nil)), false)
	if err != nil {
		t.Fatal(err)
	}
	gate = make(chan struct{})
	s.drainWait = 10 * time.Millisecond
	s.beforeRead = func() { <-gate }
	s.start()
	return s, w, gate, logged, path
}

// TestLogSink_LateCopyKeepsTheOutput: when the copy has not run by the end
// of the drain wait, finish reads what the step wrote (and the pipe's end)
// itself: the log is whole, and no writer is reported as escaped.
func TestLogSink_LateCopyKeepsTheOutput(t *testing.T) {
	t.Parallel()
	s, w, gate, logged, path := lateSink(t)
	if _, err := w.WriteString("last words\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	time.AfterFunc(100*time.Millisecond, func() { close(gate) })
	if !s.finish() {
		t.Fatal("no log made")
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "last words\n" {
		t.Fatalf("log %q (%v); want the step's output", b, err)
	}
	if strings.Contains(logged.String(), "outside the step's group") {
		t.Fatalf("warned of an escaped writer: %s", logged)
	}
}

// TestLogSink_OpenPipeIsCutAfterTheDrain: a writer that still holds the
// pipe after the drain wait is reported, and the log keeps what it wrote
// until then.
func TestLogSink_OpenPipeIsCutAfterTheDrain(t *testing.T) {
	t.Parallel()
	s, w, gate, logged, path := lateSink(t)
	defer w.Close()
	if _, err := w.WriteString("before\n"); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, func() { close(gate) })
	done := make(chan bool)
	go func() { done <- s.finish() }()
	select {
	case made := <-done:
		if !made {
			t.Fatal("no log made")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("finish waits for a writer that never closes")
	}
	b, _ := os.ReadFile(path)
	if string(b) != "before\n" {
		t.Fatalf("log %q", b)
	}
	if !strings.Contains(logged.String(), "outside the step's group") {
		t.Fatalf("no warning: %q", logged)
	}
}
