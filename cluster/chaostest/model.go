package chaostest

import (
	"fmt"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The history model: every run the workload creates is one key (its
// request id). On a key the clients create the run (the answer is its id)
// and read its state with ?consistent (a linearizable read). The model
// of one key is a run whose state only moves forward: PENDING, RUNNING,
// CANCELING, then one final state. A history is linearizable when some
// order of its operations, consistent with real time, fits that model:
// every create of a key answers the same run id, and no read sees a state
// older than one an earlier read (or a concurrent one, ordered before it)
// saw. Operations that failed are left out (a failed create is sent again
// with the same request id, and the later answer covers it; a failed read
// changes nothing).

// OpKind is a create or a read.
type OpKind int

// The operations.
const (
	OpCreate OpKind = iota
	OpRead
)

// Input is an operation's input.
type Input struct {
	Kind OpKind
	Key  string // the request id
}

// Output is an operation's answer.
type Output struct {
	RunID string
	State string // reads only
}

// runState is the model's state of one key.
type runState struct {
	RunID string
	State string
}

// rank orders run states; final states rank highest.
func rank(state string) int {
	switch state {
	case "", "PENDING", "RUNTIME_STATE_UNSPECIFIED":
		return 0
	case "RUNNING", "PAUSED":
		return 1
	case "CANCELING":
		return 2
	}
	return 3
}

// Model is the porcupine model of the run API, partitioned by key.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(Input).Key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return runState{} },
	Step: func(s, in, out any) (bool, any) {
		st, i, o := s.(runState), in.(Input), out.(Output)
		if st.RunID != "" && o.RunID != st.RunID {
			return false, st // one request id, one run
		}
		next := runState{RunID: o.RunID, State: st.State}
		if i.Kind == OpCreate {
			return true, next
		}
		if st.RunID == "" {
			return false, st // a read before any create took effect
		}
		if rank(o.State) < rank(st.State) || (rank(st.State) == 3 && o.State != st.State) {
			return false, st // went back, or changed a final state
		}
		next.State = o.State
		return true, next
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(Input), out.(Output)
		if i.Kind == OpCreate {
			return fmt.Sprintf("create(%s) -> %s", i.Key, o.RunID)
		}
		return fmt.Sprintf("read(%s) -> %s", o.RunID, o.State)
	},
	DescribeState: func(s any) string { st := s.(runState); return st.RunID + " " + st.State },
}

// History records the clients' operations; safe for concurrent use.
type History struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

// NewHistory starts an empty history; times are measured from now.
func NewHistory() *History { return &History{start: time.Now()} }

// Begin notes an operation's call time; pass it to Add with its answer.
func (h *History) Begin() int64 { return int64(time.Since(h.start)) }

// Add records an operation that answered.
func (h *History) Add(client int, call int64, in Input, out Output) {
	ret := int64(time.Since(h.start))
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
}

// Ops returns a copy of the operations recorded so far.
func (h *History) Ops() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Operation(nil), h.ops...)
}

// Check checks the history's linearizability within limit; with a
// violation it also returns the operations of the first bad key.
func Check(ops []porcupine.Operation, limit time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	return porcupine.CheckOperationsVerbose(Model, ops, limit)
}
