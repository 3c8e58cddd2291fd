package executors

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store/blob"
)

// TestCollectOutputs_ExecutorOutputTakesPrecedence: a KFP step's
// ExecutorOutput file overrides its per-output files for parameters, and
// stands in for an artifact the step described only by its metadata.
func TestCollectOutputs_ExecutorOutputTakesPrecedence(t *testing.T) {
	t.Parallel()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := PrepareRoot(root); err != nil {
		t.Fatal(err)
	}
	write := func(rel, s string) {
		if err := os.WriteFile(filepath.Join(root, rel), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
	vals, err := CollectOutputs(context.Background(), root, outs, blobs)
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
	vals, err = CollectOutputs(context.Background(), root, outs[:1], blobs)
	if err != nil || string(vals["sum"].Param) != "1" {
		t.Fatalf("without an executor output: %v, %v", vals, err)
	}
	write("eo.json", `{"parameterValues": {"Output": 2.5}}`)
	if _, err := CollectOutputs(context.Background(), root, outs[:1], blobs); err == nil {
		t.Fatal("a fractional int was accepted")
	}
}
