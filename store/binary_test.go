package store

import (
	"bytes"
	"encoding/json"
	"fmt"
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
			Error: rapid.String().Draw(t, l+"error"), Logs: genRef(t, l+"logs"),
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
