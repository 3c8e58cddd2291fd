package worker

import (
	"testing"
	"time"

	"github.com/skiffml/skiff/store"
)

// TestLatestAssignments: a batch of changes folds into one update per
// execution, in the order each was first changed, with its last state;
// the spec of the change that made an assignment stays with it; a drop
// is nil; a change without states asks for a read; skipped executions
// are left out.
func TestLatestAssignments(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	made := &store.Assignment{ExecutionID: "a", NodeID: "n1", Spec: []byte(`{"id":"a"}`)}
	started := &store.Assignment{ExecutionID: "a", NodeID: "n1", StartedAt: t0}
	b := &store.Assignment{ExecutionID: "b", NodeID: "n2"}
	exited := &store.Assignment{ExecutionID: "a", NodeID: "n1", StartedAt: t0, Exit: &store.Exit{Outcome: store.OutcomeSucceeded}}
	changes := []store.Change{
		{Index: 1, Assignments: []string{"a", "b"}, AssignmentNodes: []string{"n1", "n2"}, AssignmentStates: []*store.Assignment{made, b}},
		{Index: 2, Assignments: []string{"a"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*store.Assignment{started}},
		{Index: 3, Assignments: []string{"c"}}, // made elsewhere: no nodes, no states
		{Index: 4, Assignments: []string{"b"}, AssignmentNodes: []string{"n2"}, AssignmentStates: []*store.Assignment{nil}},
	}
	got := latestAssignments(changes, nil)
	if len(got) != 3 || got[0].id != "a" || got[1].id != "b" || got[2].id != "c" {
		t.Fatalf("updates %+v, want a, b, c in that order", got)
	}
	if a := got[0].a; !got[0].known || a == nil || a.StartedAt != t0 || string(a.Spec) != `{"id":"a"}` {
		t.Errorf("a: %+v (known %v), want its start with the spec it was made with", a, got[0].known)
	}
	if made.StartedAt != (store.Assignment{}).StartedAt || len(started.Spec) != 0 {
		t.Error("the changes' states were modified (they are shared by every subscriber)")
	}
	if !got[1].known || got[1].a != nil {
		t.Errorf("b: %+v, want dropped (nil, known)", got[1])
	}
	if got[2].known {
		t.Errorf("c: %+v, want unknown (to be read)", got[2])
	}

	changes = append(changes, store.Change{Index: 5, Assignments: []string{"a"}, AssignmentNodes: []string{"n1"}, AssignmentStates: []*store.Assignment{exited}})
	got = latestAssignments(changes, func(id, node string) bool { return node != "n1" })
	if len(got) != 2 || got[0].id != "a" || got[1].id != "c" {
		t.Fatalf("skipping n2's: %+v, want a and c", got)
	}
	if a := got[0].a; a == nil || a.Exit == nil || string(a.Spec) != `{"id":"a"}` {
		t.Errorf("a: %+v, want its exit", a)
	}
}
