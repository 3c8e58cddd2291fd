package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kfpCorpus is the KFP conformance corpus, relative to this package.
const kfpCorpus = "../../../shared/kfp-corpus"

// TestCLI_KFPCorpusRuns runs the container-only pipelines of the KFP corpus
// (those that need no kfp Python package) whose commands exist on this
// machine, unchanged, with the local executor: each must end SUCCEEDED.
// The others are listed with why they cannot run here.
func TestCLI_KFPCorpusRuns(t *testing.T) {
	if _, err := os.Stat(filepath.Join(kfpCorpus, "INDEX.tsv")); err != nil {
		t.Skipf("no KFP corpus at %s", kfpCorpus)
	}
	cases := []struct {
		file   string
		params []string
		logs   map[string]string // task -> text its log must hold
		skip   string
	}{
		{file: "container_no_input.yaml", logs: map[string]string{"container-no-input": "hello world"}},
		{file: "hello-world.yaml", logs: map[string]string{"echo": "hello world"}},
		{file: "pipeline_with_only_display_name.yaml"},
		{file: "pipeline_with_task_final_status_yaml.yaml", logs: map[string]string{
			"exit-op": `"state":"COMPLETE"`, "exit-handler-1.print-op": "Hello World!"}},
		{file: "placeholder_with_if_placeholder_none_input_value.yaml"},
		{file: "producer_consumer_param_pipeline.yaml", logs: map[string]string{"consumer": "Hello world, this is an output parameter"}},
		{file: "two_step_pipeline.yaml", skip: "reads its artifact with gsutil, which takes gs:// URIs only"},
		{file: "two_step_pipeline_containerized.yaml"},
		{file: "fast_artifact.yaml"},
		{file: "pipeline_with_nested_conditions_yaml.yaml"},
		{file: "apiserver-template__hello_world.yaml", params: []string{"y=hi"}},
		{file: "arguments-parameters.yaml", params: []string{"param2=two"}, logs: map[string]string{"echo": "two"}},
		{file: "hello_world_schema_2_0_0.yaml", params: []string{"text=hi there"}, logs: map[string]string{"hello-world": "hi there"}},
		{file: "literal-input.yaml", params: []string{"environment=prod"}},
		{file: "sequential.yaml", params: []string{"param1=a", "param2=b"}},
		{file: "sequential_v1.yaml", params: []string{"param1=a", "param2=b"}},
		{file: "v2-hello-world.yaml", params: []string{"text=hi"}, logs: map[string]string{"hello-world": "hi"}},

		{file: "container_with_artifact_output.yaml", skip: "runs run.sh, which only its image holds"},
		{file: "container_with_concat_placeholder.yaml", skip: "runs my_program, which only its image holds"},
		{file: "container_with_if_placeholder.yaml", skip: "runs my_program, which only its image holds"},
		{file: "xgboost_sample_pipeline.yaml", skip: "downloads a dataset and needs xgboost and pandas"},
		{file: "apiserver-server-test__xgboost_sample_pipeline.yaml", skip: "downloads a dataset and needs xgboost and pandas"},
		{file: "frontend-mock__xgboost_sample_pipeline.yaml", skip: "downloads a dataset and needs xgboost and pandas"},
		{file: "sequential-v2.yaml", skip: "needs gsutil and Google Cloud Storage"},
		{file: "long-running.yaml", skip: "sleeps 10 minutes"},
		{file: "nvidia_gpu_scheduling_check.yaml", skip: "needs a GPU (and Kubernetes tolerations)"},
		{file: "legacy__pipeline_with_dynamic_pipeline_input_custom_training_job.yaml", skip: "starts a Vertex AI custom job"},
		{file: "frontend-mock__pipeline_with_various_io_types.yaml", skip: "no command: runs its image's entrypoint"},
		{file: "pipeline_with_various_io_types.yaml", skip: "no command: runs its image's entrypoint"},
		{file: "legacy__pipeline_with_if_placeholder.yaml", skip: "no command: runs its image's entrypoint"},
		{file: "legacy__pipeline_with_ontology.yaml", skip: "no command: runs its image's entrypoint"},
		{file: "legacy__pipeline_with_resource_spec.yaml", skip: "no command: runs its image's entrypoint"},
	}
	for _, tc := range cases {
		t.Run(strings.TrimSuffix(tc.file, ".yaml"), func(t *testing.T) {
			if tc.skip != "" {
				t.Skip(tc.skip)
			}
			t.Parallel()
			data := filepath.Join(t.TempDir(), "data")
			args := []string{"run", filepath.Join(kfpCorpus, tc.file), "-o", "json", "--progress", "none"}
			for _, p := range tc.params {
				args = append(args, "-p", p)
			}
			r := skiff(t, data, args...)
			s := parseSummary(t, r)
			if r.code != 0 || s.State != "SUCCEEDED" {
				t.Fatalf("exit %d, state %s: %+v\n%s", r.code, s.State, s.Tasks, r.stderr)
			}
			for task, want := range tc.logs {
				l := skiff(t, data, "logs", s.RunID, task)
				if l.code != 0 || !strings.Contains(l.stdout, want) {
					t.Errorf("logs of %s: exit %d, want %q in\n%s%s", task, l.code, want, l.stdout, l.stderr)
				}
			}
		})
	}
}

func TestCLI_ValidateKFP(t *testing.T) {
	if _, err := os.Stat(filepath.Join(kfpCorpus, "INDEX.tsv")); err != nil {
		t.Skipf("no KFP corpus at %s", kfpCorpus)
	}
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	r := skiff(t, data, "validate", filepath.Join(kfpCorpus, "pipeline_with_loops_and_conditions.yaml"))
	if r.code != 0 || !strings.Contains(r.stdout, "valid KFP IR pipeline") || !strings.Contains(r.stdout, "for-loop-2  [loop") {
		t.Errorf("valid file: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = skiff(t, data, "validate", filepath.Join(kfpCorpus, "secret_as_env.yaml"))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: platforms.kubernetes.deploymentSpec.executors.exec-comp: Kubernetes secrets as environment variables: kept for a Kubernetes executor") {
		t.Errorf("Kubernetes settings: exit %d\n%s", r.code, r.stderr)
	}
	unknown := writeFile(t, t.TempDir(), "unknown.yaml", strings.Replace(readFileT(t, filepath.Join(kfpCorpus, "secret_as_env.yaml")),
		"secretAsEnv:", "secretAsEnvironment:", 1))
	r = skiff(t, data, "validate", unknown)
	if r.code != 2 || !strings.Contains(r.stderr, "platforms.kubernetes.deploymentSpec.executors.exec-comp.secretAsEnvironment: unknown field") {
		t.Errorf("unknown field: exit %d\n%s", r.code, r.stderr)
	}
	r = skiff(t, data, "validate", "--lenient", unknown)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: platforms.kubernetes.deploymentSpec.executors.exec-comp.secretAsEnvironment: unknown field (ignored)") {
		t.Errorf("lenient: exit %d\n%s", r.code, r.stderr)
	}
	r = skiff(t, data, "validate", "-o", "json", filepath.Join(kfpCorpus, "hello-world.yaml"))
	if r.code != 0 || !strings.Contains(r.stdout, `"protocol": "kfp"`) {
		t.Errorf("json: exit %d\n%s", r.code, r.stdout)
	}
	r = skiff(t, data, "run", filepath.Join(kfpCorpus, "invalid__no_name.yaml"))
	if r.code != 2 || !strings.Contains(r.stderr, "pipelineInfo.name") {
		t.Errorf("run of an invalid file: exit %d\n%s", r.code, r.stderr)
	}
}

// executorProtocolIR is a step that acts as kfp's Python executor does: it
// reads the ExecutorInput ({{$}}), writes one output parameter to its
// output file and another, with an artifact's metadata, to the
// ExecutorOutput file, which wins over the output file.
const executorProtocolIR = `
pipelineInfo: {name: protocol}
components:
  comp-step:
    executorLabel: exec-step
    inputDefinitions:
      parameters:
        n: {parameterType: NUMBER_INTEGER}
    outputDefinitions:
      parameters:
        doubled: {parameterType: NUMBER_INTEGER}
        word: {parameterType: STRING}
      artifacts:
        metrics: {artifactType: {schemaTitle: system.Metrics, schemaVersion: 0.0.1}}
  comp-check:
    executorLabel: exec-check
    inputDefinitions:
      parameters:
        doubled: {parameterType: NUMBER_INTEGER}
        word: {parameterType: STRING}
      artifacts:
        metrics: {artifactType: {schemaTitle: system.Metrics, schemaVersion: 0.0.1}}
deploymentSpec:
  executors:
    exec-step:
      container:
        image: python:3.11
        command:
        - python3
        - -c
        - |
          import json, sys
          ei = json.loads(sys.argv[1])
          n = ei["inputs"]["parameterValues"]["n"]
          out = ei["outputs"]
          open(out["parameters"]["word"]["outputFile"], "w").write("from the file")
          with open(out["outputFile"], "w") as f:
              json.dump({"parameterValues": {"doubled": 2 * n, "word": "from executor output"},
                         "artifacts": {"metrics": {"artifacts": [{"metadata": {"accuracy": 0.5}}]}}}, f)
        - '{{$}}'
    exec-check:
      container:
        image: alpine
        command: [sh, -c, 'test "$0" = 42 && test "$1" = "from executor output" && grep -q accuracy "$2" && echo checked', "{{$.inputs.parameters['doubled']}}", "{{$.inputs.parameters['word']}}", "{{$.inputs.artifacts['metrics'].path}}"]
root:
  dag:
    tasks:
      step:
        componentRef: {name: comp-step}
        taskInfo: {name: step}
        inputs:
          parameters:
            n: {componentInputParameter: n}
      check:
        componentRef: {name: comp-check}
        taskInfo: {name: check}
        inputs:
          parameters:
            doubled: {taskOutputParameter: {producerTask: step, outputParameterKey: doubled}}
            word: {taskOutputParameter: {producerTask: step, outputParameterKey: word}}
          artifacts:
            metrics: {taskOutputArtifact: {producerTask: step, outputArtifactKey: metrics}}
  inputDefinitions:
    parameters:
      n: {parameterType: NUMBER_INTEGER}
`

func TestCLI_KFPExecutorProtocol(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := writeFile(t, dir, "p.yaml", executorProtocolIR)
	r := skiff(t, filepath.Join(dir, "data"), "run", p, "-o", "json", "--progress", "none")
	if r.code != 2 || !strings.Contains(r.stderr, "parameters.n") {
		t.Fatalf("missing required parameter: exit %d\n%s", r.code, r.stderr)
	}
	r = skiff(t, filepath.Join(dir, "data"), "run", p, "-p", "n=x")
	if r.code != 2 || !strings.Contains(r.stderr, "parameters.n") {
		t.Fatalf("wrong type: exit %d\n%s", r.code, r.stderr)
	}
	r = skiff(t, filepath.Join(dir, "data"), "run", p, "-p", "n=21", "-o", "json", "--progress", "none")
	s := parseSummary(t, r)
	if r.code != 0 || s.State != "SUCCEEDED" {
		t.Fatalf("exit %d, %+v\n%s", r.code, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "ignores their images (alpine, python:3.11)") {
		t.Errorf("no note that images are ignored:\n%s", r.stderr)
	}
}

// TestCLI_KFPWorkspace runs a pipeline whose steps share a file through
// {{$.workspace_path}} with the local executor: the second step reads what
// the first wrote, in .workspace-RUN_ID of the data dir's work directory.
func TestCLI_KFPWorkspace(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	r := skiff(t, data, "run", filepath.Join("..", "..", "engine", "spec", "kfp", "testdata", "workspace.yaml"), "-o", "json", "--progress", "none")
	s := parseSummary(t, r)
	if r.code != 0 || s.State != "SUCCEEDED" {
		t.Fatalf("exit %d, state %s: %+v\n%s", r.code, s.State, s.Tasks, r.stderr)
	}
	// A STRING output file keeps its newline, as KFP's launcher reads it.
	if got := string(s.Outputs["content"]); got != `"hi\n"` {
		t.Errorf("content = %s, want \"hi\\n\" (what write-file put in the workspace)", got)
	}
	if b, err := os.ReadFile(filepath.Join(data, "work", ".workspace-"+s.RunID, "f")); err != nil || string(b) != "hi\n" {
		t.Errorf("workspace file: %q, %v", b, err)
	}
	if !strings.Contains(r.stderr, "workspace PVC spec patch: kept for a Kubernetes executor") {
		t.Errorf("no warning about the PVC spec patch:\n%s", r.stderr)
	}
}

// TestCLI_KFPArtifactMetadata runs a pipeline that passes artifact metadata
// along, with the local executor: train writes {"accuracy": 0.9} for its
// model in its ExecutorOutput file, an importer gives the dataset metadata
// (one value from its input), and check reads both through metadata
// placeholders and {{$}}. `skiff runs get -o json` shows each artifact with
// its metadata.
func TestCLI_KFPArtifactMetadata(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	src := writeFile(t, dir, "data.csv", "a,b\n")
	ir := filepath.Join("..", "..", "engine", "spec", "kfp", "testdata", "artifact_metadata.yaml")
	r := skiff(t, data, "run", ir, "-p", "data_uri="+src, "-p", "source=the lab", "-o", "json", "--progress", "none")
	s := parseSummary(t, r)
	if r.code != 0 || s.State != "SUCCEEDED" {
		t.Fatalf("exit %d, state %s: %+v\n%s", r.code, s.State, s.Tasks, r.stderr)
	}
	if got := string(s.Outputs["accuracy"]); got != `"0.9"` {
		t.Errorf("check saw accuracy %s, want \"0.9\" ({{$.inputs.artifacts['m'].metadata['accuracy']}})", got)
	}
	if got := string(s.Outputs["source"]); got != `"the lab"` {
		t.Errorf("check saw source %s, want \"the lab\" (the importer's metadata, resolved from its input)", got)
	}
	type artifact struct {
		Digest   string          `json:"digest"`
		Metadata json.RawMessage `json:"metadata"`
	}
	var ei struct {
		Inputs struct {
			Artifacts map[string]struct {
				Artifacts []artifact `json:"artifacts"`
			} `json:"artifacts"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(s.Outputs["executor_input"], &ei); err != nil {
		t.Fatalf("executor_input: %v\n%s", err, s.Outputs["executor_input"])
	}
	for name, want := range map[string]string{
		"m":    `{"accuracy":0.9,"framework":"none"}`,
		"data": `{"kind":"constant","source":"the lab"}`,
	} {
		if a := ei.Inputs.Artifacts[name].Artifacts; len(a) != 1 || compactJSON(t, a[0].Metadata) != want {
			t.Errorf("ExecutorInput artifact %s = %+v, want metadata %s", name, a, want)
		}
	}

	get := skiff(t, data, "runs", "get", s.RunID, "-o", "json")
	var full struct {
		Tasks []struct {
			Name    string                     `json:"name"`
			Outputs map[string]json.RawMessage `json:"outputs"`
		} `json:"tasks"`
		Outputs map[string]json.RawMessage `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(get.stdout), &full); err != nil {
		t.Fatalf("runs get: exit %d, %v\n%s%s", get.code, err, get.stdout, get.stderr)
	}
	seen := map[string]string{}
	for _, tk := range full.Tasks {
		for name, raw := range tk.Outputs {
			var a artifact
			if json.Unmarshal(raw, &a) == nil && a.Digest != "" {
				seen[tk.Name+"."+name] = compactJSON(t, a.Metadata)
			}
		}
	}
	for out, want := range map[string]string{
		"train.model":       `{"accuracy":0.9,"framework":"none"}`,
		"importer.artifact": `{"kind":"constant","source":"the lab"}`,
	} {
		if seen[out] != want {
			t.Errorf("runs get: %s has metadata %s, want %s", out, seen[out], want)
		}
	}
	var model artifact
	if err := json.Unmarshal(full.Outputs["model"], &model); err != nil || compactJSON(t, model.Metadata) != `{"accuracy":0.9,"framework":"none"}` {
		t.Errorf("runs get: the run's output model = %s, %v", full.Outputs["model"], err)
	}
}

func compactJSON(t testing.TB, b []byte) string {
	t.Helper()
	if len(b) == 0 {
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return buf.String()
}
