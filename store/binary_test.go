package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	bolt "go.etcd.io/bbolt"
	"pgregory.net/rapid"
)

func genTime(t *rapid.T, label string) time.Time {
	if rapid.Bool().Draw(t, label+"_zero") {
		return time.Time{}
	}
	ns := rapid.Int64Range(0, 4e18).Draw(t, label)
	zones := []*time.Location{time.UTC, time.FixedZone("", 2*3600), time.FixedZone("", -7*3600-1800)}
	return time.Unix(0, ns).In(zones[rapid.IntRange(0, len(zones)-1).Draw(t, label+"_zone")])
}

func genRef(t *rapid.T, label string) *spec.ArtifactRef {
	if rapid.Bool().Draw(t, label) {
		return nil
	}
	return &spec.ArtifactRef{Digest: "sha256:" + rapid.StringMatching(`[0-9a-f]{0,8}`).Draw(t, label+"_d"), Size: rapid.Int64Min(0).Draw(t, label+"_size")}
}

func genOutputs(t *rapid.T, label string) map[string]spec.Value {
	n := rapid.IntRange(0, 3).Draw(t, label)
	if n == 0 {
		return nil
	}
	m := map[string]spec.Value{}
	for i := range n {
		k := rapid.String().Draw(t, fmt.Sprintf("%s_k%d", label, i))
		if ref := genRef(t, fmt.Sprintf("%s_a%d", label, i)); ref != nil {
			m[k] = spec.Value{Artifact: ref}
		} else {
			m[k] = spec.Value{Param: json.RawMessage(fmt.Sprint(rapid.Int().Draw(t, fmt.Sprintf("%s_p%d", label, i))))}
		}
	}
	return m
}

func genTask(t *rapid.T) Task {
	tk := Task{
		RunID: rapid.String().Draw(t, "run"), Index: rapid.IntRange(0, 1<<31-1).Draw(t, "index"),
		Name: rapid.String().Draw(t, "name"), State: spec.TaskState(rapid.Uint8().Draw(t, "state")),
		Outputs: genOutputs(t, "outputs"), Error: rapid.String().Draw(t, "error"),
		StartedAt: genTime(t, "started"), FinishedAt: genTime(t, "finished"),
		CacheKey: rapid.String().Draw(t, "cache_key"), CachedFrom: rapid.String().Draw(t, "cached_from"),
	}
	for i := range rapid.IntRange(0, 4).Draw(t, "attempts") {
		l := fmt.Sprintf("a%d", i)
		tk.Attempts = append(tk.Attempts, Attempt{
			N: rapid.IntRange(-5, 1000).Draw(t, l+"n"), ExecutionID: rapid.String().Draw(t, l+"exec"),
			Executor: rapid.String().Draw(t, l+"executor"), State: spec.TaskState(rapid.Uint8().Draw(t, l+"state")),
			StartedAt: genTime(t, l+"started"), FinishedAt: genTime(t, l+"finished"),
			Error: rapid.String().Draw(t, l+"error"), Logs: genRef(t, l+"logs"), Waiting: rapid.String().Draw(t, l+"waiting"),
		})
	}
	return tk
}

func genTransitions(t *rapid.T) TransitionTasks {
	c := TransitionTasks{RunID: rapid.String().Draw(t, "run")}
	for i := range rapid.IntRange(0, 5).Draw(t, "items") {
		l := fmt.Sprintf("i%d", i)
		it := Transition{
			Task: rapid.IntRange(-1, 1<<31-1).Draw(t, l+"task"), Attempt: rapid.IntRange(0, 100).Draw(t, l+"attempt"),
			From: spec.TaskState(rapid.Uint8().Draw(t, l+"from")), To: spec.TaskState(rapid.Uint8().Draw(t, l+"to")),
			Time: genTime(t, l+"time"), ExecutionID: rapid.String().Draw(t, l+"exec"), Executor: rapid.String().Draw(t, l+"executor"),
			Outputs: genOutputs(t, l+"outputs"), Error: rapid.String().Draw(t, l+"error"), Logs: genRef(t, l+"logs"),
			CacheKey: rapid.String().Draw(t, l+"key"), CachedFrom: rapid.String().Draw(t, l+"from_exec"),
		}
		if rapid.Bool().Draw(t, l+"expand") {
			it.Expand = &Expansion{Task: it.Task, Base: rapid.IntRange(0, 1000).Draw(t, l+"base"), Count: rapid.IntRange(0, 100).Draw(t, l+"count"),
				Loop: rapid.Bool().Draw(t, l+"loop"), Names: rapid.SliceOfN(rapid.String(), 1, 3).Draw(t, l+"names")}
		}
		c.Items = append(c.Items, it)
	}
	return c
}

// sameJSON fails unless a and b have the same public JSON (times compared
// with their offsets, as the API shows them).
func sameJSON(t *rapid.T, what string, a, b any) {
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ja, jb) {
		t.Fatalf("%s changed in a round trip:\n%s\n%s", what, ja, jb)
	}
}

// TestBinaryTask_RoundTrips: every task record reads back as it was
// written, in the binary form and in the JSON form it replaced.
func TestBinaryTask_RoundTrips(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		tk := genTask(t)
		b, err := encodeTask(&tk)
		if err != nil {
			t.Fatal(err)
		}
		var back Task
		if err := decodeTask(b, &back); err != nil {
			t.Fatalf("decode: %v", err)
		}
		sameJSON(t, "binary task record", tk, back)
		js, err := json.Marshal(storedTask(&tk))
		if err != nil {
			t.Fatal(err)
		}
		var fromJSON Task
		if err := decodeTask(js, &fromJSON); err != nil {
			t.Fatalf("decode a JSON record: %v", err)
		}
		sameJSON(t, "JSON task record", tk, fromJSON)
		// Every truncation fails cleanly.
		for n := range len(b) {
			if err := decodeTask(b[:n], &back); err == nil {
				t.Fatalf("a record cut to %d of %d bytes decoded", n, len(b))
			}
		}
	})
}

// TestBinaryTask_RecordIsItsOwnAndTight: a record shares no bytes with
// the next one encoded (the scratch buffer is reused), and takes one
// allocation of about its own size: bbolt holds every record of a commit
// until it ends, 100,000 of them for a large loop's expansion.
func TestBinaryTask_RecordIsItsOwnAndTight(t *testing.T) {
	pending := Task{RunID: "0f8e0a5c-6b4c-4d2e-9a51-3c1f7e2b9d40", Index: 70000, Name: "loop[69999].step", State: spec.TaskPending}
	a, err := encodeTask(&pending)
	if err != nil {
		t.Fatal(err)
	}
	kept := bytes.Clone(a)
	other := Task{RunID: "ffffffff-ffff-4fff-bfff-ffffffffffff", Index: 1, Name: "other", State: spec.TaskSucceeded,
		Attempts: []Attempt{{N: 1, ExecutionID: "x-1-1", Executor: "sim", State: spec.TaskSucceeded, StartedAt: t0, FinishedAt: t0}}}
	if _, err := encodeTask(&other); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, kept) {
		t.Fatal("encoding another task changed the first record's bytes")
	}
	if cap(a) > len(a)+16 {
		t.Errorf("a %d-byte record holds %d bytes of capacity", len(a), cap(a))
	}
	running := pending
	running.State = spec.TaskRunning
	running.Attempts = []Attempt{{N: 1, ExecutionID: fmt.Sprintf("%s-%d-1", pending.RunID, pending.Index), Executor: "sim", State: spec.TaskRunning, StartedAt: t0}}
	running.StartedAt = t0
	if raceEnabled {
		return
	}
	for _, tk := range []*Task{&pending, &running} {
		if n := testing.AllocsPerRun(100, func() { _, _ = encodeTask(tk) }); n > 1 {
			t.Errorf("encoding a %s task: %.0f allocations, want 1", tk.State, n)
		}
	}
}

// TestBinaryTransitions_RoundTrip: transition_tasks version 2 reads back
// as written, through the log's batch codec.
func TestBinaryTransitions_RoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		c := genTransitions(t)
		b, err := encodeTransitions(&c)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeTransitions(b)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		sameJSON(t, "transition_tasks", c, back)
		for n := range len(b) {
			if _, err := decodeTransitions(b[:n]); err == nil {
				t.Fatalf("a command cut to %d of %d bytes decoded", n, len(b))
			}
		}
	})
}

// TestBinaryTransitions_WrittenAsVersionTwo: the log gets the binary form,
// and a version 1 (JSON) entry of the same command still applies.
func TestBinaryTransitions_WrittenAsVersionTwo(t *testing.T) {
	t.Parallel()
	c := TransitionTasks{RunID: "r", Items: []Transition{tr(0, 1, pend, runn)}}
	data, err := encodeBatch([]Command{c})
	if err != nil {
		t.Fatal(err)
	}
	if data[1] != byte(TypeTransitionTasks) || data[2] != 2 || bytes.Contains(data, []byte(`"run_id"`)) {
		t.Fatalf("entry %q: want transition_tasks version 2, binary", data)
	}
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 2))
	js, err := json.Marshal(c.stored())
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte{batchFormat, byte(TypeTransitionTasks), 1, byte(len(js))}, js...)
	cmds, err := decodeBatch(v1)
	if err != nil || len(cmds) != 1 {
		t.Fatalf("version 1 entry: %v %v", cmds, err)
	}
	f.mustAccept(t, cmds[0].cmd)
	if got := f.task(t, "r", 0); got.State != spec.TaskRunning || len(got.Attempts) != 1 {
		t.Fatalf("after a version 1 transition: %+v", got)
	}
}

// TestBinaryTask_JSONRecordsStillRead: a state.db written before the binary
// record (JSON task records) reads, and a task rewritten by a transition
// becomes binary.
func TestBinaryTask_JSONRecordsStillRead(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 2))
	err := f.db.Update(func(tx *bolt.Tx) error {
		for i := range 2 {
			old := Task{RunID: "r", Index: i, Name: fmt.Sprintf("task-%d", i), State: spec.TaskPending}
			js, err := json.Marshal(storedTask(&old))
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketTasks).Put(taskKey("r", i), js); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f.mustAccept(t, TransitionTasks{RunID: "r", Items: []Transition{tr(1, 1, pend, runn)}})
	if got := f.task(t, "r", 0); got.Name != "task-0" || got.State != spec.TaskPending {
		t.Errorf("JSON record read back as %+v", got)
	}
	if got := f.task(t, "r", 1); got.State != spec.TaskRunning || len(got.Attempts) != 1 {
		t.Errorf("transitioned record read back as %+v", got)
	}
	err = f.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketTasks).Get(taskKey("r", 1)); len(v) == 0 || v[0] != taskRecordMagic {
			return fmt.Errorf("rewritten record is not binary: %q", v)
		}
		if v := tx.Bucket(bucketTasks).Get(taskKey("r", 0)); len(v) == 0 || v[0] != '{' {
			return fmt.Errorf("untouched record was rewritten: %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBinaryTask_NewerVersionRefused: a record from a newer layout is an
// error naming the version, not a misread.
func TestBinaryTask_NewerVersionRefused(t *testing.T) {
	t.Parallel()
	tk := Task{RunID: "r", Name: "a"}
	b, err := encodeTask(&tk)
	if err != nil {
		t.Fatal(err)
	}
	b[1] = taskRecordVersion + 1
	var back Task
	if err := decodeTask(b, &back); err == nil || !bytes.Contains([]byte(err.Error()), []byte("version 2")) {
		t.Fatalf("got %v", err)
	}
}

// FuzzDecodeTask: any bytes give a task or an error, and a decoded record
// encodes to bytes that decode to the same task.
func FuzzDecodeTask(f *testing.F) {
	tk := Task{RunID: "r", Index: 3, Name: "t", State: spec.TaskSucceeded, Attempts: []Attempt{{N: 1, ExecutionID: "e", State: spec.TaskSucceeded,
		StartedAt: time.Unix(5, 6).UTC(), Logs: &spec.ArtifactRef{Digest: "sha256:00", Size: 1}}},
		Outputs: map[string]spec.Value{"o": {Param: json.RawMessage(`1`)}}}
	b, _ := encodeTask(&tk)
	f.Add(b)
	js, _ := json.Marshal(storedTask(&tk))
	f.Add(js)
	f.Add([]byte{taskRecordMagic, taskRecordVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var tk Task
		if err := decodeTask(data, &tk); err != nil {
			return
		}
		again, err := encodeTask(&tk)
		if err != nil {
			return // e.g. a time MarshalBinary refuses
		}
		var back Task
		if err := decodeTask(again, &back); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		a, _ := json.Marshal(tk)
		b, _ := json.Marshal(back)
		if !bytes.Equal(a, b) {
			t.Fatalf("changed in a round trip:\n%s\n%s", a, b)
		}
	})
}

func genExit(t *rapid.T, label string) *Exit {
	if rapid.Bool().Draw(t, label) {
		return nil
	}
	return &Exit{Outcome: rapid.SampledFrom([]string{OutcomeSucceeded, OutcomeFailed, OutcomeLost, ""}).Draw(t, label+"_outcome"),
		ExitCode: rapid.IntRange(-1, 255).Draw(t, label+"_code"), Reason: rapid.String().Draw(t, label+"_reason"),
		Outputs: genOutputs(t, label+"_outputs"), Logs: genRef(t, label+"_logs"), Time: genTime(t, label+"_time")}
}

func genResources(t *rapid.T, label string) spec.Resources {
	return spec.Resources{MilliCPU: rapid.Int64().Draw(t, label+"_cpu"), MemoryBytes: rapid.Int64().Draw(t, label+"_mem"),
		GPU: rapid.IntRange(-1, 1<<20).Draw(t, label+"_gpu"), Accelerator: rapid.String().Draw(t, label+"_acc")}
}

func genAssignment(t *rapid.T) Assignment {
	a := Assignment{ExecutionID: rapid.String().Draw(t, "exec"), RunID: rapid.String().Draw(t, "run"),
		Task: rapid.IntRange(-1, 1<<31-1).Draw(t, "task"), Attempt: rapid.IntRange(0, 100).Draw(t, "attempt"),
		NodeID: rapid.String().Draw(t, "node"), Epoch: rapid.Uint64().Draw(t, "epoch"), Executor: rapid.String().Draw(t, "executor"),
		Resources: genResources(t, "res"), AssignedAt: genTime(t, "assigned"), StartedAt: genTime(t, "started"),
		CancelRequested: rapid.Bool().Draw(t, "cancel"), Exit: genExit(t, "exit"), Waiting: rapid.String().Draw(t, "waiting")}
	if rapid.Bool().Draw(t, "spec") {
		a.Spec = json.RawMessage(`{"command":["/bin/true"],"n":` + fmt.Sprint(rapid.Int().Draw(t, "spec_n")) + `}`)
	}
	return a
}

// TestBinaryWorkerRecords_RoundTrip: node and assignment records and the
// assign and report commands read back as written, and their JSON forms
// (records and version 1 entries from before) still read.
func TestBinaryWorkerRecords_RoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		a := genAssignment(t)
		rec := a
		rec.Spec = nil
		b, err := encodeAssignmentRecord(&rec)
		if err != nil {
			t.Fatal(err)
		}
		var back Assignment
		if err := decodeAssignmentRecord(b, &back); err != nil {
			t.Fatalf("assignment record: %v", err)
		}
		sameJSON(t, "assignment record", rec, back)
		js, _ := json.Marshal(&a)
		if err := decodeAssignmentRecord(js, &back); err != nil {
			t.Fatalf("JSON assignment record: %v", err)
		}
		sameJSON(t, "JSON assignment record", a, back)
		for n := range len(b) {
			if err := decodeAssignmentRecord(b[:n], &back); err == nil && n > 0 {
				t.Fatalf("an assignment record cut to %d of %d bytes decoded", n, len(b))
			}
		}

		cmd := AssignExecution{Assignment: a}
		cb, err := encodeAssignExecution(&cmd)
		if err != nil {
			t.Fatal(err)
		}
		cback, err := decodeAssignExecution(cb)
		if err != nil {
			t.Fatalf("assign_execution: %v", err)
		}
		sameJSON(t, "assign_execution", cmd, cback)

		rep := ReportExecution{ExecutionID: a.ExecutionID, NodeID: a.NodeID, Epoch: a.Epoch, Started: rapid.Bool().Draw(t, "started"),
			Exit: genExit(t, "report_exit"), Waiting: rapid.String().Draw(t, "report_waiting"), Time: genTime(t, "report_time")}
		rb, err := encodeReportExecution(&rep)
		if err != nil {
			t.Fatal(err)
		}
		rback, err := decodeReportExecution(rb)
		if err != nil {
			t.Fatalf("report_execution: %v", err)
		}
		sameJSON(t, "report_execution", rep, rback)
		for n := range len(rb) {
			if _, err := decodeReportExecution(rb[:n]); err == nil {
				t.Fatalf("a report cut to %d of %d bytes decoded", n, len(rb))
			}
		}

		node := Node{ID: rapid.String().Draw(t, "node_id"), Epoch: rapid.Uint64().Draw(t, "node_epoch"), State: NodeUp,
			Capacity: genResources(t, "cap"), GPUKinds: rapid.SliceOfN(rapid.String(), 0, 2).Draw(t, "kinds"),
			Executors: rapid.SliceOfN(rapid.String(), 1, 3).Draw(t, "executors"),
			Labels:    rapid.MapOfN(rapid.String(), rapid.String(), 0, 3).Draw(t, "labels"), APIURL: rapid.String().Draw(t, "api"),
			RegisteredAt: genTime(t, "registered"), LastHeartbeat: genTime(t, "heartbeat"), DownReason: rapid.String().Draw(t, "down"),
			LowDisk: rapid.String().Draw(t, "low_disk")}
		if len(node.GPUKinds) == 0 {
			node.GPUKinds = nil
		}
		if len(node.Labels) == 0 {
			node.Labels = nil
		}
		nb, err := encodeNodeRecord(&node)
		if err != nil {
			t.Fatal(err)
		}
		var nback Node
		if err := decodeNodeRecord(nb, &nback); err != nil {
			t.Fatalf("node record: %v", err)
		}
		sameJSON(t, "node record", node, nback)
		nb2, _ := encodeNodeRecord(&nback)
		if !bytes.Equal(nb, nb2) {
			t.Fatal("a node record is not encoded the same way twice (labels order)")
		}
		njs, _ := json.Marshal(&node)
		if err := decodeNodeRecord(njs, &nback); err != nil {
			t.Fatalf("JSON node record: %v", err)
		}
		sameJSON(t, "JSON node record", node, nback)
	})
}

// TestBinaryWorkerCommands_VersionOneStillApplies: assign and report
// entries written as JSON (version 1) apply as before.
func TestBinaryWorkerCommands_VersionOneStillApplies(t *testing.T) {
	t.Parallel()
	for _, c := range []Command{
		AssignExecution{Assignment: Assignment{ExecutionID: "e", RunID: "r", NodeID: "n", Epoch: 1, Executor: "sim", Spec: json.RawMessage(`{}`)}},
		ReportExecution{ExecutionID: "e", NodeID: "n", Epoch: 1, Started: true, Exit: &Exit{Outcome: OutcomeSucceeded}},
	} {
		js, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		v1 := binary.AppendUvarint([]byte{batchFormat, byte(c.Type()), 1}, uint64(len(js)))
		v1 = append(v1, js...)
		got, err := decodeBatch(v1)
		if err != nil || len(got) != 1 {
			t.Fatalf("%T version 1: %v %v", c, got, err)
		}
		a, _ := json.Marshal(c)
		b, _ := json.Marshal(got[0].cmd)
		if !bytes.Equal(a, b) {
			t.Errorf("%T version 1 read back as %s, want %s", c, b, a)
		}
		v2, err := encodeBatch([]Command{c})
		if err != nil {
			t.Fatal(err)
		}
		if v2[2] != 2 || bytes.Contains(v2, []byte(`"execution_id"`)) {
			t.Errorf("%T is written as %q: want version 2, binary", c, v2)
		}
	}
}

// FuzzDecodeWorkerRecords: any bytes give a node or assignment record or
// an error, never a panic, and a decoded record encodes to bytes that
// decode the same.
func FuzzDecodeWorkerRecords(f *testing.F) {
	a := Assignment{ExecutionID: "e", RunID: "r", NodeID: "n", Epoch: 2, Executor: "local", Exit: &Exit{Outcome: OutcomeFailed, ExitCode: 1}}
	b, _ := encodeAssignmentRecord(&a)
	f.Add(b)
	n := Node{ID: "n", Epoch: 1, State: NodeUp, Executors: []string{"local"}, Labels: map[string]string{"gpu": "true"}}
	nb, _ := encodeNodeRecord(&n)
	f.Add(nb)
	f.Add([]byte{workerRecordMagic, workerRecordVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		var a Assignment
		if decodeAssignmentRecord(data, &a) == nil {
			again, err := encodeAssignmentRecord(&a)
			if err == nil {
				var back Assignment
				if err := decodeAssignmentRecord(again, &back); err != nil {
					t.Fatalf("re-encoded assignment does not decode: %v", err)
				}
				x, _ := json.Marshal(a)
				y, _ := json.Marshal(back)
				if !bytes.Equal(x, y) {
					t.Fatalf("assignment changed in a round trip:\n%s\n%s", x, y)
				}
			}
		}
		var n Node
		if decodeNodeRecord(data, &n) == nil {
			again, err := encodeNodeRecord(&n)
			if err == nil {
				var back Node
				if err := decodeNodeRecord(again, &back); err != nil {
					t.Fatalf("re-encoded node does not decode: %v", err)
				}
			}
		}
	})
}

// TestBinaryRecords_CoverEveryField fails when a field is added to a
// struct that binary.go encodes field by field: such a field would be
// silently dropped by the binary records (as Attempt.Waiting once was).
// Encode the new field in binary.go (and draw it in the generators above),
// then add it here.
func TestBinaryRecords_CoverEveryField(t *testing.T) {
	encoded := []struct {
		v      any
		fields []string
	}{
		{Task{}, []string{"RunID", "Index", "Name", "State", "Attempts", "Outputs", "Error", "StartedAt", "FinishedAt", "CacheKey", "CachedFrom"}},
		{Attempt{}, []string{"N", "ExecutionID", "Executor", "State", "StartedAt", "FinishedAt", "Error", "Logs", "Waiting"}},
		{TransitionTasks{}, []string{"RunID", "Items"}},
		{Transition{}, []string{"Task", "Attempt", "From", "To", "Time", "ExecutionID", "Executor", "Outputs", "Error", "Logs", "CacheKey", "CachedFrom", "Expand"}},
		{Assignment{}, []string{"ExecutionID", "RunID", "Task", "Attempt", "NodeID", "Epoch", "Executor", "Resources", "Spec", "AssignedAt", "StartedAt", "CancelRequested", "Exit", "Waiting"}},
		{Exit{}, []string{"Outcome", "ExitCode", "Reason", "Outputs", "Logs", "Time"}},
		{Node{}, []string{"ID", "Epoch", "State", "Capacity", "GPUKinds", "Executors", "Labels", "APIURL", "RegisteredAt", "LastHeartbeat", "DownReason", "LowDisk"}},
		{AssignExecution{}, []string{"Assignment"}},
		{ReportExecution{}, []string{"ExecutionID", "NodeID", "Epoch", "Started", "Exit", "Waiting", "Time"}},
		{spec.Resources{}, []string{"MilliCPU", "MemoryBytes", "GPU", "Accelerator"}},
	}
	for _, e := range encoded {
		typ, want := reflect.TypeOf(e.v), e.fields
		var got []string
		for i := range typ.NumField() {
			got = append(got, typ.Field(i).Name)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s has fields %v; binary.go encodes %v", typ, got, want)
		}
	}
}
