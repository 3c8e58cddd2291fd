package store

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
)

// TestStoredJSON_EnumsAreCodes: the log and state.db hold states as codes;
// the public JSON of the same records keeps the names.
func TestStoredJSON_EnumsAreCodes(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 2), TransitionTasks{RunID: "r", Items: []Transition{tr(0, 1, pend, runn)}})
	var run, task string
	err := f.view(func(tx *bolt.Tx) error {
		run = string(tx.Bucket(bucketRuns).Get([]byte("r")))
		task = string(tx.Bucket(bucketTasks).Get(taskKey("r", 0)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(run, `"state":1`) || strings.Contains(run, "RUNNING") {
		t.Errorf("stored run: %s", run)
	}
	// Task records are binary (binary.go): a state is its code byte.
	if len(task) < 2 || task[0] != taskRecordMagic || strings.Contains(task, "RUNNING") {
		t.Errorf("stored task: %q", task)
	}
	data, err := encodeBatch([]Command{SetRunState{RunID: "r", From: spec.RunRunning, To: spec.RunSucceeded}})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(data); !strings.Contains(s, `"from":1,"to":2`) || strings.Contains(s, "RUNNING") {
		t.Errorf("encoded command: %q", s)
	}
	pub, _ := json.Marshal(f.run(t, "r"))
	if !strings.Contains(string(pub), `"state":"RUNNING"`) {
		t.Errorf("public JSON of a run: %s", pub)
	}
	got := f.task(t, "r", 0)
	if got.State != spec.TaskRunning || len(got.Attempts) != 1 || got.Attempts[0].State != spec.TaskRunning {
		t.Errorf("task read back: %+v", got)
	}
	if f.task(t, "r", 1).Attempts != nil {
		t.Error("a task without attempts reads back with an empty, non-nil list")
	}
}

// TestStoredJSON_SchemaOneNamesStillDecode: data written before the codes
// (log entries and records with state names) still reads.
func TestStoredJSON_SchemaOneNamesStillDecode(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	legacy := func(typ CommandType, payload string) []byte {
		b := []byte{batchFormat, byte(typ), 1, byte(len(payload))}
		return append(b, payload...)
	}
	entries := [][]byte{
		legacy(TypeCreateRun, `{"run":{"id":"old","state":"RUNNING","task_count":0},"task_names":["a"]}`),
		legacy(TypeTransitionTasks, `{"run_id":"old","items":[{"task":0,"attempt":1,"from":"PENDING","to":"RUNNING"}]}`),
		legacy(TypeSetRunState, `{"run_id":"old","from":"RUNNING","to":"FAILED","error":"x"}`),
	}
	for _, e := range entries {
		r := f.Apply(&raft.Log{Index: f.next, Term: 1, Type: raft.LogCommand, Data: e}).(*applyResponse)
		f.next++
		if r.err != nil || len(r.rejected) > 0 {
			t.Fatalf("legacy entry %s: %+v %v", e, r.rejected, r.err)
		}
	}
	if r := f.run(t, "old"); r.State != spec.RunFailed {
		t.Errorf("run state %s", r.State)
	}
	if tk := f.task(t, "old", 0); tk.State != spec.TaskRunning || tk.Attempts[0].State != spec.TaskRunning {
		t.Errorf("task %+v", tk)
	}
	// A schema-1 record, as the first release wrote it.
	err := f.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).Put(taskKey("old", 0), []byte(`{"run_id":"old","index":0,"name":"a","state":"SUCCEEDED","attempts":[{"n":1,"state":"SUCCEEDED"}]}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if tk := f.task(t, "old", 0); tk.State != spec.TaskSucceeded || tk.Attempts[0].State != spec.TaskSucceeded {
		t.Errorf("schema-1 task %+v", tk)
	}
}

// TestApply_UnknownStateIsRefusedBeforeItIsProposed: an out-of-range state
// once encoded as a name the decoder rejected, halting the FSM for good.
// Now Apply refuses it naming the field, and the store goes on.
func TestApply_UnknownStateIsRefusedBeforeItIsProposed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	ctx := context.Background()
	fill(t, s, "r", 1)
	before := s.AppliedIndex()
	_, err := s.Apply(ctx, SetRunState{RunID: "ra", From: spec.RunRunning, To: spec.RunState(9)})
	if err == nil || !strings.Contains(err.Error(), "to: unknown run state 9") {
		t.Fatalf("apply of state 9: %v", err)
	}
	_, err = s.Apply(ctx, TransitionTasks{RunID: "ra", Items: []Transition{tr(2, 1, pend, runn), tr(2, 1, runn, spec.TaskState(7))}})
	if err == nil || !strings.Contains(err.Error(), "items[1].to: unknown task state 7") {
		t.Fatalf("apply of task state 7: %v", err)
	}
	if s.AppliedIndex() != before {
		t.Errorf("a refused command reached the log: applied %d -> %d", before, s.AppliedIndex())
	}
	fill(t, s, "s", 1)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTestStore(t, dir)
	defer s.Close()
	if _, err := s.GetRun("sa"); err != nil {
		t.Fatal(err)
	}
}

// TestFSM_UnknownStateCodeInTheLogIsRejectedNotHalting: a code without a
// state (from a hand-made or damaged entry) decodes; the FSM rejects the
// command and goes on.
func TestFSM_UnknownStateCodeInTheLogIsRejectedNotHalting(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 1))
	payload := `{"run_id":"r","from":1,"to":9}`
	data := append([]byte{batchFormat, byte(TypeSetRunState), 1, byte(len(payload))}, payload...)
	r := f.Apply(&raft.Log{Index: f.next, Term: 1, Type: raft.LogCommand, Data: data}).(*applyResponse)
	f.next++
	if r.err != nil || len(r.rejected) != 1 {
		t.Fatalf("state code 9: %+v %v", r.rejected, r.err)
	}
	f.mustAccept(t, SetRunState{RunID: "r", From: spec.RunRunning, To: spec.RunSucceeded})
}

// TestSchema_VersionOneIsMigrated: a schema-1 state.db opens and is
// marked version 2 (so that a binary that writes names refuses it).
func TestSchema_VersionOneIsMigrated(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchemaVersion, u64(1))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	db, err = openStateDB(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v []byte
	_ = db.View(func(tx *bolt.Tx) error { v = tx.Bucket(bucketMeta).Get(keySchemaVersion); return nil })
	if string(v) != string(u64(schemaVersion)) {
		t.Errorf("schema version after open: %v", v)
	}
}

// TestFSM_ACommandThatCannotBeWrittenIsRejectedNotHalting: a command that
// decodes but whose handler fails (a run id longer than bbolt's largest
// key) once halted the FSM at every open. It is rejected; the entries
// around it apply.
func TestFSM_ACommandThatCannotBeWrittenIsRejectedNotHalting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := openTestStore(t, dir)
	ctx := context.Background()
	huge := newRun(strings.Repeat("x", bolt.MaxKeySize+1), 1)
	res, err := s.Apply(ctx, newRun("before", 1), huge, newRun("after", 1))
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Cmd != 1 || !strings.Contains(res.Rejected[0].Reason, "cannot be applied") {
		t.Fatalf("rejections: %+v", res.Rejected)
	}
	fill(t, s, "n", 1)
	s.Close()
	s = openTestStore(t, dir)
	defer s.Close()
	for _, id := range []string{"before", "after", "na"} {
		if _, err := s.GetRun(id); err != nil {
			t.Errorf("run %s: %v", id, err)
		}
	}
}
