package scheduler

import (
	"encoding/json"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// loopPlan is one loop over items whose body task reads the item (as
// itemType) and its field "a".
func loopPlan(t *testing.T, items string, itemType spec.Type) *spec.Plan {
	body := &spec.Plan{Name: "loop", Params: []spec.Param{{Name: "item", Type: itemType}},
		Tasks: []spec.Task{withInputs(task("b"),
			spec.Input{Name: "whole", Type: itemType, Param: "item"},
			spec.Input{Name: "a", Type: spec.TypeInt, Param: "item", Field: "a"})}}
	return plan(t, spec.Task{Name: "loop", Body: body,
		ParallelFor: &spec.Loop{Items: spec.Input{Type: spec.TypeList, Value: json.RawMessage(items)}, ItemParam: "item"}})
}

func TestRun_LoopItemsAndFields(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		typ          spec.Type
		whole, field string
	}{
		"object items":             {spec.TypeObject, `{"a":1}`, `1`},
		"objects as strings (KFP)": {spec.TypeString, `"{\"a\":1}"`, `1`},
	} {
		t.Run(name, func(t *testing.T) {
			r := New(loopPlan(t, `[{"a":1},{"a":2}]`, c.typ), nil)
			ds := r.Start()
			if len(ds) != 3 || ds[0].Action != ActExpand || ds[0].Count != 2 || ds[1].Action != ActStart {
				t.Fatalf("Start = %v", ds)
			}
			in := ds[1].Inputs
			if got := string(in["whole"].Param); got != c.whole {
				t.Errorf("item = %s, want %s", got, c.whole)
			}
			if got := string(in["a"].Param); got != c.field {
				t.Errorf("field a = %s, want %s", got, c.field)
			}
			if r.Name(ds[2].Task) != "loop[1].b" {
				t.Errorf("second iteration's task is %s", r.Name(ds[2].Task))
			}
		})
	}
}

func TestRun_LoopWithBadItemFailsTheGroup(t *testing.T) {
	t.Parallel()
	r := New(loopPlan(t, `[{"a":1}, 3]`, spec.TypeObject), nil)
	ds := r.Start()
	if len(ds) != 2 || ds[0].Action != ActFail || ds[0].Reason != "parallelFor item 1: expected object, got number 3" || ds[1].Action != ActDone {
		t.Fatalf("Start = %v", ds)
	}
}

func TestRun_EmptyLoopSucceedsWithEmptyLists(t *testing.T) {
	t.Parallel()
	p := loopPlan(t, `[]`, spec.TypeObject)
	p.Tasks[0].Body.Outputs = []spec.PlanOutput{{Name: "outs", From: spec.Ref{Task: "b", Output: "out"}}}
	r := New(p, nil)
	ds := r.Start()
	if len(ds) != 3 || ds[0].Action != ActExpand || ds[0].Count != 0 || ds[1].Action != ActGroupDone || ds[2].Action != ActDone {
		t.Fatalf("Start = %v", ds)
	}
	if got := string(ds[1].Outputs["outs"].Param); got != "[]" {
		t.Errorf("outs = %s, want []", got)
	}
}
