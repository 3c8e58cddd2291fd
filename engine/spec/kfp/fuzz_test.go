package kfp

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/skiffml/skiff/engine/spec"
)

// FuzzLoad feeds arbitrary files to the IR parser and compiler: they must
// never panic, every rejection is a *spec.ValidationError, and a plan they
// accept is finalized.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(minimalIR))
	f.Add([]byte(controlFlowIR))
	f.Add([]byte(minimalIR + "---\nplatforms: {kubernetes: {deploymentSpec: {executors: {exec-echo: {tolerations: [{key: a}]}}}}}\n"))
	f.Add([]byte(minimalIR + "---\nplatforms: {kubernetes: {pipelineConfig: {workspace: {size: 1Gi, kubernetes: {pvcSpecPatch: {a: b}}}}}}\n"))
	for _, name := range []string{"pipeline_with_loops_and_conditions.yaml", "pipeline_with_task_final_status_yaml.yaml", "container_with_if_placeholder.yaml"} {
		if data, err := os.ReadFile(filepath.Join(corpusDir, name)); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lenient := range []bool{false, true} {
			doc, _, err := Parse(data, Options{Lenient: lenient})
			if err != nil {
				var ve *spec.ValidationError
				if !errors.As(err, &ve) || len(ve.Errors) == 0 {
					t.Fatalf("Parse error %v is not a *spec.ValidationError with errors", err)
				}
				continue
			}
			plan, _, err := Compile(doc, Options{Lenient: lenient})
			if err != nil {
				continue
			}
			if plan.Version != spec.PlanVersion {
				t.Fatalf("accepted plan is not finalized: %+v", plan)
			}
		}
	})
}

// FuzzResolve resolves arbitrary arguments for a step with an input, an
// optional input and outputs: no panics, and every error is an error.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		"{{$}}", "{{$.inputs.parameters['msg']}}", "x{{$.json_escape[2]}}y",
		`{"IfPresent": {"InputName": "opt", "Then": ["a"], "Else": [{"Concat": ["b", "{{$.pipeline_job_uuid}}"]}]}}`,
		`{"Concat": ["{{$.outputs.parameters['out'].output_file}}", {"IfPresent": {"InputName": "msg", "Then": "{{$.inputs.artifacts['data'].uri}}"}}]}`,
		"{{$.inputs.artifacts['data'].metadata}}", "{{$.outputs.artifacts['model'].path}}", "{{$", "{{$.nope}}", "{{$.inputs.parameters[\"msg\"]}}",
		"{{$.workspace_path}}/f", "id={{$.pipeline_persistent_resource_id}}",
	} {
		f.Add(s)
	}
	d := taskData{Task: "t", Container: &ContainerSpec{},
		Params:       []paramIn{{Name: "msg", Input: "msg", Type: irString, Declared: true}, {Name: "opt", Type: irInt, Declared: true}},
		Artifacts:    []artifactIn{{Name: "data", Input: "data", Schema: ArtifactTypeSchema{SchemaTitle: "system.Dataset"}}},
		OutParams:    []paramOut{{Name: "out", Output: "out", Type: irInt}},
		OutArtifacts: []artifactOut{{Name: "model", Output: "model", Schema: ArtifactTypeSchema{SchemaTitle: "system.Model"}}}}
	inputs := map[string]spec.Value{
		"msg":  {Param: json.RawMessage(`"hi \"there\""`)},
		"data": {Artifact: &spec.ArtifactRef{Digest: "sha256:00", Type: spec.TypeDataset}},
	}
	f.Fuzz(func(t *testing.T, arg string) {
		if !utf8.ValidString(arg) {
			t.Skip("IR text is UTF-8")
		}
		d := d
		c := *d.Container
		c.Args = []string{arg}
		d.Container = &c
		task := &spec.Task{Name: "t", Protocol: spec.ProtocolKFP, KFP: mustJSON(d)}
		inv, err := Prepare(task, inputs, goldenRuntime)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !json.Valid(inv.ExecutorInput) {
			t.Fatalf("ExecutorInput is not JSON: %s", inv.ExecutorInput)
		}
		if !strings.Contains(arg, "{{$") && !strings.Contains(arg, `{"`) && (len(inv.Args) != 1 || inv.Args[0] != arg) {
			t.Fatalf("an argument without placeholders changed: %q -> %q", arg, inv.Args)
		}
	})
}

func TestResolve_Placeholders(t *testing.T) {
	d := taskData{Task: "train", Pipeline: "p", Container: &ContainerSpec{},
		Params:       []paramIn{{Name: "n", Input: "n", Type: irInt, Declared: true}, {Name: "lr", Input: "lr", Type: irDouble, Declared: true}, {Name: "opt", Type: irString, Declared: true}},
		OutArtifacts: []artifactOut{{Name: "model", Output: "model", Schema: ArtifactTypeSchema{SchemaTitle: "system.Model", SchemaVersion: "0.0.1"}}}}
	inputs := map[string]spec.Value{"n": {Param: json.RawMessage(`3`)}, "lr": {Param: json.RawMessage(`1e-7`)}}
	r, err := newResolver(&d, inputs, goldenRuntime)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"n={{$.inputs.parameters['n']}} lr={{$.inputs.parameters['lr']}}": "n=3 lr=0.0000001",
		"{{$.outputs.artifacts['model'].uri}}":                            goldenRuntime.Root + "/outputs/model",
		"{{$.pipeline_job_name}}/{{$.pipeline_task_name}}":                "my-run/train",
		"{{$.pipeline_job_resource_name}} {{$.pipeline_root}}":            "p-run-1 " + goldenRuntime.PipelineRoot,
		"{{$.outputs.output_file}}":                                       goldenRuntime.Root + "/executor_output.json",
	} {
		if got, err := r.text(in); err != nil || got != want {
			t.Errorf("%s = %q, %v; want %q", in, got, err, want)
		}
	}
	esc, err := r.text("{{$.json_escape[1]}}")
	var back string
	if err != nil || json.Unmarshal([]byte(`"`+esc+`"`), &back) != nil || back != string(r.eiJSON) {
		t.Errorf("json_escape[1] = %q, %v: does not unescape to the ExecutorInput", esc, err)
	}
	if _, err := r.text("{{$.inputs.parameters['opt']}}"); err == nil || !strings.Contains(err.Error(), "IfPresent") {
		t.Errorf("unset input: %v", err)
	}
	args, err := r.args("args", []string{`{"IfPresent": {"InputName": "opt", "Then": ["--opt"], "Else": ["--no-opt", {"Concat": ["n", "{{$.inputs.parameters['n']}}"]}]}}`})
	if err != nil || strings.Join(args, " ") != "--no-opt n3" {
		t.Errorf("IfPresent/Concat = %q, %v", args, err)
	}
}

// TestResolve_FinalStatus: a TASK_FINAL_STATUS input holds the state KFP's
// backend gives (ML Metadata's COMPLETE, FAILED, CANCELED) and the run's
// resource name <pipeline-name>-<suffix>, as KFP's own backend test
// pipeline_with_input_status_state checks them.
func TestResolve_FinalStatus(t *testing.T) {
	d := taskData{Task: "echo", Pipeline: "status-state-pipeline", Container: &ContainerSpec{},
		Params: []paramIn{{Name: "status", Input: "status", Type: "TASK_FINAL_STATUS", Declared: true, StatusOf: "exit-handler-1"}}}
	for skiffState, want := range map[string]string{
		`{"state":"SUCCEEDED","tasks":{}}`:                      `{"error":{},"pipelineJobResourceName":"status-state-pipeline-run-1","pipelineTaskName":"exit-handler-1","state":"COMPLETE"}`,
		`{"state":"FAILED","error":"task a failed","tasks":{}}`: `{"error":{"code":2,"message":"task a failed"},"pipelineJobResourceName":"status-state-pipeline-run-1","pipelineTaskName":"exit-handler-1","state":"FAILED"}`,
		`{"state":"CANCELED","tasks":{}}`:                       `{"error":{},"pipelineJobResourceName":"status-state-pipeline-run-1","pipelineTaskName":"exit-handler-1","state":"CANCELED"}`,
	} {
		r, err := newResolver(&d, map[string]spec.Value{"status": {Param: json.RawMessage(skiffState)}}, goldenRuntime)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(r.params["status"]); got != want {
			t.Errorf("%s:\n got %s\nwant %s", skiffState, got, want)
		}
		if got, err := r.text("{{$.pipeline_job_resource_name}}"); err != nil || got != "status-state-pipeline-run-1" {
			t.Errorf("pipeline_job_resource_name = %q, %v", got, err)
		}
	}
}
