package store

import (
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func TestRetryRun(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r1", 4))
	// task 0 succeeded, 1 failed, 2 skipped, 3 canceled; the run failed.
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{
		tr(0, 1, pend, runn), tr(0, 1, runn, succ),
		tr(1, 1, pend, runn), withError(tr(1, 1, runn, fail), "exit 1"),
		withError(tr(2, 0, pend, skip), "upstream failed"),
		tr(3, 0, pend, canc),
	}})
	if r := f.apply(t, RetryRun{RunID: "r1", Time: t0}); len(r.rejected) != 1 || !strings.Contains(r.rejected[0].Reason, "RUNNING") {
		t.Fatalf("retry of a running run: %+v", r.rejected)
	}
	f.mustAccept(t, SetRunState{RunID: "r1", From: spec.RunRunning, To: spec.RunFailed, Time: t0, Error: "task task-1 failed"})
	f.mustAccept(t, RetryRun{RunID: "r1", Time: t0})

	r := f.run(t, "r1")
	if r.State != spec.RunRunning || r.Error != "" || !r.FinishedAt.IsZero() || r.CancelRequested {
		t.Fatalf("run after retry: %+v", r)
	}
	want := []spec.TaskState{succ, pend, pend, pend}
	for i, st := range want {
		tk := f.task(t, "r1", i)
		if tk.State != st {
			t.Errorf("task %d: %s, want %s", i, tk.State, st)
		}
		if st == pend && (tk.Error != "" || !tk.FinishedAt.IsZero()) {
			t.Errorf("task %d keeps its end: %+v", i, tk)
		}
	}
	if tk := f.task(t, "r1", 1); len(tk.Attempts) != 1 || tk.Attempts[0].State != fail {
		t.Fatalf("the failed attempt must be kept: %+v", tk.Attempts)
	}
	// The next attempt is numbered on; the old one stays.
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{tr(1, 2, pend, runn)}})
	if r := f.apply(t, TransitionTasks{RunID: "r1", Items: []Transition{tr(0, 2, pend, runn)}}); len(r.rejected) != 1 {
		t.Fatalf("a succeeded task must not restart: %+v", r.rejected)
	}

	// Succeeded runs and unknown runs reject it.
	f.mustAccept(t, newRun("r2", 1))
	f.mustAccept(t, SetRunState{RunID: "r2", From: spec.RunRunning, To: spec.RunSucceeded, Time: t0})
	for _, id := range []string{"r2", "nope"} {
		if r := f.apply(t, RetryRun{RunID: id, Time: t0}); len(r.rejected) != 1 {
			t.Fatalf("retry %s: %+v", id, r.rejected)
		}
	}
	// A canceled run can be retried; its cancellation request is cleared.
	f.mustAccept(t, newRun("r3", 1))
	f.mustAccept(t, RequestCancel{RunID: "r3", Time: t0})
	f.mustAccept(t, SetRunState{RunID: "r3", From: spec.RunCanceling, To: spec.RunCanceled, Time: t0})
	f.mustAccept(t, RetryRun{RunID: "r3", Time: t0})
	if r := f.run(t, "r3"); r.State != spec.RunRunning || r.CancelRequested {
		t.Fatalf("canceled run after retry: %+v", r)
	}
}

func withError(x Transition, e string) Transition { x.Error = e; return x }
