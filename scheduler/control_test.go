package scheduler

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func actions(ds []Decision) map[int]Action {
	m := map[int]Action{}
	for _, d := range ds {
		if d.Action != ActDone {
			m[d.Task] = d.Action
		}
	}
	return m
}

func TestRun_ConditionOnUpstreamOutput(t *testing.T) {
	t.Parallel()
	accIn := fromIn("acc", spec.TypeFloat, "eval", "acc")
	eval := spec.Task{Name: "eval", Outputs: []spec.Output{{Name: "acc", Type: spec.TypeFloat}}}
	deploy := withInputs(spec.Task{Name: "deploy", When: "inputs.acc >= 0.9"}, accIn)
	notify := spec.Task{Name: "notify", After: []string{"deploy"}}
	cases := []struct {
		name   string
		acc    string
		deploy Action
		notify Action
	}{
		{"above the bar runs", "0.95", ActStart, 0},
		{"below the bar skips it and its downstream", "0.5", ActSkip, ActSkip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New(plan(t, eval, deploy, notify), nil)
			r.Start()
			ds := r.Finished(0, spec.TaskSucceeded, map[string]spec.Value{"acc": {Param: json.RawMessage(tc.acc)}})
			got := actions(ds)
			if got[1] != tc.deploy || got[2] != tc.notify {
				t.Fatalf("decisions %v", ds)
			}
			if tc.deploy == ActSkip {
				if st, done := r.Done(); !done || st != spec.RunSucceeded {
					t.Errorf("a skipped branch must not fail the run: %s %v", st, done)
				}
			}
		})
	}
}

func TestRun_ConditionErrorFailsTheTask(t *testing.T) {
	t.Parallel()
	p := plan(t, spec.Task{Name: "a", When: "inputs.missing > 1"})
	ds := New(p, nil).Start()
	if len(ds) < 1 || ds[0].Action != ActFail || !strings.Contains(ds[0].Reason, "when") {
		t.Fatalf("decisions %v, want ActFail naming the condition", ds)
	}
}

func TestRun_IgnoreUpstreamFailureRunsAnExitHandler(t *testing.T) {
	t.Parallel()
	train := task("train")
	after := task("after", "train")
	cleanup := spec.Task{Name: "cleanup", After: []string{"train", "after"}, IgnoreUpstreamFailure: true,
		Inputs: []spec.Input{{Name: "status", Type: spec.TypeObject, UpstreamStatus: true}}}
	r := New(plan(t, train, after, cleanup), nil)
	r.Start()
	ds := r.Finished(0, spec.TaskFailed, nil)
	got := actions(ds)
	if got[1] != ActSkip || got[2] != ActStart {
		t.Fatalf("decisions %v: want after skipped and cleanup started", ds)
	}
	var st struct {
		State string            `json:"state"`
		Error string            `json:"error"`
		Tasks map[string]string `json:"tasks"`
	}
	for _, d := range ds {
		if d.Task == 2 && d.Action == ActStart {
			if err := json.Unmarshal(d.Inputs["status"].Param, &st); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st.State != "FAILED" || !strings.Contains(st.Error, "train") || st.Tasks["after"] != "SKIPPED" {
		t.Errorf("status = %+v", st)
	}
	r.Finished(2, spec.TaskSucceeded, nil)
	if res, done := r.Done(); !done || res != spec.RunFailed {
		t.Errorf("run = %s %v, want FAILED (the exit handler does not hide the failure)", res, done)
	}
}

func TestRun_IgnoreUpstreamFailureWaitsForEveryDependency(t *testing.T) {
	t.Parallel()
	a, b := task("a"), task("b")
	c := spec.Task{Name: "c", After: []string{"a", "b"}, IgnoreUpstreamFailure: true}
	r := New(plan(t, a, b, c), nil)
	r.Start()
	if ds := r.Finished(0, spec.TaskFailed, nil); actions(ds)[2] != 0 {
		t.Fatalf("c decided while b still runs: %v", ds)
	}
	if ds := r.Finished(1, spec.TaskSucceeded, paramOut("b")); actions(ds)[2] != ActStart {
		t.Fatalf("c not started once all deps are final: %v", ds)
	}
}
