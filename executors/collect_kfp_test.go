package executors

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store/blob"
)

// TestCollectOutputs_ExecutorOutputTakesPrecedence: a KFP step's
// ExecutorOutput file overrides its per-output files for parameters, and
// stands in for an artifact the step described only by its metadata.
func TestCollectOutputs_ExecutorOutputTakesPrecedence(t *testing.T) {
	t.Parallel()
	root, blobs, write := collectRoot(t)
	write("outputs/sum", "1")
	write("outputs/note", "from the file")
	write("outputs/kept", "7")
	write("eo.json", `{"parameterValues": {"Output": 3.0, "note": "from executor output\n", "ratio": 0.5},
		"artifacts": {"metrics": {"artifacts": [{"name": "metrics", "metadata": {"accuracy": 0.9}}]}}}`)
	outs := []OutputSpec{
		{Name: "sum", Type: spec.TypeInt, ExecutorOutput: "eo.json", Key: "Output"},
		{Name: "note", Type: spec.TypeString, ExecutorOutput: "eo.json"},
		{Name: "ratio", Type: spec.TypeFloat, ExecutorOutput: "eo.json"},
		{Name: "kept", Type: spec.TypeInt, ExecutorOutput: "eo.json"},
		{Name: "metrics", Type: spec.TypeMetrics, ExecutorOutput: "eo.json"},
	}
	vals, err := CollectOutputs(context.Background(), root, outs, blobs, 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"sum": "3", "note": `"from executor output\n"`, "ratio": "0.5", "kept": "7"} {
		if got := string(vals[name].Param); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if m := vals["metrics"].Artifact; m == nil || m.Type != spec.TypeMetrics || m.Size != int64(len(`{"accuracy": 0.9}`)) {
		t.Errorf("metrics = %+v", m)
	}
	// Without the file, the per-output files count; a bad value is an
	// error naming the output.
	if err := os.Remove(filepath.Join(root, "eo.json")); err != nil {
		t.Fatal(err)
	}
	write("outputs/sum", "1")
	vals, err = CollectOutputs(context.Background(), root, outs[:1], blobs, 0)
	if err != nil || string(vals["sum"].Param) != "1" {
		t.Fatalf("without an executor output: %v, %v", vals, err)
	}
	write("eo.json", `{"parameterValues": {"Output": 2.5}}`)
	if _, err := CollectOutputs(context.Background(), root, outs[:1], blobs, 0); err == nil {
		t.Fatal("a fractional int was accepted")
	}
}

// TestCollectOutputs_ArtifactMetadata: the metadata an ExecutorOutput file
// gives an output artifact is recorded in its ref, whether the step wrote
// the artifact's bytes or described it by its metadata alone; empty
// metadata records nothing, and metadata that is not a JSON object is an
// error naming the output and the field.
func TestCollectOutputs_ArtifactMetadata(t *testing.T) {
	t.Parallel()
	root, blobs, write := collectRoot(t)
	write("outputs/model", "weights")
	write("outputs/plain", "bytes")
	write("eo.json", `{"artifacts": {
		"model": {"artifacts": [{"name": "model", "uri": "ignored", "metadata": {"accuracy": 0.9, "framework": "torch"}}]},
		"metrics": {"artifacts": [{"metadata": {"loss": 0.25}}]},
		"plain": {"artifacts": [{"metadata": {}}]},
		"empty": {"artifacts": [{"metadata": {}}]}}}`)
	outs := []OutputSpec{
		{Name: "model", Type: spec.TypeModel, ExecutorOutput: "eo.json"},
		{Name: "metrics", Type: spec.TypeMetrics, ExecutorOutput: "eo.json"},
		{Name: "plain", Type: spec.TypeArtifact, ExecutorOutput: "eo.json"},
		{Name: "empty", Type: spec.TypeMetrics, ExecutorOutput: "eo.json"},
	}
	vals, err := CollectOutputs(context.Background(), root, outs, blobs, 0)
	if err != nil {
		t.Fatal(err)
	}
	model := vals["model"].Artifact
	if model == nil || string(model.Metadata) != `{"accuracy":0.9,"framework":"torch"}` || model.Size != int64(len("weights")) {
		t.Errorf("model = %+v (metadata %s)", model, model.Metadata)
	}
	metrics := vals["metrics"].Artifact
	if metrics == nil || string(metrics.Metadata) != `{"loss":0.25}` || metrics.Size != int64(len(`{"loss": 0.25}`)) {
		t.Errorf("metrics = %+v (metadata %s)", metrics, metrics.Metadata)
	}
	if p := vals["plain"].Artifact; p == nil || p.Metadata != nil || p.Size != int64(len("bytes")) {
		t.Errorf("plain = %+v: empty metadata should record none", p)
	}
	// A Metrics artifact with no metrics logged: {} is its content, as
	// before metadata was recorded, and no metadata.
	if e := vals["empty"].Artifact; e == nil || e.Metadata != nil || e.Size != 2 {
		t.Errorf("empty = %+v", e)
	}
	write("eo.json", `{"artifacts": {"model": {"artifacts": [{"metadata": [1, 2]}]}}}`)
	_, err = CollectOutputs(context.Background(), root, outs[:1], blobs, 0)
	if err == nil || !strings.Contains(err.Error(), `output "model"`) || !strings.Contains(err.Error(), "artifacts.model.artifacts[0].metadata: expected a JSON object") {
		t.Errorf("metadata that is a list: %v", err)
	}
}

// collectRoot makes an execution root and a blob store, and returns a
// function that writes a file under the root.
func collectRoot(t testing.TB) (root string, blobs *blob.Store, write func(rel, s string)) {
	t.Helper()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root = t.TempDir()
	if err := PrepareRoot(root); err != nil {
		t.Fatal(err)
	}
	write = func(rel, s string) {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root, blobs, write
}

// TestParseKFPParam_AsKFPLauncher: a KFP step's parameter file is read as
// KFP's launcher reads it: a bool with strconv.ParseBool (Python's
// str(True)), numbers after trimming, a string with its newline kept.
func TestParseKFPParam_AsKFPLauncher(t *testing.T) {
	t.Parallel()
	cases := []struct {
		typ       spec.Type
		in, want  string
		wantError bool
	}{
		{typ: spec.TypeBool, in: "True", want: "true"},
		{typ: spec.TypeBool, in: "False\n", want: "false"},
		{typ: spec.TypeBool, in: "1", want: "true"},
		{typ: spec.TypeBool, in: "0", want: "false"},
		{typ: spec.TypeBool, in: " true ", want: "true"},
		{typ: spec.TypeBool, in: "yes", wantError: true},
		{typ: spec.TypeInt, in: "42\n", want: "42"},
		{typ: spec.TypeInt, in: "4.0", wantError: true},
		{typ: spec.TypeFloat, in: "2.5\n", want: "2.5"},
		{typ: spec.TypeFloat, in: "3", want: "3"},
		{typ: spec.TypeFloat, in: "NaN", wantError: true},
		{typ: spec.TypeFloat, in: "inf", wantError: true},
		{typ: spec.TypeString, in: "a\n", want: `"a\n"`},
		{typ: spec.TypeString, in: "", want: `""`},
		{typ: spec.TypeString, in: "\xff", wantError: true},
		{typ: spec.TypeList, in: "[1, 2]\n", want: "[1,2]"},
		{typ: spec.TypeObject, in: `{"a": 1}`, want: `{"a":1}`},
		{typ: spec.TypeObject, in: `[1]`, wantError: true},
	}
	for _, tc := range cases {
		got, err := ParseKFPParam(tc.typ, []byte(tc.in))
		switch {
		case tc.wantError && err == nil:
			t.Errorf("%s %q: got %s, want an error", tc.typ, tc.in, got)
		case !tc.wantError && (err != nil || string(got) != tc.want):
			t.Errorf("%s %q: got %s, %v; want %s", tc.typ, tc.in, got, err, tc.want)
		}
	}
}

// TestCollectOutputs_MovedArtifact: an artifact the ExecutorOutput file
// places elsewhere under the execution root (dsl.get_uri,
// Artifact.set_path) is read from there; a place outside the root fails
// the output, and so does an artifact with neither a file nor metadata.
func TestCollectOutputs_MovedArtifact(t *testing.T) {
	t.Parallel()
	root, blobs, write := collectRoot(t)
	const stepRoot = "/skiff/exec/1"
	write("dataset1", "first half")
	if err := os.Mkdir(filepath.Join(root, "tmp", "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("tmp/dir/custom", "custom bytes")
	write("eo.json", `{"artifacts": {
		"d1": {"artifacts": [{"name": "d1", "uri": "/skiff/exec/1/dataset1", "metadata": {"original_data": "in"}}]},
		"d2": {"artifacts": [{"name": "d2", "uri": "/skiff/exec/1/outputs/d2", "metadata": {}, "custom_path": "/skiff/exec/1/tmp/dir/custom"}]},
		"out": {"artifacts": [{"name": "out", "uri": "/skiff/exec/1/outputs/out", "custom_path": "/tmp/out_dataset"}]},
		"esc": {"artifacts": [{"name": "esc", "uri": "/skiff/exec/1/../2/outputs/x"}]},
		"none": {"artifacts": [{"name": "none", "uri": "/skiff/exec/1/outputs/none", "metadata": {}}]}}}`)
	spec := func(name string) OutputSpec {
		return OutputSpec{Name: name, Type: spec.TypeDataset, ExecutorOutput: "eo.json", StepRoot: stepRoot}
	}
	vals, err := CollectOutputs(context.Background(), root, []OutputSpec{spec("d1"), spec("d2")}, blobs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := vals["d1"].Artifact; d == nil || d.Size != int64(len("first half")) || string(d.Metadata) != `{"original_data":"in"}` {
		t.Errorf("d1 (uri elsewhere under the root) = %+v", d)
	}
	if d := vals["d2"].Artifact; d == nil || d.Size != int64(len("custom bytes")) {
		t.Errorf("d2 (custom_path under the root) = %+v", d)
	}
	for name, want := range map[string]string{
		"out":  `custom_path: "/tmp/out_dataset" is outside the execution's root`,
		"esc":  `uri: "/skiff/exec/1/../2/outputs/x" is outside the execution's root`,
		"none": "missing: the step wrote nothing at outputs/none",
	} {
		_, err := CollectOutputs(context.Background(), root, []OutputSpec{spec(name)}, blobs, 0)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `output "`+name+`"`) {
			t.Errorf("%s: %v, want an error with %q", name, err, want)
		}
	}
}
