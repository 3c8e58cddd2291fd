package main

import (
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
			"exit-op": `"state":"SUCCEEDED"`, "exit-handler-1.print-op": "Hello World!"}},
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
