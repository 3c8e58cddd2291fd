package kfp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files")

// goldenRuntime is the execution every golden test resolves for.
var goldenRuntime = Runtime{
	Root: "/srv/skiff/exec/run-1-0-1", RunID: "run-1", RunName: "my-run", ExecutionID: "run-1-0-1", PipelineRoot: "/srv/skiff/exec",
}

// findTask finds a task by its path of names through group bodies
// ("exit-handler-1/print-op").
func findTask(t testing.TB, p *spec.Plan, path string) *spec.Task {
	t.Helper()
	names := strings.Split(path, "/")
	for i, n := range names {
		k := p.TaskIndex(n)
		if k < 0 {
			t.Fatalf("no task %q in %s", n, path)
		}
		if i == len(names)-1 {
			return &p.Tasks[k]
		}
		p = p.Tasks[k].Body
	}
	return nil
}

// sampleInputs gives every input of a task a value: its literal, a given
// one, or a sample of its type.
func sampleInputs(plan *spec.Plan, t *spec.Task, given map[string]spec.Value) map[string]spec.Value {
	vals := map[string]spec.Value{}
	for _, in := range t.Inputs {
		if v, ok := given[in.Name]; ok {
			vals[in.Name] = v
			continue
		}
		typ := in.Type
		switch {
		case in.Value != nil:
			vals[in.Name] = spec.Value{Param: in.Value}
			continue
		case in.UpstreamStatus:
			vals[in.Name] = spec.Value{Param: json.RawMessage(`{"state":"FAILED","error":"task print-op failed","tasks":{"print-op":"FAILED"}}`)}
			continue
		case in.Param != "":
			if prm := plan.Param(in.Param); prm != nil && prm.Default != nil {
				vals[in.Name] = spec.Value{Param: prm.Default}
				continue
			}
		}
		switch typ.Kind() {
		case spec.KindArtifact:
			vals[in.Name] = spec.Value{Artifact: &spec.ArtifactRef{Digest: "sha256:" + strings.Repeat("ab", 32), Size: 3, Type: typ}}
		case spec.KindArtifactList:
			e, _ := typ.Elem()
			ref := spec.ArtifactRef{Digest: "sha256:" + strings.Repeat("cd", 32), Size: 3, Type: e}
			vals[in.Name] = spec.Value{Artifacts: []spec.ArtifactRef{ref, ref}, List: true}
		default:
			vals[in.Name] = spec.Value{Param: zeroValue(typ)}
			if typ == spec.TypeString {
				vals[in.Name] = spec.Value{Param: json.RawMessage(`"sample"`)}
			}
		}
	}
	return vals
}

// TestPrepare_Golden resolves corpus steps (and those of testdata/*.yaml)
// and compares what a step gets (command, args, ExecutorInput) and what is
// collected with testdata/NAME.golden. Run with -update to rewrite them. A
// case whose corpus file is missing skips.
func TestPrepare_Golden(t *testing.T) {
	withMeta := func(digest, meta string) *spec.ArtifactRef {
		return &spec.ArtifactRef{Digest: "sha256:" + strings.Repeat(digest, 32), Size: 3, Type: spec.TypeModel, Metadata: json.RawMessage(meta)}
	}
	cases := []struct {
		name, file, task string
		given            map[string]spec.Value
	}{
		{"concat_placeholder", "container_with_concat_placeholder.yaml", "container-with-concat-placeholder",
			map[string]spec.Value{"text1": {Param: json.RawMessage(`"hello"`)}}},
		{"if_placeholder_absent", "container_with_if_placeholder.yaml", "container-with-if-placeholder", nil},
		{"if_placeholder_present", "placeholder_with_if_placeholder_none_input_value.yaml", "component-with-optional-inputs", nil},
		{"task_final_status", "pipeline_with_task_final_status_yaml.yaml", "exit-op", nil},
		{"python_executor_main", "add_numbers.yaml", "add-numbers", map[string]spec.Value{
			"a": {Param: json.RawMessage(`1`)}, "b": {Param: json.RawMessage(`2`)}}},
		{"fstring", "pipeline_with_params_containing_format.yaml", "print-op", nil},
		{"dynamic_resources", "pipeline_with_string_machine_fields_pipeline_input.yaml", "sum-numbers", nil},
		{"artifact_list", "pipeline_with_collected_artifacts.yaml", "", nil},
		{"artifact_list_placeholder", "artifacts_simple.yaml", "add-container", map[string]spec.Value{
			"in_datasets": {List: true, Artifacts: []spec.ArtifactRef{*withMeta("ab", ""), *withMeta("cd", `{"n":2}`)}}}},
		{"importer", "pipeline_with_importer.yaml", "condition-1/importer-2", map[string]spec.Value{"uri": {Param: json.RawMessage(`"file:///data/shakespeare.txt"`)}}},
		{"placeholders", "pipeline_with_placeholders.yaml", "print-all-placeholders", nil},
		{"metrics_outputs", "output_metrics.yaml", "output-metrics", nil},
		{"artifact_metadata", "testdata/artifact_metadata.yaml", "check", map[string]spec.Value{
			"m":    {Artifact: withMeta("ab", `{"accuracy":0.9,"framework":"none"}`)},
			"data": {Artifact: withMeta("cd", `{"kind":"constant","source":"a \"quoted\" word"}`)}}},
		{"importer_metadata", "testdata/artifact_metadata.yaml", "importer", map[string]spec.Value{
			"uri": {Param: json.RawMessage(`"/data/in.csv"`)}}},
		{"artifact_list_metadata", "pipeline_with_collected_artifacts.yaml", "", map[string]spec.Value{
			"artifacts": {List: true, Artifacts: []spec.ArtifactRef{*withMeta("ab", `{"i":0}`), *withMeta("cd", "")}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var plan *spec.Plan
			var err error
			if strings.HasPrefix(tc.file, "testdata/") {
				plan, err = loadTestdata(t, tc.file)
			} else {
				plan, _, err = loadCorpusFile(t, tc.file, Options{Lenient: true})
			}
			if err != nil {
				t.Fatal(err)
			}
			task := tc.task
			if task == "" {
				task = firstWith(plan, "", func(tk *spec.Task) bool {
					for _, in := range tk.Inputs {
						if in.Type.Kind() == spec.KindArtifactList {
							return true
						}
					}
					return false
				})
			}
			tk := findTask(t, plan, task)
			inv, err := Prepare(tk, sampleInputs(plan, tk, tc.given), goldenRuntime)
			if err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			got := goldenText(t, task, inv)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what Prepare gives now (go test -run Golden -update rewrites it):\n%s", path, got)
			}
		})
	}
}

// firstWith finds the path of the first task (through bodies) that ok
// accepts.
func firstWith(p *spec.Plan, prefix string, ok func(*spec.Task) bool) string {
	for i := range p.Tasks {
		tk := &p.Tasks[i]
		if tk.Body != nil {
			if s := firstWith(tk.Body, prefix+tk.Name+"/", ok); s != "" {
				return s
			}
		} else if ok(tk) {
			return prefix + tk.Name
		}
	}
	return ""
}

func goldenText(t testing.TB, task string, inv *Invocation) []byte {
	t.Helper()
	var ei any
	if err := json.Unmarshal(inv.ExecutorInput, &ei); err != nil {
		t.Fatalf("ExecutorInput is not JSON: %v", err)
	}
	doc := map[string]any{
		"task": task, "command": inv.Command, "args": inv.Args, "resources": inv.Resources,
		"inputs": inv.Inputs, "outputs": inv.Outputs, "executorInput": ei,
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// loadTestdata compiles an IR file of testdata/.
func loadTestdata(t testing.TB, name string) (*spec.Plan, error) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	plan, _, err := Load(data, "", Options{})
	return plan, err
}
