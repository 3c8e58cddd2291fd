package store

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/skiffml/skiff/engine/spec"
	"pgregory.net/rapid"
)

// randomLog builds a reproducible log of command batches over a few runs,
// with plenty of stale and invalid transitions.
func randomLog(tb testing.TB, seed uint64, entries int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	states := []spec.TaskState{pend, runn, succ, fail, skip, canc}
	var log [][]byte
	for e := 0; e < entries; e++ {
		var cmds []Command
		for c := 0; c < 1+rng.IntN(3); c++ {
			run := fmt.Sprintf("run-%d", rng.IntN(4))
			at := t0.Add(time.Duration(e) * time.Second)
			switch rng.IntN(10) {
			case 0:
				cr := newRun(run, 1+rng.IntN(5))
				cr.Run.CreatedAt, cr.Run.RequestID = at, fmt.Sprintf("req-%d", rng.IntN(6))
				cmds = append(cmds, cr)
			case 1:
				cmds = append(cmds, SetRunState{RunID: run, From: spec.RunState(rng.IntN(6)), To: spec.RunState(rng.IntN(6)), Time: at, Error: "x"})
			case 2:
				cmds = append(cmds, RequestCancel{RunID: run, Time: at})
			default:
				tt := TransitionTasks{RunID: run}
				for i := 0; i < 1+rng.IntN(8); i++ {
					tt.Items = append(tt.Items, Transition{Task: rng.IntN(6), Attempt: rng.IntN(4), From: states[rng.IntN(3)], To: states[rng.IntN(6)], Time: at, Error: "e"})
				}
				cmds = append(cmds, tt)
			}
		}
		data, err := encodeBatch(cmds)
		if err != nil {
			tb.Fatal(err)
		}
		log = append(log, data)
	}
	return log
}

func TestFSM_Deterministic(t *testing.T) {
	t.Parallel()
	log := randomLog(t, 42, 400)
	a, b := newTestFSM(t), newTestFSM(t)
	// a: one entry at a time; b: batches of up to 17 entries (ApplyBatch).
	for i, data := range log {
		a.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	for i := 0; i < len(log); {
		var batch []*raft.Log
		for ; i < len(log) && len(batch) < 17; i++ {
			batch = append(batch, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: log[i]})
		}
		b.ApplyBatch(batch)
	}
	da, db := dumpDB(t, a.db), dumpDB(t, b.db)
	if !reflect.DeepEqual(da, db) {
		t.Fatal("two FSMs fed the same log differ")
	}
	if len(da["runs"]) == 0 || len(da["tasks"]) == 0 {
		t.Fatalf("log created nothing: %v", da)
	}
	if a.applied.Load() != uint64(len(log)) {
		t.Errorf("applied %d", a.applied.Load())
	}
	// Replaying entries at or below the applied index changes nothing.
	for i, data := range log[:50] {
		a.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	if !reflect.DeepEqual(da, dumpDB(t, a.db)) {
		t.Fatal("replayed entries were applied twice")
	}
}

func TestFSM_SkipsReplayedEntries(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 1))
	f.mustAccept(t, TransitionTasks{RunID: "r", Items: []Transition{tr(0, 1, pend, runn)}})
	data, _ := encodeBatch([]Command{TransitionTasks{RunID: "r", Items: []Transition{tr(0, 2, runn, runn)}}})
	// Index 2 again (a replay after restart) must not start attempt 2.
	f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: data})
	if tk := f.task(t, "r", 0); len(tk.Attempts) != 1 {
		t.Fatalf("replayed entry applied: %+v", tk)
	}
}

func TestFSM_UnknownCommandHalts(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 1))
	// An unknown but ignorable command is skipped; the rest of the entry applies.
	good, _ := encodeBatch([]Command{RequestCancel{RunID: "r", Time: t0}})
	ign := append([]byte{batchFormat, byte(ignorableFlag | 99), 1, 2, '{', '}'}, good[1:]...)
	if r := f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: ign}).(*applyResponse); r.err != nil || len(r.rejected) != 0 {
		t.Fatalf("ignorable: %+v", r)
	}
	if !f.run(t, "r").CancelRequested {
		t.Fatal("command after an ignorable one was not applied")
	}
	before := dumpDB(t, f.db)
	for i, data := range [][]byte{
		{batchFormat, 99, 1, 2, '{', '}'},                      // unknown type
		{batchFormat, byte(TypeRequestCancel), 9, 2, '{', '}'}, // unknown version
		{7}, // unknown format
	} {
		f := newTestFSM(t)
		r := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}).(*applyResponse)
		if !errors.Is(r.err, ErrUnknownCommand) || !errors.Is(r.err, ErrFSMHalted) {
			t.Errorf("case %d: err %v", i, r.err)
		}
		// Halted: later entries are refused and so are snapshots.
		r = f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: good}).(*applyResponse)
		if !errors.Is(r.err, ErrFSMHalted) || f.applied.Load() != 0 {
			t.Errorf("case %d: after halt: %v applied %d", i, r.err, f.applied.Load())
		}
		if _, err := f.Snapshot(); !errors.Is(err, ErrFSMHalted) {
			t.Errorf("case %d: snapshot of a halted FSM: %v", i, err)
		}
	}
	if !reflect.DeepEqual(before, dumpDB(t, f.db)) {
		t.Error("state changed")
	}
}

func TestEncodeBatch_RoundTrip(t *testing.T) {
	t.Parallel()
	cmds := []Command{newRun("r", 2), TransitionTasks{RunID: "r", Items: []Transition{tr(1, 1, pend, runn)}}, SetRunState{RunID: "r", To: spec.RunFailed, Time: t0}, RequestCancel{RunID: "r", Time: t0}}
	data, err := encodeBatch(cmds)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(data)
	if err != nil || len(got) != len(cmds) {
		t.Fatalf("decode: %v %d", err, len(got))
	}
	for i := range cmds {
		a, _ := encodeBatch([]Command{cmds[i]})
		b, _ := encodeBatch([]Command{got[i].cmd})
		if !bytes.Equal(a, b) {
			t.Errorf("command %d: %s != %s", i, a, b)
		}
	}
	if _, err := decodeBatch(data[:len(data)-1]); err == nil {
		t.Error("truncated batch decoded")
	}
	if _, err := encodeBatch([]Command{bogusCmd{}}); !errors.Is(err, ErrUnknownCommand) {
		t.Errorf("encode unregistered: %v", err)
	}
	if ts := registeredTypes(); !reflect.DeepEqual(ts[:4], []CommandType{1, 2, 3, 4}) {
		t.Errorf("types %v", ts)
	}
}

type bogusCmd struct{}

func (bogusCmd) Type() CommandType { return 77 }

// TestFSM_TransitionInvariants: random, often stale, transitions never give
// a task two live attempts, attempts are numbered 1..n, final tasks never
// change, and the applied index only grows.
func TestFSM_TransitionInvariants(t *testing.T) {
	t.Parallel()
	const nTasks = 3
	states := []spec.TaskState{pend, runn, succ, fail, skip, canc}
	rapid.Check(t, func(rt *rapid.T) {
		f := newTestFSM(t)
		defer f.close()
		f.mustAccept(rt, newRun("r", nTasks))
		final := map[int]string{}
		atCancel := map[int]int{} // attempts per task when cancel was seen
		lastApplied := f.applied.Load()
		steps := rapid.IntRange(1, 40).Draw(rt, "steps")
		for s := 0; s < steps; s++ {
			var items []Transition
			for n := rapid.IntRange(1, 4).Draw(rt, "items"); n > 0; n-- {
				i := rapid.IntRange(0, nTasks-1).Draw(rt, "task")
				cur := f.task(rt, "r", i)
				from := cur.State
				if rapid.Bool().Draw(rt, "randomFrom") {
					from = rapid.SampledFrom(states).Draw(rt, "from")
				}
				attempt := len(cur.Attempts) + rapid.IntRange(-1, 2).Draw(rt, "attemptDelta")
				items = append(items, Transition{Task: i, Attempt: attempt, From: from,
					To: rapid.SampledFrom(states).Draw(rt, "to"), Time: t0.Add(time.Duration(s) * time.Second)})
			}
			cmds := []Command{TransitionTasks{RunID: "r", Items: items}}
			if rapid.IntRange(0, 20).Draw(rt, "cancel") == 0 {
				cmds = append(cmds, RequestCancel{RunID: "r", Time: t0})
			}
			f.apply(rt, cmds...)
			if a := f.applied.Load(); a <= lastApplied {
				rt.Fatalf("applied index %d after %d", a, lastApplied)
			}
			lastApplied = f.applied.Load()
			cancel := f.run(rt, "r").CancelRequested
			for i := 0; i < nTasks; i++ {
				tk := f.task(rt, "r", i)
				checkTaskInvariants(rt, tk)
				enc := fmt.Sprintf("%+v", tk)
				if prev, ok := final[i]; ok && prev != enc {
					rt.Fatalf("final task %d changed:\n%s\n%s", i, prev, enc)
				}
				if tk.State.Final() {
					final[i] = enc
				}
				// A PENDING task may have attempts (it waits for a retry),
				// but none of them is live.
				if n := len(tk.Attempts); tk.State == spec.TaskPending && n > 0 && tk.Attempts[n-1].State == spec.TaskRunning {
					rt.Fatalf("task %d pending with a live attempt", i)
				}
				// Once cancellation is requested, no attempt starts.
				if cancel {
					if n, ok := atCancel[i]; !ok {
						atCancel[i] = len(tk.Attempts)
					} else if len(tk.Attempts) > n {
						rt.Fatalf("task %d started attempt %d after cancel", i, len(tk.Attempts))
					}
				}
			}
		}
	})
}

func checkTaskInvariants(rt *rapid.T, tk Task) {
	live := 0
	for j, a := range tk.Attempts {
		if a.N != j+1 {
			rt.Fatalf("task %d attempt %d numbered %d", tk.Index, j+1, a.N)
		}
		if a.State == spec.TaskRunning {
			live++
			if j != len(tk.Attempts)-1 {
				rt.Fatalf("task %d: live attempt %d is not the last", tk.Index, a.N)
			}
		}
	}
	if live > 1 {
		rt.Fatalf("task %d has %d live attempts", tk.Index, live)
	}
	if (tk.State == spec.TaskRunning) != (live == 1) {
		rt.Fatalf("task %d is %s with %d live attempts", tk.Index, tk.State, live)
	}
}
