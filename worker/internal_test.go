package worker

import (
	"testing"

	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// TestMerged: an exit folds into its execution's queued start (one
// command for a short step), never into another execution's, an ended
// one's, or one of another epoch.
func TestMerged(t *testing.T) {
	exit := &store.Exit{Outcome: store.OutcomeSucceeded}
	q := []store.ReportExecution{
		{ExecutionID: "a", Epoch: 1, Started: true},
		{ExecutionID: "b", Epoch: 1, Started: true},
	}
	if !merged(q, store.ReportExecution{ExecutionID: "a", Epoch: 1, Exit: exit}) || q[0].Exit != exit || !q[0].Started {
		t.Fatalf("exit of a not merged into its start: %+v", q[0])
	}
	if q[1].Exit != nil {
		t.Fatalf("b changed: %+v", q[1])
	}
	if merged(q, store.ReportExecution{ExecutionID: "a", Epoch: 1, Exit: exit}) {
		t.Error("a second exit merged into an ended report")
	}
	if merged(q, store.ReportExecution{ExecutionID: "b", Epoch: 2, Exit: exit}) {
		t.Error("an exit of another epoch merged")
	}
	if merged(q, store.ReportExecution{ExecutionID: "c", Epoch: 1, Exit: exit}) {
		t.Error("an exit with no queued start merged")
	}
	if merged(q, store.ReportExecution{ExecutionID: "b", Epoch: 1, Started: true}) {
		t.Error("a start merged")
	}
}

// TestChoosePrefersSelfOnTies: between equally loaded nodes the leader's
// own worker wins; a less loaded node still wins over it.
func TestChoosePrefersSelfOnTies(t *testing.T) {
	nodes := []store.Node{{ID: "a", Executors: []string{"sim"}}, {ID: "b", Executors: []string{"sim"}}, {ID: "c", Executors: []string{"sim"}}}
	w := &waitingStart{kind: "sim", s: &executors.Spec{ID: "r-0-1"}}
	used := map[string]usage{}
	if n, _ := choose(nodes, used, w, "b"); n == nil || n.ID != "b" {
		t.Fatalf("tie: chose %v, want b (self)", n)
	}
	if n, _ := choose(nodes, used, w, "zz"); n == nil || n.ID != "a" {
		t.Fatalf("tie without self: chose %v, want a (lowest id)", n)
	}
	used["b"] = usage{n: 1}
	if n, _ := choose(nodes, used, w, "b"); n == nil || n.ID != "a" {
		t.Fatalf("self busier: chose %v, want a", n)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{{"abc", 5, "abc"}, {"abcdef", 3, "abc"}, {"aé", 2, "a"}, {"日本", 4, "日"}} {
		if got := truncate(tc.s, tc.n); got != tc.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
}
