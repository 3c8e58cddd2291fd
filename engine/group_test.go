package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
)

const loopYAML = `
name: sweep
executor: sim
parameters:
  lrs: {type: list, default: [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}, {"lr": 0.4}, {"lr": 0.5}]}
tasks:
  - name: prep
    command: [prep]
    outputs: {data: Dataset}
  - name: loop
    parallelFor:
      items: {param: lrs}
      as: cfg
      itemType: object
      parallelism: 2
    tasks:
      - name: train
        command: [train, '{{inputs.lr}}']
        inputs:
          lr: {param: cfg, field: lr, type: float}
          data: {from: prep.data}
        outputs: {model: Model, acc: float}
      - name: check
        command: [check]
        inputs: {model: {from: train.model}}
    outputs:
      acc: train.acc
      model: train.model
  - name: pick
    command: [pick]
    inputs:
      accs: {from: loop.acc}
      models: {from: loop.model}
    outputs: {best: int}
outputs:
  best: pick.best
`

func TestEngine_LoopRunsEveryIterationAndFansIn(t *testing.T) {
	t.Parallel()
	// Steps take 20 ms, so that iterations running together overlap.
	h := newHarness(t, t.TempDir(), sim.Config{Default: sim.Behavior{Duration: 20 * time.Millisecond}, Tasks: map[string]sim.Behavior{
		"loop[3].train": {Duration: 20 * time.Millisecond, Outputs: map[string]json.RawMessage{"acc": json.RawMessage("0.9")}},
	}})
	id := h.submit(mustPlan(t, loopYAML), nil)
	r := h.wait(id)
	if r.State != spec.RunSucceeded {
		t.Fatalf("run %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	ts := h.tasks(id)
	if len(ts) != 3+5*2 {
		t.Fatalf("%d tasks, want 13: %v", len(ts), ts)
	}
	for k := 0; k < 5; k++ {
		for _, n := range []string{"train", "check"} {
			name := "loop[" + string(rune('0'+k)) + "]." + n
			if tk := ts[name]; tk.State != spec.TaskSucceeded || len(tk.Attempts) != 1 {
				t.Errorf("%s: %s with %d attempts", name, tk.State, len(tk.Attempts))
			}
		}
	}
	loop := ts["loop"]
	if loop.State != spec.TaskSucceeded || len(loop.Attempts) != 0 {
		t.Errorf("loop: %s with %d attempts, want SUCCEEDED and none (a group runs no command)", loop.State, len(loop.Attempts))
	}
	if got := string(loop.Outputs["acc"].Param); got != "[0.0,0.0,0.0,0.9,0.0]" {
		t.Errorf("loop acc = %s, want the iterations' outputs in order", got)
	}
	if got := loop.Outputs["model"]; len(got.Artifacts) != 5 || got.Artifacts[0].Type != spec.TypeModel {
		t.Errorf("loop model = %+v, want a list of 5 models", got)
	}
	// The parallelism limit: no more than 2 iterations' trains overlap.
	type span struct{ from, to time.Time }
	var spans []span
	for k := 0; k < 5; k++ {
		name := "loop[" + string(rune('0'+k)) + "]."
		spans = append(spans, span{ts[name+"train"].StartedAt, ts[name+"check"].FinishedAt})
	}
	for _, s := range spans {
		overlap := 0
		for _, o := range spans {
			if !o.from.After(s.from) && o.to.After(s.from) {
				overlap++
			}
		}
		if overlap > 2 {
			t.Errorf("%d iterations active at %s, parallelism 2", overlap, s.from)
		}
	}
}

func TestEngine_LoopResumesAfterACrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"loop[2].train": {Duration: time.Hour}}})
	id := h.submit(mustPlan(t, loopYAML), nil)
	waitFor(t, func() bool { return h.tasks(id)["loop[2].train"].State == spec.TaskRunning })
	h.stop()

	h2 := newHarness(t, dir, sim.Config{})
	if _, err := h2.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := h2.wait(id)
	if r.State != spec.RunSucceeded {
		t.Fatalf("run %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	ts := h2.tasks(id)
	if n := len(ts["loop[0].train"].Attempts); n != 1 {
		t.Errorf("a finished iteration ran %d times", n)
	}
	if a := ts["loop[2].train"].Attempts; len(a) != 2 || !strings.Contains(a[0].Error, "lost") {
		t.Errorf("the interrupted iteration has attempts %+v, want the lost one and a new one", a)
	}
	if got := string(ts["loop"].Outputs["acc"].Param); got != "[0.0,0.0,0.0,0.0,0.0]" {
		t.Errorf("loop acc = %s", got)
	}
}

func TestEngine_LoopIterationFailureFailsTheGroupAndRetryRunsItAgain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"loop[1].train": {Fail: true}}})
	id := h.submit(mustPlan(t, loopYAML), nil)
	r := h.wait(id)
	if r.State != spec.RunFailed || !strings.Contains(r.Error, "loop[1].train") {
		t.Fatalf("run %s (%q), want FAILED naming loop[1].train", r.State, r.Error)
	}
	ts := h.tasks(id)
	if ts["loop"].State != spec.TaskFailed || ts["pick"].State != spec.TaskSkipped || ts["loop[1].check"].State != spec.TaskSkipped {
		t.Fatalf("loop %s, pick %s, loop[1].check %s; want FAILED, SKIPPED, SKIPPED", ts["loop"].State, ts["pick"].State, ts["loop[1].check"].State)
	}
	if ts["loop[4].check"].State != spec.TaskSucceeded {
		t.Errorf("the other iterations go on: loop[4].check is %s", ts["loop[4].check"].State)
	}
	h.stop()

	h2 := newHarness(t, dir, sim.Config{})
	if err := h2.eng.Retry(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r = h2.wait(id)
	if r.State != spec.RunSucceeded {
		t.Fatalf("retried run %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	ts = h2.tasks(id)
	if n := len(ts["loop[0].train"].Attempts); n != 1 {
		t.Errorf("a succeeded iteration ran again (%d attempts)", n)
	}
	if n := len(ts["loop[1].train"].Attempts); n != 2 {
		t.Errorf("the failed iteration has %d attempts, want 2", n)
	}
	if len(ts) != 13 {
		t.Errorf("retry added tasks: %d", len(ts))
	}
}

func TestEngine_CancelDuringALoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{Default: sim.Behavior{Duration: time.Hour}, Tasks: map[string]sim.Behavior{"prep": {}}})
	id := h.submit(mustPlan(t, loopYAML), nil)
	waitFor(t, func() bool { return h.tasks(id)["loop[1].train"].State == spec.TaskRunning })
	if err := h.eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := h.wait(id)
	if r.State != spec.RunCanceled {
		t.Fatalf("run %s, want CANCELED", r.State)
	}
	ts := h.tasks(id)
	for name, tk := range ts {
		if !tk.State.Final() {
			t.Errorf("%s is %s after the run ended", name, tk.State)
		}
		if strings.HasPrefix(name, "loop[4]") && len(tk.Attempts) != 0 {
			t.Errorf("%s started beyond the parallelism limit", name)
		}
	}
	if ts["loop"].State != spec.TaskCanceled {
		t.Errorf("loop is %s, want CANCELED", ts["loop"].State)
	}
}

func TestEngine_ConditionBranchesAndSubPipelineOutputs(t *testing.T) {
	t.Parallel()
	const y = `
name: branches
executor: sim
parameters:
  acc: {type: float, default: 0.7}
tasks:
  - name: decide
    inputs: {acc: {param: acc}}
    if: inputs.acc >= 0.9
    tasks:
      - {name: deploy, command: [deploy], outputs: {msg: string}}
    outputs: {msg: deploy.msg}
    elif:
      - if: inputs.acc >= 0.5
        tasks:
          - {name: retrain, command: [retrain], outputs: {msg: string}}
        outputs: {msg: retrain.msg}
    else:
      tasks:
        - {name: alert, command: [alert], outputs: {msg: string}}
      outputs: {msg: alert.msg}
  - name: report
    command: [report]
    inputs: {msg: {from: decide.msg}}
`
	h := newHarness(t, t.TempDir(), sim.Config{Tasks: map[string]sim.Behavior{
		"decide.elif-1.retrain": {Outputs: map[string]json.RawMessage{"msg": json.RawMessage(`"retrained"`)}},
	}})
	id := h.submit(mustPlan(t, y), nil)
	r := h.wait(id)
	if r.State != spec.RunSucceeded {
		t.Fatalf("run %s (%s)", r.State, r.Error)
	}
	ts := h.tasks(id)
	want := map[string]spec.TaskState{
		"decide.then": spec.TaskSkipped, "decide.elif-1": spec.TaskSucceeded, "decide.else": spec.TaskSkipped,
		"decide.elif-1.retrain": spec.TaskSucceeded, "report": spec.TaskSucceeded,
	}
	for name, st := range want {
		if ts[name].State != st {
			t.Errorf("%s is %s, want %s", name, ts[name].State, st)
		}
	}
	if _, ok := ts["decide.then.deploy"]; ok {
		t.Errorf("a skipped branch's body was expanded")
	}
	if got := string(ts["decide"].Outputs["msg"].Param); got != `"retrained"` {
		t.Errorf("decide.msg = %s, want the branch that ran", got)
	}
}
