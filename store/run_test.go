package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

func TestCreateRun_Rejections(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	first := newRun("r1", 2)
	first.Run.RequestID = "req-1"
	f.mustAccept(t, first)

	cases := []struct {
		name   string
		cmd    CreateRun
		reject string
	}{
		{"duplicate id", newRun("r1", 1), "already exists"},
		{"empty id", newRun("", 1), "empty run id"},
		{"nul in id", newRun("a\x00b", 1), "NUL"},
		{"duplicate request id", func() CreateRun { c := newRun("r2", 1); c.Run.RequestID = "req-1"; return c }(), `request id "req-1" already created run "r1"`},
	}
	for _, tc := range cases {
		resp := f.apply(t, tc.cmd)
		if len(resp.rejected) != 1 || !strings.Contains(resp.rejected[0].Reason, tc.reject) {
			t.Errorf("%s: rejections %+v, want %q", tc.name, resp.rejected, tc.reject)
		}
	}
	r := f.run(t, "r1")
	if r.TaskCount != 2 || string(r.Plan) != `{"name":"p"}` || r.RequestID != "req-1" {
		t.Errorf("run %+v", r)
	}
	if tk := f.task(t, "r1", 1); tk.Name != "task-1" || tk.State != spec.TaskPending || tk.RunID != "r1" || tk.Index != 1 {
		t.Errorf("task %+v", tk)
	}
}

func TestSetRunState_Rules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		setup   []Command
		cmd     SetRunState
		reject  string
		want    spec.RunState
		started bool
	}{
		{name: "pending to running sets StartedAt", cmd: SetRunState{From: spec.RunPending, To: spec.RunRunning}, want: spec.RunRunning, started: true},
		{name: "running to succeeded", setup: []Command{SetRunState{RunID: "r", From: spec.RunPending, To: spec.RunRunning, Time: t0}},
			cmd: SetRunState{From: spec.RunRunning, To: spec.RunSucceeded}, want: spec.RunSucceeded, started: true},
		{name: "stale from", cmd: SetRunState{From: spec.RunRunning, To: spec.RunSucceeded}, reject: "stale: run", want: spec.RunPending},
		{name: "final run", setup: []Command{SetRunState{RunID: "r", From: spec.RunPending, To: spec.RunFailed, Time: t0}},
			cmd: SetRunState{From: spec.RunFailed, To: spec.RunRunning}, reject: "already FAILED", want: spec.RunFailed},
		{name: "canceling cannot resume", setup: []Command{RequestCancel{RunID: "r", Time: t0}},
			cmd: SetRunState{From: spec.RunCanceling, To: spec.RunRunning}, reject: "cancel requested", want: spec.RunCanceling},
		{name: "canceling to canceled", setup: []Command{RequestCancel{RunID: "r", Time: t0}},
			cmd: SetRunState{From: spec.RunCanceling, To: spec.RunCanceled}, want: spec.RunCanceled},
		{name: "unknown run", cmd: SetRunState{RunID: "zz", From: spec.RunPending, To: spec.RunRunning}, reject: "not found", want: spec.RunPending},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newTestFSM(t)
			c := newRun("r", 1)
			c.Run.State = spec.RunPending
			f.mustAccept(t, c)
			if len(tc.setup) > 0 {
				f.mustAccept(t, tc.setup...)
			}
			if tc.cmd.RunID == "" {
				tc.cmd.RunID = "r"
			}
			tc.cmd.Time, tc.cmd.Error = t0.Add(time.Hour), "e"
			resp := f.apply(t, tc.cmd)
			if (tc.reject == "") != (len(resp.rejected) == 0) || (tc.reject != "" && !strings.Contains(resp.rejected[0].Reason, tc.reject)) {
				t.Fatalf("rejections %+v, want %q", resp.rejected, tc.reject)
			}
			r := f.run(t, "r")
			if r.State != tc.want || r.StartedAt.IsZero() == tc.started {
				t.Errorf("run %+v", r)
			}
			if r.State.Final() && r.FinishedAt.IsZero() {
				t.Errorf("final run without FinishedAt")
			}
		})
	}
}

func TestRequestCancel_Rules(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 1), newRun("done", 1))
	f.mustAccept(t, SetRunState{RunID: "done", From: spec.RunRunning, To: spec.RunSucceeded, Time: t0})
	f.mustAccept(t, RequestCancel{RunID: "r", Time: t0})
	if r := f.run(t, "r"); r.State != spec.RunCanceling || !r.CancelRequested {
		t.Errorf("run %+v", r)
	}
	f.mustAccept(t, RequestCancel{RunID: "r", Time: t0}) // idempotent while canceling
	for _, id := range []string{"done", "nope"} {
		if resp := f.apply(t, RequestCancel{RunID: id, Time: t0}); len(resp.rejected) != 1 {
			t.Errorf("cancel %s accepted", id)
		}
	}
}

func TestStore_Queries(t *testing.T) {
	t.Parallel()
	s := openTestStore(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	var cmds []Command
	for i, id := range []string{"abc1", "abc2", "abd", "b"} {
		c := newRun(id, 3)
		c.Run.CreatedAt = t0.Add(time.Duration(i%3) * time.Hour) // "b" ties with "abc1"
		c.Run.RequestID = "req-" + id
		cmds = append(cmds, c)
	}
	res, err := s.Apply(ctx, cmds...)
	if err != nil || len(res.Rejected) > 0 || res.Index == 0 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if _, err := s.Apply(ctx, SetRunState{RunID: "abd", From: spec.RunRunning, To: spec.RunFailed, Time: t0}); err != nil {
		t.Fatal(err)
	}
	if s.AppliedIndex() < res.Index+1 {
		t.Errorf("applied index %d", s.AppliedIndex())
	}

	if r, err := s.FindRun("abd"); err != nil || r.ID != "abd" {
		t.Errorf("FindRun exact: %v %v", r.ID, err)
	}
	if r, err := s.FindRun("abc2"); err != nil || r.ID != "abc2" || string(r.Plan) == "" {
		t.Errorf("FindRun exact: %+v %v", r, err)
	}
	if r, err := s.FindRun("ab"); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("FindRun ab: %v %v", r.ID, err)
	}
	if r, err := s.FindRun("abd"[:2] + "d"); err != nil || r.ID != "abd" {
		t.Errorf("FindRun prefix: %v %v", r.ID, err)
	}
	if _, err := s.FindRun("x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindRun x: %v", err)
	}
	if _, err := s.GetRun("ab"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun ab: %v", err)
	}
	if r, err := s.RunByRequestID("req-b"); err != nil || r.ID != "b" {
		t.Errorf("RunByRequestID: %v %v", r.ID, err)
	}
	if _, err := s.RunByRequestID("req-x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RunByRequestID x: %v", err)
	}
	runs, err := s.ListRuns()
	if got := ids(runs); err != nil || got != "abd abc2 abc1 b" {
		t.Errorf("ListRuns = %q %v", got, err)
	}
	runs, err = s.UnfinishedRuns()
	if got := ids(runs); err != nil || got != "abc2 abc1 b" {
		t.Errorf("UnfinishedRuns = %q %v", got, err)
	}
	tasks, err := s.Tasks("abc1")
	if err != nil || len(tasks) != 3 || tasks[2].Index != 2 || tasks[2].RunID != "abc1" {
		t.Errorf("Tasks: %+v %v", tasks, err)
	}
	if _, err := s.Tasks("abc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tasks of a prefix: %v", err)
	}
	if _, err := s.Task("abc1", 3); !errors.Is(err, ErrNotFound) {
		t.Errorf("Task 3: %v", err)
	}
	// Records are copies.
	r1, _ := s.GetRun("b")
	r1.Plan[0] = 'X'
	if r2, _ := s.GetRun("b"); r2.Plan[0] == 'X' {
		t.Error("GetRun shares its plan bytes")
	}
}

func ids(runs []Run) string {
	var s []string
	for _, r := range runs {
		s = append(s, r.ID)
	}
	return strings.Join(s, " ")
}
