package worker

import "github.com/skiffml/skiff/store"

// assignmentUpdate is the latest word of a batch of changes on one
// execution's assignment.
type assignmentUpdate struct {
	id string
	// a is the assignment as the batch's last change of it left it (nil:
	// dropped), when known is true; otherwise it must be read.
	a     *store.Assignment
	known bool
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
			u := assignmentUpdate{id: id, a: a, known: known}
			if j, ok := at[id]; ok {
				if prev := out[j].a; known && a != nil && prev != nil && len(a.Spec) == 0 && len(prev.Spec) > 0 {
					// keep the spec the assignment was made with
					c := *a
					c.Spec = prev.Spec
					u.a = &c
				}
				out[j] = u
				continue
			}
			at[id] = len(out)
			out = append(out, u)
		}
	}
	return out
}
