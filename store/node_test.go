package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

func testNode(id string) Node {
	return Node{ID: id, Capacity: spec.Resources{MilliCPU: 4000, MemoryBytes: 1 << 30}, Executors: []string{"sim"}}
}

// workerFixture: node n1 at epoch 1 holds the assignment of run r1's task
// 0, attempt 1 (execution r1-0-1).
func workerFixture(t *testing.T) *testFSM {
	t.Helper()
	f := newTestFSM(t)
	f.mustAccept(t, RegisterNode{Node: testNode("n1"), Epoch: 1, Time: t0}, RegisterNode{Node: testNode("n2"), Epoch: 1, Time: t0},
		newRun("r1", 2))
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r1-0-1"}}})
	f.mustAccept(t, AssignExecution{Assignment: Assignment{ExecutionID: "r1-0-1", RunID: "r1", Task: 0, Attempt: 1, NodeID: "n1", Epoch: 1, Executor: "sim", AssignedAt: t0}})
	return f
}

func (f *testFSM) getAssignment(t *testing.T, id string) (Assignment, bool) {
	t.Helper()
	var a Assignment
	var found bool
	err := f.view(func(tx *bolt.Tx) (err error) { a, found, err = getAssignmentTx(tx, id); return })
	if err != nil {
		t.Fatal(err)
	}
	return a, found
}

func (f *testFSM) mustAssignment(t *testing.T, id string) Assignment {
	t.Helper()
	a, found := f.getAssignment(t, id)
	if !found {
		t.Fatalf("no assignment %s", id)
	}
	return a
}

func wantRejected(t *testing.T, r *applyResponse, substr string) {
	t.Helper()
	if len(r.rejected) != 1 || !strings.Contains(r.rejected[0].Reason, substr) {
		t.Fatalf("want one rejection containing %q, got %+v", substr, r.rejected)
	}
}

func TestFSM_ReportFencing(t *testing.T) {
	exit := &Exit{Outcome: OutcomeSucceeded, Time: t0, Outputs: map[string]spec.Value{"x": {Param: []byte(`1`)}}}
	t.Run("stale epoch rejected", func(t *testing.T) {
		f := workerFixture(t)
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 2, Exit: exit, Time: t0}), "stale epoch")
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 0, Started: true, Time: t0}), "stale epoch")
	})
	t.Run("node that does not hold the assignment rejected", func(t *testing.T) {
		f := workerFixture(t)
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n2", Epoch: 1, Exit: exit, Time: t0}), "does not hold")
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-1-1", NodeID: "n1", Epoch: 1, Started: true, Time: t0}), "does not hold")
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "ghost", Epoch: 1, Started: true, Time: t0}), "not registered")
	})
	t.Run("holder reports start then exit once", func(t *testing.T) {
		f := workerFixture(t)
		f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Started: true, Time: t0})
		f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: exit, Time: t0.Add(time.Second)})
		a := f.mustAssignment(t, "r1-0-1")
		if !a.StartedAt.Equal(t0) || a.Exit == nil || a.Exit.Outcome != OutcomeSucceeded || string(a.Exit.Outputs["x"].Param) != "1" {
			t.Fatalf("assignment: %+v", a)
		}
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: exit, Time: t0}), "already ended")
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: &Exit{Outcome: "weird"}, Time: t0}), "already ended")
	})
	t.Run("a registration in the same entry fences the reports after it", func(t *testing.T) {
		// The entry's reports share one decoded node record while it is
		// unchanged; the registration between them changes it.
		f := workerFixture(t)
		r := f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Started: true, Time: t0},
			RegisterNode{Node: testNode("n1"), Epoch: 2, Time: t0},
			ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: exit, Time: t0})
		if r.err != nil || len(r.rejected) != 1 || r.rejected[0].Cmd != 2 || !strings.Contains(r.rejected[0].Reason, "stale epoch") {
			t.Fatalf("want the report after the registration rejected as stale, got %v %+v", r.err, r.rejected)
		}
	})
	t.Run("unknown outcome rejected", func(t *testing.T) {
		f := workerFixture(t)
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: &Exit{Outcome: "lost"}, Time: t0}), "exit.outcome")
	})
	t.Run("re-registration loses what the old epoch held and fences it", func(t *testing.T) {
		f := workerFixture(t)
		wantRejected(t, f.apply(t, RegisterNode{Node: testNode("n1"), Epoch: 1, Time: t0}), "stale epoch 1")
		f.mustAccept(t, RegisterNode{Node: testNode("n1"), Epoch: 2, Time: t0})
		a := f.mustAssignment(t, "r1-0-1")
		if a.Exit == nil || a.Exit.Outcome != OutcomeLost || !strings.Contains(a.Exit.Reason, "restarted") {
			t.Fatalf("assignment after re-registration: %+v", a)
		}
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: exit, Time: t0}), "stale epoch")
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 2, Exit: exit, Time: t0}), "does not hold")
		wantRejected(t, f.apply(t, Heartbeat{NodeID: "n1", Epoch: 1, Time: t0}), "stale epoch")
	})
	t.Run("down node: lost, heartbeats and reports refused", func(t *testing.T) {
		f := workerFixture(t)
		f.mustAccept(t, Heartbeat{NodeID: "n1", Epoch: 1, Time: t0.Add(time.Second)})
		// A proposer that saw the old heartbeat loses to the newer one.
		wantRejected(t, f.apply(t, MarkNodeDown{NodeID: "n1", Epoch: 1, LastHeartbeat: t0, Time: t0.Add(time.Minute), Reason: "lapsed"}), "stale")
		f.mustAccept(t, MarkNodeDown{NodeID: "n1", Epoch: 1, LastHeartbeat: t0.Add(time.Second), Time: t0.Add(time.Minute), Reason: "heartbeat lapsed"})
		if a := f.mustAssignment(t, "r1-0-1"); a.Exit == nil || a.Exit.Outcome != OutcomeLost || !strings.Contains(a.Exit.Reason, "heartbeat lapsed") {
			t.Fatalf("assignment of a down node: %+v", a)
		}
		wantRejected(t, f.apply(t, Heartbeat{NodeID: "n1", Epoch: 1, Time: t0.Add(2 * time.Minute)}), "down")
		wantRejected(t, f.apply(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: exit, Time: t0}), "down")
	})
}

func TestFSM_AssignChecks(t *testing.T) {
	f := workerFixture(t)
	a := Assignment{ExecutionID: "r1-1-1", RunID: "r1", Task: 1, Attempt: 1, NodeID: "n2", Epoch: 1, Executor: "sim"}
	wantRejected(t, f.apply(t, AssignExecution{Assignment: a}), "not the current running attempt")
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 1, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r1-1-1"}}})
	for _, tc := range []struct {
		name   string
		edit   func(*Assignment)
		reason string
	}{
		{"stale epoch", func(a *Assignment) { a.Epoch = 7 }, "stale epoch"},
		{"executor not offered", func(a *Assignment) { a.Executor = "docker" }, "does not offer"},
		{"old attempt", func(a *Assignment) { a.ExecutionID, a.Attempt = "r1-1-0", 0 }, "not the current"},
		{"unknown node", func(a *Assignment) { a.NodeID = "ghost" }, "not registered"},
		{"already assigned", func(a *Assignment) { a.ExecutionID, a.Task = "r1-0-1", 0 }, "already assigned"},
	} {
		b := a
		tc.edit(&b)
		t.Run(tc.name, func(t *testing.T) { wantRejected(t, f.apply(t, AssignExecution{Assignment: b}), tc.reason) })
	}
	// Invariant 8: once the cancel is committed, nothing is assigned.
	f.mustAccept(t, RequestCancel{RunID: "r1", Time: t0})
	wantRejected(t, f.apply(t, AssignExecution{Assignment: a}), "cancelled or final")
}

// TestFSM_AssignSeesACancelInTheSameEntry: the assignments of one entry
// read their run once (a memo), but a cancel between them in the same
// entry still stops the ones after it.
func TestFSM_AssignSeesACancelInTheSameEntry(t *testing.T) {
	f := workerFixture(t)
	f.mustAccept(t, newRun("r2", 3))
	f.mustAccept(t, TransitionTasks{RunID: "r2", Items: []Transition{
		{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r2-0-1"},
		{Task: 1, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r2-1-1"},
		{Task: 2, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r2-2-1"},
	}})
	as := func(task int) AssignExecution {
		id := fmt.Sprintf("r2-%d-1", task)
		return AssignExecution{Assignment: Assignment{ExecutionID: id, RunID: "r2", Task: task, Attempt: 1, NodeID: "n2", Epoch: 1, Executor: "sim", AssignedAt: t0}}
	}
	r := f.apply(t, as(0), as(1), RequestCancel{RunID: "r2", Time: t0}, as(2))
	if len(r.rejected) != 1 || r.rejected[0].Cmd != 3 || !strings.Contains(r.rejected[0].Reason, "cancelled or final") {
		t.Fatalf("rejections %+v: want only the assignment after the cancel", r.rejected)
	}
	for task, want := range []bool{true, true, false} {
		if _, found := f.getAssignment(t, fmt.Sprintf("r2-%d-1", task)); found != want {
			t.Errorf("assignment of task %d: found %v, want %v", task, found, want)
		}
	}
}

func TestFSM_EndedAttemptDropsItsAssignment(t *testing.T) {
	f := workerFixture(t)
	sub := subscribeFSM(f, 10)
	f.mustAccept(t, CancelAssignment{ExecutionID: "r1-0-1", Time: t0})
	if a := f.mustAssignment(t, "r1-0-1"); !a.CancelRequested {
		t.Fatalf("cancel not recorded: %+v", a)
	}
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 0, Attempt: 1, From: spec.TaskRunning, To: spec.TaskCanceled, Time: t0}}})
	if _, found := f.getAssignment(t, "r1-0-1"); found {
		t.Fatal("the assignment of an ended attempt is still there")
	}
	got, _ := sub.Next()
	canceled := f.mustAssignmentAt(t, "r1-0-1", got, 0)
	want := []Change{
		{Index: 4, Assignments: []string{"r1-0-1"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*Assignment{canceled}},
		{Index: 5, Tasks: []TaskRef{{RunID: "r1", Task: 0}}, Assignments: []string{"r1-0-1"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*Assignment{nil}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("feed:\n got %+v\nwant %+v", got, want)
	}
	if !canceled.CancelRequested {
		t.Fatalf("the change of the cancel carries %+v", canceled)
	}
}

// mustAssignmentAt returns the assignment state of id that change i of
// changes carries.
func (f *testFSM) mustAssignmentAt(t *testing.T, id string, changes []Change, i int) *Assignment {
	t.Helper()
	if i >= len(changes) {
		t.Fatalf("%d changes, want at least %d", len(changes), i+1)
	}
	ch := &changes[i]
	for j, aid := range ch.Assignments {
		if aid != id {
			continue
		}
		a, ok := ch.AssignmentState(j)
		if !ok || a == nil {
			t.Fatalf("change %d does not carry the state of %s: %+v", i, id, ch)
		}
		return a
	}
	t.Fatalf("change %d does not name %s: %+v", i, id, ch)
	return nil
}

// TestFSM_ChangesCarryTheAssignmentsState: each change to an assignment
// carries its state as the entry left it, equal to what the store then
// holds (the spec only on the change that made it), and nil once dropped:
// workers and the dispatcher act on it without reading it back.
func TestFSM_ChangesCarryTheAssignmentsState(t *testing.T) {
	f := newTestFSM(t)
	f.mustAccept(t, RegisterNode{Node: testNode("n1"), Epoch: 1, Time: t0}, newRun("r1", 1))
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r1-0-1"}}})
	sub := subscribeFSM(f, 10)
	specJSON := []byte(`{"id":"r1-0-1","command":["true"]}`)
	steps := []Command{
		AssignExecution{Assignment: Assignment{ExecutionID: "r1-0-1", RunID: "r1", Task: 0, Attempt: 1, NodeID: "n1", Epoch: 1, Executor: "sim", AssignedAt: t0, Spec: specJSON}},
		ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Started: true, Time: t0.Add(time.Second)},
		ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: &Exit{Outcome: OutcomeSucceeded, Time: t0.Add(2 * time.Second)}, Time: t0.Add(2 * time.Second)},
	}
	for i, c := range steps {
		f.mustAccept(t, c)
		got, _ := sub.Next()
		a := f.mustAssignmentAt(t, "r1-0-1", got, 0)
		stored := f.mustAssignment(t, "r1-0-1")
		if i == 0 {
			if string(a.Spec) != string(specJSON) {
				t.Errorf("the assigning change carries spec %q, want %q", a.Spec, specJSON)
			}
			stored.Spec = a.Spec
		}
		if !reflect.DeepEqual(*a, stored) {
			t.Errorf("step %d: the change carries\n %+v\nthe store holds\n %+v", i, *a, stored)
		}
	}
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 0, Attempt: 1, From: spec.TaskRunning, To: spec.TaskSucceeded, Time: t0.Add(3 * time.Second)}}})
	got, _ := sub.Next()
	if len(got) != 1 || len(got[0].Assignments) != 1 {
		t.Fatalf("the end's changes: %+v", got)
	}
	if a, ok := got[0].AssignmentState(0); !ok || a != nil {
		t.Fatalf("the dropping change carries %+v (%v), want nil", a, ok)
	}
	if n := got[0].AssignmentNodes; len(n) != 1 || n[0] != "n1" {
		t.Errorf("the dropping change names nodes %q, want [n1]", n)
	}
	if err := f.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketAssignmentSpecs).Get([]byte("r1-0-1")); v != nil {
			return fmt.Errorf("the dropped assignment's spec is still stored: %q", v)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestAssignmentNodeID: the node of a stored assignment, read without
// decoding the rest, from a binary record and from a JSON one (a data dir
// from before the binary form); a damaged record is an error.
func TestAssignmentNodeID(t *testing.T) {
	a := Assignment{ExecutionID: "r1-0-1", RunID: "r1", Task: 0, Attempt: 1, NodeID: "n2", Epoch: 3, Executor: "sim",
		AssignedAt: t0, Exit: &Exit{Outcome: OutcomeSucceeded, Outputs: map[string]spec.Value{"x": {Param: []byte(`"y"`)}}}}
	bin, err := encodeAssignmentRecord(&a)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{"binary": bin, "json": js} {
		if got, err := assignmentNodeID(rec); err != nil || got != "n2" {
			t.Errorf("%s: node %q, %v; want n2", name, got, err)
		}
	}
	if got, err := assignmentNodeID(bin[:12]); err == nil {
		t.Errorf("a truncated record read as node %q", got)
	}
}

// FuzzApplyWorkerCommands: whatever a worker (or a node passing its
// commands on) sends, decoding and applying it never panics or halts the
// state machine: a bad command is rejected.
func FuzzApplyWorkerCommands(f *testing.F) {
	exit := &Exit{Outcome: OutcomeFailed, ExitCode: 2, Reason: "x", Time: t0}
	for _, cmds := range [][]Command{
		{RegisterNode{Node: testNode("n1"), Epoch: 3, Time: t0}},
		{Heartbeat{NodeID: "n1", Epoch: 1, Time: t0}},
		{ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Started: true, Exit: exit, Time: t0}},
		{MarkNodeDown{NodeID: "n1", Epoch: 1, LastHeartbeat: t0, Time: t0, Reason: "r"}, CancelAssignment{ExecutionID: "r1-0-1", Time: t0}},
		{RecordHolders{NodeID: "n1", Add: []string{"sha256:" + strings.Repeat("ab", 32)}, Drop: []string{"sha256:../x"}, Time: t0}},
	} {
		data, err := EncodeCommands(cmds...)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmds, err := DecodeCommands(data)
		if err != nil || len(cmds) == 0 {
			return
		}
		enc, err := EncodeCommands(cmds...)
		if err != nil {
			return // refused before it is proposed
		}
		fx := workerFixture(t)
		r := fx.Apply(&raft.Log{Index: fx.next, Term: 1, Type: raft.LogCommand, Data: enc}).(*applyResponse)
		if r.err != nil {
			t.Fatalf("the state machine halted on %q: %v", data, r.err)
		}
	})
}

// TestFSM_AssignmentSpecKeptApart: the spec is written once, apart from
// the assignment record that reports rewrite; public reads return it
// whole; an assignment written inline (before the spec bucket) still
// reads; the spec goes with its assignment.
func TestFSM_AssignmentSpecKeptApart(t *testing.T) {
	f := newTestFSM(t)
	f.mustAccept(t, RegisterNode{Node: testNode("n1"), Epoch: 1, Time: t0}, newRun("r1", 2))
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 0, Attempt: 1, From: spec.TaskPending, To: spec.TaskRunning, Time: t0, ExecutionID: "r1-0-1"}}})
	specJSON := `{"ID":"r1-0-1","Command":["true"]}`
	f.mustAccept(t, AssignExecution{Assignment: Assignment{ExecutionID: "r1-0-1", RunID: "r1", Task: 0, Attempt: 1, NodeID: "n1", Epoch: 1, Executor: "sim", Spec: []byte(specJSON), AssignedAt: t0}})
	f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Started: true, Time: t0})
	err := f.view(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketAssignments).Get([]byte("r1-0-1"))
		if strings.Contains(string(rec), "Command") || strings.Contains(string(rec), `"spec"`) {
			t.Errorf("the assignment record carries the spec: %s", rec)
		}
		if got := tx.Bucket(bucketAssignmentSpecs).Get([]byte("r1-0-1")); string(got) != specJSON {
			t.Errorf("spec bucket: %s", got)
		}
		a, _, err := getAssignmentTx(tx, "r1-0-1")
		withSpecTx(tx, &a)
		if err != nil || string(a.Spec) != specJSON || a.StartedAt.IsZero() {
			t.Errorf("read with spec: %+v, %v", a, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// A record from before the spec bucket: spec inline.
	err = f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAssignments).Put([]byte("old-0-1"), []byte(`{"execution_id":"old-0-1","node_id":"n1","spec":{"ID":"old-0-1"}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.view(func(tx *bolt.Tx) error {
		a, found, err := getAssignmentTx(tx, "old-0-1")
		withSpecTx(tx, &a)
		if err != nil || !found || string(a.Spec) != `{"ID":"old-0-1"}` {
			t.Errorf("inline spec: %+v %v %v", a, found, err)
		}
		return nil
	})
	// The attempt ends: its assignment and its spec go.
	f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Exit: &Exit{Outcome: OutcomeSucceeded, Time: t0}, Time: t0})
	f.mustAccept(t, TransitionTasks{RunID: "r1", Items: []Transition{{Task: 0, Attempt: 1, From: spec.TaskRunning, To: spec.TaskSucceeded, Time: t0}}})
	_ = f.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketAssignments).Get([]byte("r1-0-1")) != nil || tx.Bucket(bucketAssignmentSpecs).Get([]byte("r1-0-1")) != nil {
			t.Error("the ended attempt's assignment or spec is still stored")
		}
		return nil
	})
}

// A waiting reason a worker reports lands on the attempt in the task
// record (what the API and the UI read), changes only when it changes, and
// is cleared when the execution starts.
func TestFSM_WaitingReasonOnAttempt(t *testing.T) {
	f := workerFixture(t)
	waiting := func() string {
		tk := f.task(t, "r1", 0)
		return tk.Attempts[len(tk.Attempts)-1].Waiting
	}
	why := "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
	f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Waiting: why, Time: t0})
	if got := waiting(); got != why {
		t.Fatalf("attempt waiting = %q, want %q", got, why)
	}
	if got := f.mustAssignment(t, "r1-0-1").Waiting; got != why {
		t.Fatalf("assignment waiting = %q", got)
	}
	f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Waiting: "ImagePullBackOff: image x:1", Time: t0})
	if got := waiting(); got != "ImagePullBackOff: image x:1" {
		t.Fatalf("attempt waiting after a new reason = %q", got)
	}
	// Another task is untouched.
	if tk := f.task(t, "r1", 1); len(tk.Attempts) != 0 {
		t.Fatalf("task 1: %+v", tk)
	}
	f.mustAccept(t, ReportExecution{ExecutionID: "r1-0-1", NodeID: "n1", Epoch: 1, Started: true, Time: t0.Add(time.Second)})
	if got := waiting(); got != "" {
		t.Fatalf("attempt waiting after start = %q, want none", got)
	}
}

// TestChange_NodeMemo: an entry whose commands alternate between nodes
// keeps each node's record decoded, and never a stale one.
func TestChange_NodeMemo(t *testing.T) {
	f := newTestFSM(t)
	f.mustAccept(t, RegisterNode{Node: testNode("n1"), Epoch: 1, Time: t0}, RegisterNode{Node: testNode("n2"), Epoch: 1, Time: t0})
	err := f.db.Update(func(tx *bolt.Tx) error {
		ch := &Change{}
		for _, id := range []string{"n1", "n2", "n1", "n2"} {
			if n, found, err := ch.node(tx, id); err != nil || !found || n.ID != id {
				return fmt.Errorf("node %s: %+v %v %v", id, n, found, err)
			}
		}
		if len(ch.nodes) != 2 {
			return fmt.Errorf("the entry keeps %d nodes decoded, want 2", len(ch.nodes))
		}
		n1 := ch.nodes["n1"].node
		n1.Epoch = 7
		if err := putNodeTx(tx, &n1); err != nil {
			return err
		}
		if n, _, err := ch.node(tx, "n1"); err != nil || n.Epoch != 7 {
			return fmt.Errorf("after a write n1 reads at epoch %d (%v), want 7", n.Epoch, err)
		}
		if n, found, err := ch.node(tx, "n3"); err != nil || found {
			return fmt.Errorf("n3: %+v %v %v, want not found", n, found, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
