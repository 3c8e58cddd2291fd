package kfp

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store/blob"
)

// metadataIR is a step that reads an input artifact's metadata through the
// placeholder given as its only argument.
const metadataIR = `
pipelineInfo: {name: meta}
components:
  comp-use:
    executorLabel: exec-use
    inputDefinitions:
      artifacts:
        m: {artifactType: {schemaTitle: system.Model, schemaVersion: 0.0.1}}
    outputDefinitions:
      artifacts:
        o: {artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}}
  comp-make:
    executorLabel: exec-make
    outputDefinitions:
      artifacts:
        m: {artifactType: {schemaTitle: system.Model, schemaVersion: 0.0.1}}
deploymentSpec:
  executors:
    exec-make:
      container: {image: alpine, command: [touch, "{{$.outputs.artifacts['m'].path}}"]}
    exec-use:
      container: {image: alpine, command: [echo, "ARG"]}
root:
  dag:
    tasks:
      make:
        componentRef: {name: comp-make}
        taskInfo: {name: make}
      use:
        componentRef: {name: comp-use}
        taskInfo: {name: use}
        inputs:
          artifacts:
            m: {taskOutputArtifact: {producerTask: make, outputArtifactKey: m}}
`

// prepareWith compiles ir, then prepares task with inputs.
func prepareWith(t *testing.T, ir, task string, inputs map[string]spec.Value) (*Invocation, error) {
	t.Helper()
	plan, _, err := Load([]byte(ir), "", Options{})
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	tk := findTask(t, plan, task)
	return Prepare(tk, sampleInputs(plan, tk, inputs), goldenRuntime)
}

// TestPrepare_ArtifactMetadataPlaceholders: an input artifact's metadata
// reaches the step: whole ({{...metadata}}, and in the ExecutorInput) or
// by key (a string as is, anything else as JSON, a missing key null as
// kfp's local runner gives it); an artifact without metadata has {}.
func TestPrepare_ArtifactMetadataPlaceholders(t *testing.T) {
	t.Parallel()
	const meta = `{"accuracy":0.9,"name":"resnet","tags":["a","b"],"n":3,"nested":{"k":true},"none":null}`
	withMeta := map[string]spec.Value{"m": {Artifact: &spec.ArtifactRef{Digest: "sha256:00", Type: spec.TypeModel, Metadata: json.RawMessage(meta)}}}
	without := map[string]spec.Value{"m": {Artifact: &spec.ArtifactRef{Digest: "sha256:00", Type: spec.TypeModel}}}
	cases := []struct {
		name, arg string
		inputs    map[string]spec.Value
		want      string
	}{
		{"whole", "{{$.inputs.artifacts['m'].metadata}}", withMeta, meta},
		{"number", "{{$.inputs.artifacts['m'].metadata['accuracy']}}", withMeta, "0.9"},
		{"string", `acc={{$.inputs.artifacts['m'].metadata["name"]}}`, withMeta, "acc=resnet"},
		{"list", "{{$.inputs.artifacts['m'].metadata['tags']}}", withMeta, `["a","b"]`},
		{"int", "{{$.inputs.artifacts['m'].metadata['n']}}", withMeta, "3"},
		{"object", "{{$.inputs.artifacts['m'].metadata['nested']}}", withMeta, `{"k":true}`},
		{"null value", "{{$.inputs.artifacts['m'].metadata['none']}}", withMeta, "null"},
		{"missing key", "{{$.inputs.artifacts['m'].metadata['loss']}}", withMeta, "null"},
		{"no metadata", "{{$.inputs.artifacts['m'].metadata}}", without, "{}"},
		{"no metadata, a key", "{{$.inputs.artifacts['m'].metadata['accuracy']}}", without, "null"},
		{"output", "{{$.outputs.artifacts['o'].metadata}}", withMeta, "{}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ir := strings.Replace(metadataIR, `"ARG"`, strings.ReplaceAll(`"`+tc.arg+`"`, `["name"]`, `[\"name\"]`), 1)
			inv, err := prepareWith(t, ir, "use", tc.inputs)
			if err != nil {
				t.Fatal(err)
			}
			if got := inv.Command[1]; got != tc.want {
				t.Errorf("%s = %s, want %s", tc.arg, got, tc.want)
			}
		})
	}
	inv, err := prepareWith(t, metadataIR, "use", withMeta)
	if err != nil {
		t.Fatal(err)
	}
	var ei struct {
		Inputs struct {
			Artifacts map[string]struct {
				Artifacts []struct {
					Metadata json.RawMessage `json:"metadata"`
				} `json:"artifacts"`
			} `json:"artifacts"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(inv.ExecutorInput, &ei); err != nil {
		t.Fatal(err)
	}
	if a := ei.Inputs.Artifacts["m"].Artifacts; len(a) != 1 || string(a[0].Metadata) != meta {
		t.Errorf("ExecutorInput artifacts = %+v, want the metadata %s", a, meta)
	}
}

// importerIR imports a local file with the metadata given (YAML).
const importerIR = `
pipelineInfo: {name: imp}
components:
  comp-importer:
    executorLabel: exec-importer
    inputDefinitions:
      parameters:
        uri: {parameterType: STRING}
        metadata: {parameterType: STRING}
        metadata-2: {parameterType: NUMBER_INTEGER}
    outputDefinitions:
      artifacts:
        artifact: {artifactType: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}}
deploymentSpec:
  executors:
    exec-importer:
      importer:
        artifactUri: {runtimeParameter: uri}
        typeSchema: {schemaTitle: system.Dataset, schemaVersion: 0.0.1}
        metadata: META
root:
  dag:
    tasks:
      importer:
        componentRef: {name: comp-importer}
        taskInfo: {name: importer}
        inputs:
          parameters:
            uri: {componentInputParameter: uri}
            metadata: {runtimeValue: {constant: "it's from a parameter"}}
            metadata-2: {runtimeValue: {constant: 7}}
  inputDefinitions:
    parameters:
      uri: {parameterType: STRING}
`

// TestPrepare_ImporterMetadata runs what an importer step runs, then
// collects its output as an executor does: the imported artifact carries
// the importer's metadata, its placeholders resolved (keys and values,
// each to text, as kfp's local runner resolves them). Without metadata the
// step is a plain copy.
func TestPrepare_ImporterMetadata(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	src := filepath.Join(t.TempDir(), "data.csv")
	if err := os.WriteFile(src, []byte("a,b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uri := map[string]spec.Value{"uri": {Param: mustJSON(src)}}
	for _, tc := range []struct{ name, meta, want string }{
		{"constants and placeholders",
			`{source: "{{$.inputs.parameters['metadata']}}", "n-{{$.inputs.parameters['metadata-2']}}": [1, "x{{$.inputs.parameters['metadata-2']}}"], big: 1234567890123456789, quote: "a 'b' \"c\" $HOME"}`,
			`{"big":1234567890123456789,"n-7":[1,"x7"],"quote":"a 'b' \"c\" $HOME","source":"it's from a parameter"}`},
		{"none", `{}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inv, err := prepareWith(t, strings.Replace(importerIR, "META", tc.meta, 1), "importer", uri)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			if tc.want == "" {
				if inv.Command[0] != "cp" || inv.Outputs[0].ExecutorOutput != "" {
					t.Errorf("without metadata: command %q, outputs %+v; want a plain copy", inv.Command, inv.Outputs)
				}
				return
			}
			// Run it in a root of its own: the paths are goldenRuntime's.
			cmd := make([]string, len(inv.Command))
			for i, a := range inv.Command {
				cmd[i] = strings.ReplaceAll(a, goldenRuntime.Root, root)
			}
			if err := executors.PrepareRoot(root); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%q: %v\n%s", cmd, err, out)
			}
			blobs, err := blob.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for i := range inv.Outputs {
				inv.Outputs[i].StepRoot = root
			}
			vals, err := executors.CollectOutputs(context.Background(), root, inv.Outputs, blobs, 0)
			if err != nil {
				t.Fatal(err)
			}
			a := vals["artifact"].Artifact
			if a == nil || a.Size != 4 || string(a.Metadata) != tc.want {
				t.Errorf("artifact = %+v, metadata %s; want %s", a, a.Metadata, tc.want)
			}
		})
	}
}

// TestCompile_ImporterMetadata: an importer's metadata is checked when
// compiling (an object whose placeholders name the importer's inputs) and
// no longer warned about.
func TestCompile_ImporterMetadata(t *testing.T) {
	t.Parallel()
	const path = "deploymentSpec.executors.exec-importer.importer.metadata"
	for _, tc := range []struct{ name, meta, err string }{
		{"ok", `{key: value, source: "{{$.inputs.parameters['metadata']}}"}`, ""},
		{"not an object", `[1, 2]`, path + ": expected an object"},
		{"undeclared input", `{key: "{{$.inputs.parameters['nope']}}"}`, path + ".key: names \"nope\""},
		{"in a key", `{"{{$.inputs.parameters['nope']}}": 1}`, "names \"nope\""},
		{"malformed", `{key: "{{$.inputs.parameters[nope]}}"}`, path + ".key: malformed placeholder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, warns, err := Load([]byte(strings.Replace(importerIR, "META", tc.meta, 1)), "", Options{})
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			for _, w := range warns {
				if strings.Contains(w.Path, "metadata") {
					t.Errorf("warning %s", w)
				}
			}
		})
	}
}
