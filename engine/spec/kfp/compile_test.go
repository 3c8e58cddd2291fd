package kfp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

func TestTranslateCondition(t *testing.T) {
	names := func(n string) (string, bool) { return identName(n), n != "missing" }
	cases := []struct{ in, want, err string }{
		{`inputs.parameter_values['pipelinechannel--flip-coin-Output'] == 'heads'`, `inputs["pipelinechannel--flip-coin-Output"] == 'heads'`, ""},
		{`!(int(inputs.parameter_values["x"]) < 5) && inputs.parameter_values['y'] == true`, `!(int(inputs["x"]) < 5) && inputs["y"] == true`, ""},
		{`inputs.parameter_values['missing'] == 1`, "", "not an input"},
		{`inputs.artifacts['a'].artifacts[0].metadata['k'] == 1`, "", "unsupported"},
	}
	for _, tc := range cases {
		got, err := translateCondition(tc.in, names)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if tc.err == "" {
			if err := spec.CompileCondition(got); err != nil {
				t.Errorf("%s: not a valid when: %v", got, err)
			}
		}
	}
}

func TestSelectorField(t *testing.T) {
	for in, want := range map[string]string{
		`parseJson(string_value)["A_a"]`:       "A_a",
		`parseJson(string_value)["a"]["b"][0]`: "a.b.0",
		`parseJson(string_value)['q']`:         "q",
		`string_value`:                         "",
		`parseJson(string_value)["a.b"]`:       "",
		`parseJson(string_value)["a"] + "x"`:   "",
	} {
		got, err := selectorField(in)
		if (want == "") != (err != nil) || got != want {
			t.Errorf("selectorField(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestRetryAndResources(t *testing.T) {
	two := 2.0
	r, ferr := retry(&RetryPolicy{MaxRetryCount: 3, BackoffDuration: "5s", BackoffFactor: &two, BackoffMaxDuration: "1s"})
	if ferr != nil || r.Limit != 3 || r.Factor != 2 || r.Backoff.D() != time.Second || r.MaxBackoff.D() != time.Second {
		t.Errorf("retry = %+v, %v", r, ferr)
	}
	if _, ferr := retry(&RetryPolicy{BackoffDuration: "soon"}); ferr == nil || ferr.field != "backoffDuration" {
		t.Errorf("bad duration: %+v", ferr)
	}
	half := 0.5
	mem := 2.0
	res, dyn, ferr := staticResources(&ResourceSpec{CPULimit: &half, MemoryLimit: &mem, ResourceCPURequest: "250m",
		Accelerator: &AcceleratorSpec{ResourceType: "nvidia.com/gpu", ResourceCount: "2"}})
	if ferr != nil || dyn || res != (spec.Resources{MilliCPU: 250, MemoryBytes: 2e9, GPU: 2, Accelerator: "nvidia.com/gpu"}) {
		t.Errorf("resources = %+v, %v, %v", res, dyn, ferr)
	}
	_, dyn, _ = staticResources(&ResourceSpec{ResourceMemoryLimit: "{{$.inputs.parameters['m']}}"})
	if !dyn {
		t.Error("a placeholder memory limit is not dynamic")
	}
	if _, _, ferr := staticResources(&ResourceSpec{ResourceMemoryLimit: "lots"}); ferr == nil || ferr.field != "resourceMemoryLimit" {
		t.Errorf("bad memory: %+v", ferr)
	}
	for in, want := range map[string]int64{"1Gi": 1 << 30, "1.5G": 1.5e9, "512Mi": 512 << 20, "100": 100} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%s) = %d, %v", in, got, err)
		}
	}
}

func TestNames_MapToSkiffRules(t *testing.T) {
	long := strings.Repeat("pipelinechannel--loop-item-", 4)
	a, b := identName(long+"a"), identName(long+"b")
	if len(a) > 63 || a == b || identName(long+"a") != a {
		t.Errorf("identName: %q %q", a, b)
	}
	if identName("ok-name_1") != "ok-name_1" || taskName("for-loop-2") != "for-loop-2" {
		t.Error("valid names changed")
	}
	if n := taskName("My Task"); len(n) > 63 || strings.ContainsAny(n, " M") {
		t.Errorf("taskName = %q", n)
	}
}

// compileIR compiles an IR document strictly.
func compileIR(t *testing.T, doc string) *spec.Plan {
	t.Helper()
	p, _, err := Load([]byte(doc), "", Options{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return p
}

const controlFlowIR = `
pipelineInfo: {name: flow}
components:
  comp-gen:
    executorLabel: exec-gen
    outputDefinitions:
      parameters:
        Output: {parameterType: LIST}
  comp-show:
    executorLabel: exec-show
    inputDefinitions:
      parameters:
        x: {parameterType: STRING}
    outputDefinitions:
      parameters:
        Output: {parameterType: STRING}
  comp-for-loop-1:
    dag:
      tasks:
        show:
          componentRef: {name: comp-show}
          taskInfo: {name: show}
          cachingOptions: {enableCache: true, cacheKey: mykey}
          retryPolicy: {maxRetryCount: 2, backoffDuration: 1s}
          inputs:
            parameters:
              x:
                componentInputParameter: pipelinechannel--gen-Output-loop-item
                parameterExpressionSelector: parseJson(string_value)["a"]
      outputs:
        parameters:
          pipelinechannel--show-Output:
            valueFromParameter: {producerSubtask: show, outputParameterKey: Output}
    inputDefinitions:
      parameters:
        pipelinechannel--gen-Output: {parameterType: LIST}
        pipelinechannel--gen-Output-loop-item: {parameterType: STRUCT}
    outputDefinitions:
      parameters:
        pipelinechannel--show-Output: {parameterType: LIST}
  comp-exit:
    executorLabel: exec-exit
    inputDefinitions:
      parameters:
        status: {parameterType: TASK_FINAL_STATUS, isOptional: true}
deploymentSpec:
  executors:
    exec-gen:
      container: {image: alpine, command: [sh, -c, "echo '[{\"a\":\"1\"}]' > $0", "{{$.outputs.parameters['Output'].output_file}}"]}
    exec-exit:
      container: {image: alpine, command: [echo, "{{$.inputs.parameters['status']}}"]}
    exec-show:
      container:
        image: alpine
        command:
        - echo
        - '{"IfPresent": {"InputName": "x", "Then": ["{{$.inputs.parameters[''x'']}}"]}}'
root:
  dag:
    tasks:
      gen:
        componentRef: {name: comp-gen}
        taskInfo: {name: gen}
      for-loop-1:
        componentRef: {name: comp-for-loop-1}
        taskInfo: {name: for-loop-1}
        dependentTasks: [gen]
        iteratorPolicy: {parallelismLimit: 2}
        parameterIterator:
          itemInput: pipelinechannel--gen-Output-loop-item
          items: {inputParameter: pipelinechannel--gen-Output}
        inputs:
          parameters:
            pipelinechannel--gen-Output:
              taskOutputParameter: {producerTask: gen, outputParameterKey: Output}
        triggerPolicy:
          condition: "size(inputs.parameter_values['pipelinechannel--gen-Output']) > 0"
      exit:
        componentRef: {name: comp-exit}
        taskInfo: {name: exit}
        dependentTasks: [for-loop-1]
        triggerPolicy: {strategy: ALL_UPSTREAM_TASKS_COMPLETED}
        inputs:
          parameters:
            status: {taskFinalStatus: {producerTask: for-loop-1}}
    outputs:
      parameters:
        shown:
          valueFromParameter: {producerSubtask: for-loop-1, outputParameterKey: pipelinechannel--show-Output}
  outputDefinitions:
    parameters:
      shown: {parameterType: LIST}
`

func TestCompile_ControlFlow(t *testing.T) {
	p := compileIR(t, controlFlowIR)
	loop := &p.Tasks[p.TaskIndex("for-loop-1")]
	switch {
	case loop.Body == nil || loop.ParallelFor == nil:
		t.Fatalf("for-loop-1 = %+v, want a loop group", loop)
	case loop.ParallelFor.Parallelism != 2 || loop.ParallelFor.ItemParam != "pipelinechannel--gen-Output-loop-item":
		t.Errorf("loop = %+v", loop.ParallelFor)
	case loop.ParallelFor.Items.From == nil || loop.ParallelFor.Items.From.Task != "gen":
		t.Errorf("items = %+v", loop.ParallelFor.Items)
	case loop.When != `size(inputs["pipelinechannel--gen-Output"]) > 0`:
		t.Errorf("when = %q", loop.When)
	case len(loop.After) != 1 || loop.After[0] != "gen":
		t.Errorf("after = %v", loop.After)
	}
	if o := loop.Output("pipelinechannel--show-Output"); o == nil || o.Type != spec.TypeList {
		t.Errorf("loop outputs = %+v, want a list", loop.Outputs)
	}
	show := &loop.Body.Tasks[0]
	if show.Cache == nil || !show.Cache.Enabled || show.Cache.Key != "mykey" || show.Retry == nil || show.Retry.Limit != 2 {
		t.Errorf("show policies: cache %+v retry %+v", show.Cache, show.Retry)
	}
	if in := show.Inputs[0]; in.Field != "a" || in.Param != "pipelinechannel--gen-Output-loop-item" || in.Type != spec.TypeString {
		t.Errorf("show input = %+v", in)
	}
	exit := &p.Tasks[p.TaskIndex("exit")]
	if !exit.IgnoreUpstreamFailure || len(exit.Inputs) != 1 || !exit.Inputs[0].UpstreamStatus {
		t.Errorf("exit = %+v", exit)
	}
	if len(p.Outputs) != 1 || p.Outputs[0].From.Task != "for-loop-1" {
		t.Errorf("outputs = %+v", p.Outputs)
	}
	// Every step carries what dispatch needs.
	var d taskData
	if err := json.Unmarshal(show.KFP, &d); err != nil || d.Task != "show" || d.Container == nil || len(d.Params) != 1 {
		t.Errorf("kfp data = %+v, %v", d, err)
	}
}

func TestCompile_Rejects(t *testing.T) {
	cases := []struct{ name, old, new, path, msg string }{
		{"unknown component", "componentRef: {name: comp-exit}", "componentRef: {name: comp-nope}", "root.dag.tasks.exit.componentRef.name", "unknown component"},
		{"unknown producer", "{producerTask: gen, outputParameterKey: Output}", "{producerTask: gem, outputParameterKey: Output}", "root.dag.tasks.for-loop-1.inputs.parameters.pipelinechannel--gen-Output.taskOutputParameter.producerTask", "unknown task"},
		{"unknown output", "{producerTask: gen, outputParameterKey: Output}", "{producerTask: gen, outputParameterKey: Out}", "root.dag.tasks.for-loop-1.inputs.parameters.pipelinechannel--gen-Output.taskOutputParameter.outputParameterKey", "no output parameter"},
		{"bad dependency", "dependentTasks: [gen]", "dependentTasks: [gone]", "root.dag.tasks.for-loop-1.dependentTasks[0]", "unknown task"},
		{"unknown placeholder", "\"{{$.outputs.parameters['Output'].output_file}}\"", "\"{{$.pipeline_google_cloud_location}}\"", "deploymentSpec.executors.exec-gen.container.command[3]", "unsupported placeholder"},
		{"undeclared placeholder", "\"{{$.outputs.parameters['Output'].output_file}}\"", "\"{{$.outputs.parameters['Nope'].output_file}}\"", "deploymentSpec.executors.exec-gen.container.command[3]", "does not declare"},
		{"bad condition", "size(inputs.parameter_values['pipelinechannel--gen-Output']) > 0", "inputs.parameter_values['nope'] > 0", "root.dag.tasks.for-loop-1.triggerPolicy.condition", "not an input"},
		{"bad strategy", "strategy: ALL_UPSTREAM_TASKS_COMPLETED", "strategy: SOMETIMES", "root.dag.tasks.exit.triggerPolicy.strategy", "unknown strategy"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := strings.Replace(controlFlowIR, tc.old, tc.new, 1)
			if doc == controlFlowIR {
				t.Fatalf("edit %q not found", tc.old)
			}
			_, _, err := Load([]byte(doc), "", Options{})
			if err == nil {
				t.Fatal("compiled, want an error")
			}
			if errs := fieldErrors(t, err); !hasError(errs, tc.path, tc.msg) {
				t.Fatalf("errors %v lack %s: %s", errs, tc.path, tc.msg)
			}
		})
	}
}

func TestCompile_RootArtifactInputIsImported(t *testing.T) {
	plan, _, err := loadCorpusFile(t, "input_artifact.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	prm := plan.Param("data")
	imp := plan.TaskIndex("import-data")
	if prm == nil || prm.Type != spec.TypeString || prm.Default != nil || imp < 0 {
		t.Fatalf("params %+v, tasks %+v", plan.Params, plan.Tasks)
	}
	inv, err := Prepare(&plan.Tasks[imp], map[string]spec.Value{"uri": {Param: json.RawMessage(`"gs://bucket/x"`)}}, goldenRuntime)
	if err == nil || !strings.Contains(err.Error(), "gs:// is not supported") {
		t.Fatalf("remote import: %+v, %v", inv, err)
	}
	inv, err = Prepare(&plan.Tasks[imp], map[string]spec.Value{"uri": {Param: json.RawMessage(`"file:///data/x.csv"`)}}, goldenRuntime)
	if err != nil || inv.Command[3] != "/data/x.csv" || !strings.HasSuffix(inv.Command[4], "/outputs/artifact") {
		t.Fatalf("local import: %+v, %v", inv, err)
	}
}
