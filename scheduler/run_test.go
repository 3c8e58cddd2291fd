package scheduler

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func TestRun_Flows(t *testing.T) {
	t.Parallel()
	failed := spec.TaskFailed
	cases := []struct {
		name    string
		tasks   []spec.Task
		outcome map[string]spec.TaskState
		want    []string
		states  string
		result  spec.RunState
	}{
		{
			name:   "empty plan",
			want:   []string{"done SUCCEEDED"},
			result: spec.RunSucceeded,
		},
		{
			name:  "chain",
			tasks: []spec.Task{task("a"), task("b", "a"), task("c", "b")},
			want: []string{"start a", "finished a SUCCEEDED", "start b", "finished b SUCCEEDED",
				"start c", "finished c SUCCEEDED", "done SUCCEEDED"},
			states: "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED",
			result: spec.RunSucceeded,
		},
		{
			name:  "diamond",
			tasks: []spec.Task{task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")},
			want: []string{"start a", "finished a SUCCEEDED", "start b", "start c",
				"finished b SUCCEEDED", "finished c SUCCEEDED", "start d", "finished d SUCCEEDED", "done SUCCEEDED"},
			states: "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED d=SUCCEEDED",
			result: spec.RunSucceeded,
		},
		{
			name:  "fan-out fan-in",
			tasks: []spec.Task{task("src"), task("w1", "src"), task("w2", "src"), task("w3", "src"), task("sink", "w1", "w2", "w3")},
			want: []string{"start src", "finished src SUCCEEDED", "start w1", "start w2", "start w3",
				"finished w1 SUCCEEDED", "finished w2 SUCCEEDED", "finished w3 SUCCEEDED",
				"start sink", "finished sink SUCCEEDED", "done SUCCEEDED"},
			states: "src=SUCCEEDED w1=SUCCEEDED w2=SUCCEEDED w3=SUCCEEDED sink=SUCCEEDED",
			result: spec.RunSucceeded,
		},
		{
			name:  "independent roots start together",
			tasks: []spec.Task{task("a"), task("b"), task("c", "a")},
			want: []string{"start a", "start b", "finished a SUCCEEDED", "start c",
				"finished b SUCCEEDED", "finished c SUCCEEDED", "done SUCCEEDED"},
			states: "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED",
			result: spec.RunSucceeded,
		},
		{
			name:    "failure propagation",
			tasks:   []spec.Task{task("a"), task("train", "a"), task("eval", "train"), task("other", "a")},
			outcome: map[string]spec.TaskState{"train": failed},
			want: []string{"start a", "finished a SUCCEEDED", "start train", "start other",
				"finished train FAILED", `skip eval: upstream task "train" failed`,
				"finished other SUCCEEDED", "done FAILED"},
			states: "a=SUCCEEDED train=FAILED eval=SKIPPED other=SUCCEEDED",
			result: spec.RunFailed,
		},
		{
			name:    "skip cascade is transitive",
			tasks:   []spec.Task{task("a"), task("b", "a"), task("c", "b"), task("d", "c", "x"), task("x")},
			outcome: map[string]spec.TaskState{"a": failed},
			want: []string{"start a", "start x", "finished a FAILED",
				`skip b: upstream task "a" failed`, `skip c: upstream task "b" was skipped`,
				`skip d: upstream task "c" was skipped`, "finished x SUCCEEDED", "done FAILED"},
			states: "a=FAILED b=SKIPPED c=SKIPPED d=SKIPPED x=SUCCEEDED",
			result: spec.RunFailed,
		},
		{
			name:    "a canceled task skips its successors and cancels the run",
			tasks:   []spec.Task{task("a"), task("b", "a")},
			outcome: map[string]spec.TaskState{"a": spec.TaskCanceled},
			want: []string{"start a", "finished a CANCELED",
				`skip b: upstream task "a" was canceled`, "done CANCELED"},
			states: "a=CANCELED b=SKIPPED",
			result: spec.RunCanceled,
		},
		{
			name:    "failure wins over cancellation",
			tasks:   []spec.Task{task("a"), task("b")},
			outcome: map[string]spec.TaskState{"a": spec.TaskCanceled, "b": failed},
			want:    []string{"start a", "start b", "finished a CANCELED", "finished b FAILED", "done FAILED"},
			states:  "a=CANCELED b=FAILED",
			result:  spec.RunFailed,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, plan(t, tc.tasks...), nil)
			for k, v := range tc.outcome {
				e.outcome[k] = v
			}
			e.runAll()
			sameTrace(t, e.trace, tc.want)
			if got := e.states(); got != tc.states {
				t.Errorf("states = %s, want %s", got, tc.states)
			}
			if got, ok := e.run.Done(); !ok || got != tc.result {
				t.Errorf("Done() = %s, %v; want %s, true", got, ok, tc.result)
			}
		})
	}
}

func TestRun_Cancel(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		steps  func(e *engine)
		want   []string
		states string
		result spec.RunState
	}{
		{
			name: "mid-run: pending canceled, running stopped, done when the last one ends",
			steps: func(e *engine) {
				e.apply(e.run.Start())
				e.finish() // a
				e.apply(e.run.Cancel())
				e.apply(e.run.Cancel()) // second cancel: nothing
				e.finish()              // b succeeds anyway
				e.outcome["c"] = spec.TaskCanceled
				e.finish()
			},
			want: []string{"start a", "finished a SUCCEEDED", "start b", "start c",
				"stop b", "stop c", "cancel d: run canceled", "cancel e: run canceled",
				"finished b SUCCEEDED", "finished c CANCELED", "done CANCELED"},
			states: "a=SUCCEEDED b=SUCCEEDED c=CANCELED d=CANCELED e=CANCELED",
			result: spec.RunCanceled,
		},
		{
			name: "before anything runs: done at once, Start returns nothing",
			steps: func(e *engine) {
				e.apply(e.run.Cancel())
				e.apply(e.run.Start())
			},
			want: []string{"cancel a: run canceled", "cancel b: run canceled", "cancel c: run canceled",
				"cancel d: run canceled", "cancel e: run canceled", "done CANCELED"},
			states: "a=CANCELED b=CANCELED c=CANCELED d=CANCELED e=CANCELED",
			result: spec.RunCanceled,
		},
		{
			name: "a running task failing after cancel fails the run",
			steps: func(e *engine) {
				e.apply(e.run.Start())
				e.apply(e.run.Cancel())
				e.outcome["a"] = spec.TaskFailed
				e.finish()
			},
			want: []string{"start a", "stop a", "cancel b: run canceled", "cancel c: run canceled",
				"cancel d: run canceled", "cancel e: run canceled", "finished a FAILED", "done FAILED"},
			states: "a=FAILED b=CANCELED c=CANCELED d=CANCELED e=CANCELED",
			result: spec.RunFailed,
		},
		{
			name: "after done: nothing",
			steps: func(e *engine) {
				e.runAll()
				e.trace = nil
				e.apply(e.run.Cancel())
			},
			states: "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED d=SUCCEEDED e=SUCCEEDED",
			result: spec.RunSucceeded,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEngine(t, plan(t, task("a"), task("b", "a"), task("c", "a"), task("d", "b"), task("e", "c", "d")), nil)
			tc.steps(e)
			sameTrace(t, e.trace, tc.want)
			if got := e.states(); got != tc.states {
				t.Errorf("states = %s, want %s", got, tc.states)
			}
			if got, ok := e.run.Done(); !ok || got != tc.result {
				t.Errorf("Done() = %s, %v; want %s, true", got, ok, tc.result)
			}
		})
	}
}

func TestRun_Restore(t *testing.T) {
	t.Parallel()
	S, R, F, K, C := spec.TaskSucceeded, spec.TaskRunning, spec.TaskFailed, spec.TaskSkipped, spec.TaskCanceled
	// a -> b -> d, a -> c -> d, x -> y
	tasks := func() []spec.Task {
		return []spec.Task{task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c"), task("x"), task("y", "x")}
	}
	cases := []struct {
		name     string
		restored map[string]spec.TaskState
		cancel   bool // the run was being cancelled: Cancel before Start
		then     func(e *engine)
		want     []string
		states   string
	}{
		{
			name:     "some done, some running: only newly ready tasks start",
			restored: map[string]spec.TaskState{"a": S, "b": S, "c": R, "x": R},
			then:     func(e *engine) { e.queue = []int{2, 4}; e.finish(); e.finish() },
			want: []string{"finished c SUCCEEDED", "start d", "finished x SUCCEEDED", "start y",
				"finished d SUCCEEDED", "finished y SUCCEEDED", "done SUCCEEDED"},
			states: "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED d=SUCCEEDED x=SUCCEEDED y=SUCCEEDED",
		},
		{
			name:     "dispatched task was never recorded running: it starts again",
			restored: map[string]spec.TaskState{"a": S, "x": S, "y": S},
			want: []string{"start b", "start c", "finished b SUCCEEDED", "finished c SUCCEEDED",
				"start d", "finished d SUCCEEDED", "done SUCCEEDED"},
			states: "a=SUCCEEDED b=SUCCEEDED c=SUCCEEDED d=SUCCEEDED x=SUCCEEDED y=SUCCEEDED",
		},
		{
			name:     "recorded failure: pending successors skipped at Start",
			restored: map[string]spec.TaskState{"a": S, "b": F, "c": R, "x": S},
			then:     func(e *engine) { e.queue = append([]int{2}, e.queue...) },
			want: []string{`skip d: upstream task "b" failed`, "start y",
				"finished c SUCCEEDED", "finished y SUCCEEDED", "done FAILED"},
			states: "a=SUCCEEDED b=FAILED c=SUCCEEDED d=SKIPPED x=SUCCEEDED y=SUCCEEDED",
		},
		{
			name:     "everything final: done at Start",
			restored: map[string]spec.TaskState{"a": S, "b": S, "c": F, "d": K, "x": C, "y": K},
			want:     []string{"done FAILED"},
			states:   "a=SUCCEEDED b=SUCCEEDED c=FAILED d=SKIPPED x=CANCELED y=SKIPPED",
		},
		{
			name:     "cancelling run rebuilt: stop the running, cancel the pending",
			restored: map[string]spec.TaskState{"a": S, "b": R, "c": C, "x": S, "y": C},
			cancel:   true,
			then:     func(e *engine) { e.outcome["b"] = C; e.queue = []int{1} },
			want:     []string{"stop b", "cancel d: run canceled", "finished b CANCELED", "done CANCELED"},
			states:   "a=SUCCEEDED b=CANCELED c=CANCELED d=CANCELED x=SUCCEEDED y=CANCELED",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := plan(t, tasks()...)
			e := newEngine(t, p, nil)
			for name, st := range tc.restored {
				var out map[string]spec.Value
				if st == S {
					out = paramOut(name)
				}
				e.run.Restore(p.TaskIndex(name), st, out)
			}
			if tc.cancel {
				e.apply(e.run.Cancel())
			}
			e.apply(e.run.Start())
			if tc.then != nil {
				tc.then(e)
			}
			for len(e.queue) > 0 {
				e.finish()
			}
			sameTrace(t, e.trace, tc.want)
			if got := e.states(); got != tc.states {
				t.Errorf("states = %s, want %s", got, tc.states)
			}
			e.run.Restore(0, spec.TaskPending, nil) // after Start: ignored
			if e.run.State(0) == spec.TaskPending {
				t.Error("Restore after Start changed a task")
			}
		})
	}
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestRun_Inputs(t *testing.T) {
	t.Parallel()
	model := &spec.ArtifactRef{Digest: "sha256:ab", Size: 3, Type: spec.TypeModel}
	upOut := map[string]spec.Value{"lr": {Param: raw("0.1")}, "model": {Artifact: model}}
	cases := []struct {
		name    string
		inputs  []spec.Input
		params  map[string]json.RawMessage
		upOut   map[string]spec.Value
		want    map[string]spec.Value // nil: expect ActFail
		wantErr string
	}{
		{
			name:   "literal",
			inputs: []spec.Input{{Name: "n", Type: spec.TypeInt, Value: raw("3")}},
			want:   map[string]spec.Value{"n": {Param: raw("3")}},
		},
		{
			name:   "pipeline parameter",
			inputs: []spec.Input{{Name: "epochs", Type: spec.TypeInt, Param: "epochs"}},
			params: map[string]json.RawMessage{"epochs": raw("10")},
			want:   map[string]spec.Value{"epochs": {Param: raw("10")}},
		},
		{
			name:   "pipeline parameter default",
			inputs: []spec.Input{{Name: "name", Type: spec.TypeString, Param: "who"}},
			want:   map[string]spec.Value{"name": {Param: raw(`"world"`)}},
		},
		{
			name:   "upstream parameter and artifact",
			inputs: []spec.Input{fromIn("lr", spec.TypeFloat, "up", "lr"), fromIn("m", spec.TypeModel, "up", "model")},
			want:   map[string]spec.Value{"lr": {Param: raw("0.1")}, "m": {Artifact: model}},
		},
		{
			name:    "missing upstream output fails the task",
			inputs:  []spec.Input{fromIn("x", spec.TypeString, "up", "nope")},
			wantErr: `input "x": upstream task "up" produced no output "nope"`,
		},
		{
			name:    "upstream output with no value fails the task",
			inputs:  []spec.Input{fromIn("lr", spec.TypeFloat, "up", "lr")},
			upOut:   map[string]spec.Value{"lr": {}},
			wantErr: `input "lr": upstream task "up" produced no output "lr"`,
		},
		{
			name:    "parameter where an artifact is declared",
			inputs:  []spec.Input{fromIn("m", spec.TypeModel, "up", "lr")},
			wantErr: `input "m": upstream task "up" output "lr" is a parameter, want artifact Model`,
		},
		{
			name:    "artifact where a parameter is declared",
			inputs:  []spec.Input{fromIn("lr", spec.TypeFloat, "up", "model")},
			wantErr: `input "lr": upstream task "up" output "model" is an artifact, want parameter float`,
		},
		{
			name:    "required parameter without value",
			inputs:  []spec.Input{{Name: "e", Type: spec.TypeInt, Param: "epochs"}},
			wantErr: `input "e": pipeline parameter "epochs" has no value`,
		},
		{
			name:    "no source",
			inputs:  []spec.Input{{Name: "e", Type: spec.TypeInt}},
			wantErr: `input "e": no value, param or from`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := finalize(t, &spec.Plan{
				Name: "p",
				Params: []spec.Param{
					{Name: "epochs", Type: spec.TypeInt},
					{Name: "who", Type: spec.TypeString, Default: raw(`"world"`)},
				},
				Tasks: []spec.Task{task("up"), withInputs(task("down", "up"), tc.inputs...), task("after", "down")},
			})
			r := New(p, tc.params)
			if ds := r.Start(); len(ds) != 1 || ds[0].Action != ActStart || ds[0].Task != 0 {
				t.Fatalf("Start = %v", ds)
			}
			out := upOut
			if tc.upOut != nil {
				out = tc.upOut
			}
			ds := r.Finished(0, spec.TaskSucceeded, out)
			if tc.wantErr == "" {
				if len(ds) != 1 || ds[0].Action != ActStart || ds[0].Task != 1 {
					t.Fatalf("Finished = %v, want start 1", ds)
				}
				if !reflect.DeepEqual(ds[0].Inputs, tc.want) {
					t.Errorf("inputs = %v, want %v", ds[0].Inputs, tc.want)
				}
				return
			}
			want := []Decision{
				{Action: ActFail, Task: 1, Reason: tc.wantErr},
				{Action: ActSkip, Task: 2, Reason: `upstream task "down" failed`},
				{Action: ActDone, RunState: spec.RunFailed},
			}
			if !reflect.DeepEqual(ds, want) {
				t.Errorf("Finished =\n  %v\nwant\n  %v", ds, want)
			}
			if r.Outputs() != nil {
				t.Error("Outputs of a failed run should be nil")
			}
		})
	}
}

func TestRun_NoInputsMeansNilMap(t *testing.T) {
	t.Parallel()
	r := New(plan(t, task("a")), nil)
	ds := r.Start()
	if len(ds) != 1 || ds[0].Inputs != nil {
		t.Fatalf("Start = %#v", ds)
	}
}

func TestRun_Outputs(t *testing.T) {
	t.Parallel()
	p := finalize(t, &spec.Plan{
		Name:  "p",
		Tasks: []spec.Task{task("a"), task("b", "a")},
		Outputs: []spec.PlanOutput{
			{Name: "first", From: spec.Ref{Task: "a", Output: "out"}},
			{Name: "second", From: spec.Ref{Task: "b", Output: "out"}},
			{Name: "missing", From: spec.Ref{Task: "b", Output: "nope"}},
		},
	})
	r := New(p, nil)
	r.Start()
	if r.Outputs() != nil {
		t.Fatal("Outputs before done should be nil")
	}
	r.Finished(0, spec.TaskSucceeded, paramOut("a"))
	ds := r.Finished(1, spec.TaskSucceeded, paramOut("b"))
	if len(ds) != 1 || ds[0].Action != ActDone || ds[0].RunState != spec.RunSucceeded {
		t.Fatalf("Finished = %v", ds)
	}
	want := map[string]spec.Value{"first": {Param: raw(`"a"`)}, "second": {Param: raw(`"b"`)}}
	if got := r.Outputs(); !reflect.DeepEqual(got, want) {
		t.Errorf("Outputs = %v, want %v", got, want)
	}
}

func TestRun_FinishedIgnoresTasksNotRunning(t *testing.T) {
	t.Parallel()
	r := New(plan(t, task("a"), task("b", "a")), nil)
	if ds := r.Finished(0, spec.TaskSucceeded, nil); ds != nil {
		t.Fatalf("Finished before Start = %v", ds)
	}
	r.Start()
	for _, call := range []struct {
		task  int
		state spec.TaskState
	}{{1, spec.TaskSucceeded}, {-1, spec.TaskSucceeded}, {7, spec.TaskFailed}, {0, spec.TaskRunning}, {0, spec.TaskPending}} {
		if ds := r.Finished(call.task, call.state, nil); ds != nil {
			t.Errorf("Finished(%d, %s) = %v, want nil", call.task, call.state, ds)
		}
	}
	want := Counts{Pending: 1, Running: 1}
	if got := r.Counts(); got != want {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
	r.Finished(0, spec.TaskSucceeded, nil)
	r.Finished(1, spec.TaskSucceeded, nil)
	if ds := r.Finished(1, spec.TaskSucceeded, nil); ds != nil {
		t.Errorf("duplicate Finished = %v", ds)
	}
	if ds := r.Start(); ds != nil {
		t.Errorf("second Start = %v", ds)
	}
	want = Counts{Succeeded: 2}
	if got := r.Counts(); got != want || got.Total() != 2 {
		t.Errorf("Counts = %+v, want %+v", got, want)
	}
}

func TestValidate_RejectsUnfinalizedPlans(t *testing.T) {
	t.Parallel()
	good := func() *spec.Plan {
		return finalize(t, &spec.Plan{
			Name:    "p",
			Tasks:   []spec.Task{task("a"), withInputs(task("b"), fromIn("x", spec.TypeString, "a", "out"))},
			Outputs: []spec.PlanOutput{{Name: "o", From: spec.Ref{Task: "b", Output: "out"}}},
		})
	}
	cases := []struct {
		name  string
		edit  func(p *spec.Plan)
		field string
	}{
		{"dep out of range", func(p *spec.Plan) { p.Tasks[1].Deps = []int{5} }, "tasks[1].deps[0]"},
		{"self dep", func(p *spec.Plan) { p.Tasks[0].Deps = []int{0} }, "tasks[0].deps[0]"},
		{"cycle", func(p *spec.Plan) { p.Tasks[0].Deps = []int{1} }, "tasks[0].deps"},
		{"ref not in deps", func(p *spec.Plan) { p.Tasks[1].Deps = nil }, "tasks[1].inputs[0].from"},
		{"ref index wrong", func(p *spec.Plan) { p.Tasks[1].Inputs[0].From.TaskIndex = 1 }, "tasks[1].inputs[0].from"},
		{"output ref out of range", func(p *spec.Plan) { p.Outputs[0].From.TaskIndex = -1 }, "outputs[0].from"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := good()
			tc.edit(p)
			err := Validate(p)
			var pe *PlanError
			if !errors.Is(err, ErrInvalidPlan) || !errors.As(err, &pe) || pe.Field != tc.field {
				t.Fatalf("Validate = %v, want a PlanError at %s", err, tc.field)
			}
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			New(p, nil)
		})
	}
	if err := Validate(nil); !errors.Is(err, ErrInvalidPlan) {
		t.Errorf("Validate(nil) = %v", err)
	}
}
