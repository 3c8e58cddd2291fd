package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skiffml/skiff/engine/spec"
)

const (
	pend = spec.TaskPending
	runn = spec.TaskRunning
	succ = spec.TaskSucceeded
	fail = spec.TaskFailed
	skip = spec.TaskSkipped
	canc = spec.TaskCanceled
)

func tr(task, attempt int, from, to spec.TaskState) Transition {
	return Transition{Task: task, Attempt: attempt, From: from, To: to, Time: t0.Add(time.Duration(attempt) * time.Minute)}
}

func TestTransitionTasks_Rules(t *testing.T) {
	t.Parallel()
	out := map[string]spec.Value{"m": {Param: json.RawMessage(`1`)}}
	logs := &spec.ArtifactRef{Digest: "sha256:aa", Size: 3}
	withOut := func(x Transition) Transition { x.Outputs, x.Logs, x.ExecutionID = out, logs, "exec-1"; return x }
	withErr := func(x Transition, e string) Transition { x.Error = e; return x }

	cases := []struct {
		name     string
		setup    []Transition // applied first, all must be accepted
		cancel   bool         // RequestCancel after setup
		item     Transition
		reject   string // substring of the reason; "" means accepted
		state    spec.TaskState
		attempts []spec.TaskState // states of the attempts afterwards
		check    func(t *testing.T, tk Task)
	}{
		// Accepted.
		{name: "pending to running starts attempt 1", item: withOut(tr(0, 1, pend, runn)), state: runn, attempts: []spec.TaskState{runn},
			check: func(t *testing.T, tk Task) {
				a := tk.Attempts[0]
				if a.N != 1 || a.ExecutionID != "exec-1" || !a.StartedAt.Equal(t0.Add(time.Minute)) || !tk.StartedAt.Equal(a.StartedAt) {
					t.Errorf("attempt %+v task started %v", a, tk.StartedAt)
				}
			}},
		{name: "running to succeeded closes attempt and task", setup: []Transition{tr(0, 1, pend, runn)}, item: withOut(tr(0, 1, runn, succ)), state: succ, attempts: []spec.TaskState{succ},
			check: func(t *testing.T, tk Task) {
				if string(tk.Outputs["m"].Param) != "1" || tk.Attempts[0].Logs.Digest != "sha256:aa" || tk.FinishedAt.IsZero() || tk.Attempts[0].FinishedAt.IsZero() {
					t.Errorf("task %+v", tk)
				}
			}},
		{name: "running to failed records error", setup: []Transition{tr(0, 1, pend, runn)}, item: withErr(tr(0, 1, runn, fail), "exit 3"), state: fail, attempts: []spec.TaskState{fail},
			check: func(t *testing.T, tk Task) {
				if tk.Error != "exit 3" || tk.Attempts[0].Error != "exit 3" || tk.Outputs != nil {
					t.Errorf("task %+v", tk)
				}
			}},
		{name: "running to canceled", setup: []Transition{tr(0, 1, pend, runn)}, item: tr(0, 1, runn, canc), state: canc, attempts: []spec.TaskState{canc}},
		{name: "running to running starts attempt 2 and fails attempt 1", setup: []Transition{tr(0, 1, pend, runn)}, item: withErr(tr(0, 2, runn, runn), "lost: engine restarted"),
			state: runn, attempts: []spec.TaskState{fail, runn},
			check: func(t *testing.T, tk Task) {
				if tk.Attempts[0].Error != "lost: engine restarted" || tk.Attempts[1].Error != "" || tk.Attempts[1].N != 2 || !tk.StartedAt.Equal(t0.Add(time.Minute)) {
					t.Errorf("task %+v", tk)
				}
			}},
		{name: "attempt 2 succeeds", setup: []Transition{tr(0, 1, pend, runn), tr(0, 2, runn, runn)}, item: tr(0, 2, runn, succ), state: succ, attempts: []spec.TaskState{fail, succ}},
		{name: "running to pending fails the attempt and waits for a retry", setup: []Transition{tr(0, 1, pend, runn)}, item: withErr(tr(0, 1, runn, pend), "exit code 1"),
			state: pend, attempts: []spec.TaskState{fail},
			check: func(t *testing.T, tk Task) {
				if tk.Attempts[0].Error != "exit code 1" || tk.Attempts[0].FinishedAt.IsZero() || !tk.FinishedAt.IsZero() {
					t.Errorf("task %+v", tk)
				}
			}},
		{name: "retry starts attempt 2 after a wait", setup: []Transition{tr(0, 1, pend, runn), tr(0, 1, runn, pend)}, item: tr(0, 2, pend, runn),
			state: runn, attempts: []spec.TaskState{fail, runn}},
		{name: "pending to skipped", item: withErr(tr(0, 0, pend, skip), "condition false"), state: skip,
			check: func(t *testing.T, tk Task) {
				if tk.Error != "condition false" || tk.FinishedAt.IsZero() {
					t.Errorf("task %+v", tk)
				}
			}},
		{name: "pending to canceled", item: tr(0, 0, pend, canc), state: canc},
		{name: "running to canceled after cancel requested", setup: []Transition{tr(0, 1, pend, runn)}, cancel: true, item: tr(0, 1, runn, canc), state: canc, attempts: []spec.TaskState{canc}},
		{name: "pending to skipped after cancel requested", cancel: true, item: tr(0, 0, pend, skip), state: skip},

		// Rejected.
		{name: "pending to running with attempt 2", item: tr(0, 2, pend, runn), reject: "next attempt is 1", state: pend},
		{name: "pending to running with attempt 0", item: tr(0, 0, pend, runn), reject: "next attempt is 1", state: pend},
		{name: "running to running same attempt", setup: []Transition{tr(0, 1, pend, runn)}, item: tr(0, 1, runn, runn), reject: "must be 2", state: runn, attempts: []spec.TaskState{runn}},
		{name: "running to running skipping an attempt", setup: []Transition{tr(0, 1, pend, runn)}, item: tr(0, 3, runn, runn), reject: "must be 2", state: runn, attempts: []spec.TaskState{runn}},
		{name: "stale attempt reports success", setup: []Transition{tr(0, 1, pend, runn), tr(0, 2, runn, runn)}, item: tr(0, 1, runn, succ), reject: "current attempt is 2", state: runn, attempts: []spec.TaskState{fail, runn}},
		{name: "future attempt reports success", setup: []Transition{tr(0, 1, pend, runn)}, item: tr(0, 2, runn, succ), reject: "current attempt is 1", state: runn, attempts: []spec.TaskState{runn}},
		{name: "wrong from", item: tr(0, 1, runn, succ), reject: "stale: task is PENDING", state: pend},
		{name: "final task cannot restart", setup: []Transition{tr(0, 1, pend, runn), tr(0, 1, runn, fail)}, item: tr(0, 2, fail, runn), reject: "already FAILED", state: fail, attempts: []spec.TaskState{fail}},
		{name: "final task ignores late report", setup: []Transition{tr(0, 1, pend, runn), tr(0, 1, runn, succ)}, item: tr(0, 1, runn, fail), reject: "already SUCCEEDED", state: succ, attempts: []spec.TaskState{succ}},
		{name: "skipped task cannot start", setup: []Transition{tr(0, 0, pend, skip)}, item: tr(0, 1, pend, runn), reject: "already SKIPPED", state: skip},
		{name: "running to skipped", setup: []Transition{tr(0, 1, pend, runn)}, item: tr(0, 1, runn, skip), reject: "not allowed", state: runn, attempts: []spec.TaskState{runn}},
		{name: "running to pending with a stale attempt", setup: []Transition{tr(0, 1, pend, runn)}, item: tr(0, 2, runn, pend), reject: "current attempt is 1", state: runn, attempts: []spec.TaskState{runn}},
		{name: "pending to succeeded", item: tr(0, 1, pend, succ), reject: "not allowed", state: pend},
		{name: "pending to failed", item: tr(0, 1, pend, fail), reject: "not allowed", state: pend},
		{name: "pending to pending", item: tr(0, 0, pend, pend), reject: "not allowed", state: pend},
		{name: "unknown task index", item: tr(7, 1, pend, runn), reject: "has no task 7", state: pend},
		{name: "negative task index", item: tr(-1, 1, pend, runn), reject: "has no task -1", state: pend},
		{name: "no attempt starts after cancel", cancel: true, item: tr(0, 1, pend, runn), reject: "no new attempt", state: pend},
		{name: "no retry after cancel", setup: []Transition{tr(0, 1, pend, runn)}, cancel: true, item: tr(0, 2, runn, runn), reject: "no new attempt", state: runn, attempts: []spec.TaskState{runn}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFSM(t)
			f.mustAccept(t, newRun("r1", 2))
			if len(tc.setup) > 0 {
				f.mustAccept(t, TransitionTasks{RunID: "r1", Items: tc.setup})
			}
			if tc.cancel {
				f.mustAccept(t, RequestCancel{RunID: "r1", Time: t0})
			}
			before := f.task(t, "r1", 1)
			resp := f.apply(t, TransitionTasks{RunID: "r1", Items: []Transition{tc.item}})
			switch {
			case tc.reject == "" && len(resp.rejected) > 0:
				t.Fatalf("rejected: %+v", resp.rejected)
			case tc.reject != "" && len(resp.rejected) != 1:
				t.Fatalf("accepted, want rejection %q", tc.reject)
			case tc.reject != "" && !strings.Contains(resp.rejected[0].Reason, tc.reject):
				t.Fatalf("reason %q, want it to contain %q", resp.rejected[0].Reason, tc.reject)
			}
			idx := max(tc.item.Task, 0)
			if idx > 1 {
				idx = 0
			}
			tk := f.task(t, "r1", idx)
			if tk.State != tc.state {
				t.Errorf("task state %s, want %s", tk.State, tc.state)
			}
			if len(tk.Attempts) != len(tc.attempts) {
				t.Fatalf("attempts %+v, want states %v", tk.Attempts, tc.attempts)
			}
			for i, a := range tk.Attempts {
				if a.State != tc.attempts[i] || a.N != i+1 {
					t.Errorf("attempt %d = %+v, want N %d state %s", i, a, i+1, tc.attempts[i])
				}
			}
			if tc.check != nil {
				tc.check(t, tk)
			}
			if after := f.task(t, "r1", 1); after.State != before.State || len(after.Attempts) != 0 {
				t.Errorf("other task changed: %+v", after)
			}
		})
	}
}

func TestTransitionTasks_BatchRejectsItemsAlone(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r1", 3))
	resp := f.apply(t,
		SetRunState{RunID: "r1", From: spec.RunPending, To: spec.RunRunning, Time: t0}, // stale: run is RUNNING
		TransitionTasks{RunID: "r1", Items: []Transition{
			tr(0, 1, pend, runn),
			tr(0, 1, runn, succ), // sees the item before it
			tr(1, 2, pend, runn), // stale attempt
			tr(2, 1, pend, runn),
			tr(2, 1, pend, runn), // duplicate: task is now RUNNING
		}},
		TransitionTasks{RunID: "nope", Items: []Transition{tr(0, 1, pend, runn), tr(1, 1, pend, runn)}},
	)
	type key struct{ cmd, item int }
	got := map[key]string{}
	for _, r := range resp.rejected {
		got[key{r.Cmd, r.Item}] = r.Reason
	}
	want := []key{{0, 0}, {1, 2}, {1, 4}, {2, 0}, {2, 1}}
	if len(got) != len(want) {
		t.Fatalf("rejections %+v", resp.rejected)
	}
	for _, k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("missing rejection %+v in %+v", k, resp.rejected)
		}
	}
	if !strings.Contains(got[key{2, 0}], "not found") {
		t.Errorf("unknown run reason %q", got[key{2, 0}])
	}
	if s := f.task(t, "r1", 0).State; s != succ {
		t.Errorf("task 0 %s", s)
	}
	if s := f.task(t, "r1", 1).State; s != pend {
		t.Errorf("task 1 %s", s)
	}
	if tk := f.task(t, "r1", 2); tk.State != runn || len(tk.Attempts) != 1 {
		t.Errorf("task 2 %+v", tk)
	}
}

// TestFSM_TaskPagesAreFilled: a run's task records, written in key order
// in one commit (its creation), fill their pages to about tasksFill, not
// to bbolt's default of half: half-full pages would double what a large
// run writes and holds in memory while committing. A wave of
// transitions rewriting half of them (at bbolt's default, which leaves
// room for records that grow) keeps most of that.
func TestFSM_TaskPagesAreFilled(t *testing.T) {
	f := newTestFSM(t)
	const n = 20000
	f.mustAccept(t, newRun("r1", n))
	fill := func() float64 {
		var st bolt.BucketStats
		if err := f.db.View(func(tx *bolt.Tx) error { st = tx.Bucket(bucketTasks).Stats(); return nil }); err != nil {
			t.Fatal(err)
		}
		return float64(st.LeafInuse) / float64(st.LeafAlloc)
	}
	if got := fill(); got < 0.8 {
		t.Errorf("after the run's creation its task pages are %.0f%% full, want at least 80%%", 100*got)
	}
	items := make([]Transition, 0, n/2)
	for i := 0; i < n/2; i++ {
		items = append(items, Transition{Task: i, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: fmt.Sprintf("r1-%d-1", i), Executor: "sim"})
	}
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: items})
	if got := fill(); got < 0.6 {
		t.Errorf("after a wave of transitions the task pages are %.0f%% full, want at least 60%%", 100*got)
	}
}

// TestChange_TaskMemo: an entry that assigns executions reads back the
// tasks its transitions wrote without decoding them again, and never a
// stale one: a record written since (by any path) is read from the store.
func TestChange_TaskMemo(t *testing.T) {
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r1", 2))
	err := f.db.Update(func(tx *bolt.Tx) error {
		ch := &Change{memoTasks: true}
		tk, err := getTaskTx(tx, "r1", 0)
		if err != nil {
			return err
		}
		tk.Name = "as the entry wrote it"
		if err := ch.putTask(tx, &tk); err != nil {
			return err
		}
		got, err := ch.task(tx, "r1", 0)
		if err != nil {
			return err
		}
		if got.Name != tk.Name {
			return fmt.Errorf("read back %q, want %q", got.Name, tk.Name)
		}
		if m := ch.tasks[string(taskKey("r1", 0))]; m.t != &tk {
			return fmt.Errorf("the memo does not hold the written task")
		}
		// Written again, not through the memo: the memo is stale.
		tk.Name = "the memo's"
		fresh := tk
		fresh.Name = "written since"
		if err := putTaskTx(tx, &fresh); err != nil {
			return err
		}
		if got, err = ch.task(tx, "r1", 0); err != nil || got.Name != "written since" {
			return fmt.Errorf("after a later write read %q (%v), want %q", got.Name, err, "written since")
		}
		// A task the entry did not write is read from the store.
		if got, err = ch.task(tx, "r1", 1); err != nil || got.Index != 1 {
			return fmt.Errorf("task 1: %+v, %v", got, err)
		}
		if _, err = ch.task(tx, "r1", 5); !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("task 5: %v, want ErrNotFound", err)
		}
		// Without memoTasks (an entry with no assignment) nothing is kept.
		plain := &Change{}
		if err := plain.putTask(tx, &fresh); err != nil {
			return err
		}
		if plain.tasks != nil {
			return fmt.Errorf("an entry without assignments kept %d tasks", len(plain.tasks))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
