package worker

import (
	"math"

	"github.com/skiffml/skiff/store"
)

// assignmentUpdate is the latest word of a batch of changes on one
// execution's assignment.
type assignmentUpdate struct {
	id string
	// a is the assignment as the batch's last change of it left it (nil:
	// dropped), when known is true; otherwise it must be read.
	a     *store.Assignment
	known bool
	// at is the index of the entry of that change.
	at uint64
}

// latestAssignments folds changes (in log order) into one update per
// execution, in the order each was first changed, each with its last
// state: a short step's assignment, start, exit and drop in one batch
// are acted on once, as a read of the store after the batch would see
// them. skip(id, node) leaves out executions the caller has no business
// with (node is "" where the change does not say).
func latestAssignments(changes []store.Change, skip func(id, node string) bool) []assignmentUpdate {
	var out []assignmentUpdate
	at := map[string]int{}
	for ci := range changes {
		ch := &changes[ci]
		for i, id := range ch.Assignments {
			node := ""
			if len(ch.AssignmentNodes) == len(ch.Assignments) {
				node = ch.AssignmentNodes[i]
			}
			if node != "" && skip != nil && skip(id, node) {
				continue
			}
			a, known := ch.AssignmentState(i)
			u := assignmentUpdate{id: id, a: a, known: known, at: ch.Index}
			if j, ok := at[id]; ok {
				out[j] = u
				continue
			}
			at[id] = len(out)
			out = append(out, u)
		}
	}
	return out
}

// A change's state of an assignment is used only when it is newer than
// every state of it the caller read from the store: acting on an older
// one after a read (a rescan's, an adoption's) would go back in time
// (start an execution whose attempt has ended, count the load of one
// that is gone). The caller keeps readUpTo, an index no read it acted on
// saw past (readIndex after each read); a change at or below it is read
// again instead.

// stateIndexer is a store whose reads can tell the entry they reflect
// (the node's own store; an agent's polled view cannot).
type stateIndexer interface {
	StateIndex() (uint64, error)
}

// readIndex returns an index no read of st made before this call saw
// past (see store.Store.StateIndex); the largest index when st cannot
// tell, so that no change's state is used after a read.
func readIndex(st any) uint64 {
	if si, ok := st.(stateIndexer); ok {
		if idx, err := si.StateIndex(); err == nil {
			return idx
		}
	}
	return math.MaxUint64
}
