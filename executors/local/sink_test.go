package local

import (
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
