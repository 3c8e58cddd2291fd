package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const loopDoc = `
name: sweep
parameters:
  cs: {type: list, default: [1, 2]}
tasks:
  - name: prep
    command: [prep]
    outputs: {n: int, items: list}
  - name: loop
    parallelFor: {items: {param: cs}, as: c, itemType: int, parallelism: 2}
    tasks:
      - name: train
        command: [train, "{{inputs.c}}", "{{inputs.n}}"]
        inputs:
          c: {param: c}
          n: {from: prep.n}
        outputs: {acc: float, model: Model}
    outputs: {acc: train.acc, model: train.model}
  - name: pick
    command: [pick, "{{inputs.accs}}"]
    inputs: {accs: {from: loop.acc}, models: {from: loop.model}}
`

func TestParseSkiff_LoopLiftsOuterReferencesAndTypesFanIn(t *testing.T) {
	t.Parallel()
	p, err := ParseSkiff([]byte(loopDoc))
	if err != nil {
		t.Fatal(err)
	}
	loop := &p.Tasks[1]
	if loop.ParallelFor == nil || loop.ParallelFor.Parallelism != 2 || loop.ParallelFor.Items.Param != "cs" {
		t.Fatalf("loop %+v", loop.ParallelFor)
	}
	// prep.n, used inside the body, is bound by a group input and a body
	// parameter; the loop depends on prep.
	if len(loop.Deps) != 1 || loop.Deps[0] != 0 {
		t.Errorf("loop deps %v, want [0]", loop.Deps)
	}
	if in := loop.Inputs[0]; in.Name != "prep--n" || in.From == nil || in.Type != TypeInt {
		t.Errorf("lifted input %+v", in)
	}
	if prm := loop.Body.Param("prep--n"); prm == nil || prm.Type != TypeInt {
		t.Errorf("body params %+v", loop.Body.Params)
	}
	want := []Output{{Name: "acc", Type: TypeList}, {Name: "model", Type: "list<Model>"}}
	if len(loop.Outputs) != 2 || loop.Outputs[0] != want[0] || loop.Outputs[1] != want[1] {
		t.Errorf("loop outputs %+v, want %+v", loop.Outputs, want)
	}
	if k := p.Tasks[2].Inputs[1].Type.Kind(); k != KindArtifactList {
		t.Errorf("fan-in of artifacts is %s", k)
	}
	roundTrip(t, p)
}

func TestParseSkiff_GroupErrorsNameTheField(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, doc, path, msg string }{
		{"items not a list", strings.Replace(loopDoc, "items: {param: cs}", "items: {value: 3}", 1), "tasks[1].parallelFor.items", "literal list"},
		{"items from a number", strings.Replace(loopDoc, "items: {param: cs}", "items: {from: prep.n}", 1), "tasks[1].parallelFor.items", "not int"},
		{"unknown items source", strings.Replace(loopDoc, "items: {param: cs}", "items: {param: nope}", 1), "tasks[1].parallelFor.items", "unknown pipeline parameter"},
		{"bad parallelism", strings.Replace(loopDoc, "parallelism: 2", "parallelism: -1", 1), "tasks[1].parallelFor.parallelism", "negative"},
		{"item type needed", strings.Replace(loopDoc, ", itemType: int", "", 1), "tasks[1].parallelFor.itemType", "required"},
		{"bad body ref", strings.Replace(loopDoc, "acc: train.acc,", "acc: train.nope,", 1), "tasks[1].outputs.acc", "no output"},
		{"command on a group", strings.Replace(loopDoc, "  - name: loop\n", "  - name: loop\n    command: [x]\n", 1), "tasks[1].command", "group"},
		{"bad inner field", strings.Replace(loopDoc, "c: {param: c}", "c: {param: c, field: 'a..b', type: int}", 1), "tasks[1].tasks[0].inputs.c.field", "empty part"},
		{"bad cel", `
name: p
tasks:
  - name: g
    if: "inputs.x >"
    tasks: [{name: a, command: [a]}]
`, "tasks[0].tasks[0].when", "syntax"},
		{"elif without if", `
name: p
tasks:
  - name: g
    tasks: [{name: a, command: [a]}]
    else: [{name: b, command: [b]}]
`, "tasks[0].else", "needs an if"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseSkiff([]byte(c.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			var found bool
			for _, fe := range err.(*ValidationError).Errors {
				if fe.Path == c.path && strings.Contains(strings.ToLower(fe.Msg), strings.ToLower(c.msg)) {
					found = true
				}
			}
			if !found {
				t.Fatalf("error %v: want %s: ...%s...", err, c.path, c.msg)
			}
		})
	}
}

func TestParseSkiff_IfElifElse(t *testing.T) {
	t.Parallel()
	p, err := ParseSkiff([]byte(`
name: p
parameters: {acc: float}
tasks:
  - name: g
    inputs: {acc: {param: acc}}
    if: inputs.acc > 0.9
    tasks: [{name: a, command: [a], outputs: {m: string}}]
    outputs: {m: a.m}
    elif:
      - if: inputs.acc > 0.5
        tasks: [{name: b, command: [b], outputs: {m: string}}]
        outputs: {m: b.m}
    else: [{name: c, command: [c]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	body := p.Tasks[0].Body
	var whens []string
	for _, bt := range body.Tasks {
		whens = append(whens, bt.Name+": "+bt.When)
	}
	want := []string{"then: (inputs.acc > 0.9)", "elif-1: !(inputs.acc > 0.9) && (inputs.acc > 0.5)", "else: !(inputs.acc > 0.9) && !(inputs.acc > 0.5)"}
	if strings.Join(whens, "|") != strings.Join(want, "|") {
		t.Errorf("branches %q, want %q", whens, want)
	}
	if o := body.Outputs; len(o) != 1 || len(o[0].OneOf) != 2 || o[0].Type != TypeString {
		t.Errorf("oneOf output %+v", o)
	}
}

func TestParseSkiffFile_SubPipeline(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sub/train.yaml", `
name: train
executor: sim
parameters: {lr: float, epochs: {type: int, default: 3}}
tasks:
  - {name: fit, command: ["{{pipeline.dir}}/fit.sh", "{{inputs.lr}}"], inputs: {lr: {param: lr}}, outputs: {acc: float}}
outputs: {acc: fit.acc}
`)
	write("main.yaml", `
name: main
tasks:
  - name: t
    pipeline: sub/train.yaml
    inputs: {lr: {value: 0.1, type: float}}
  - {name: show, command: [echo, "{{inputs.a}}"], inputs: {a: {from: t.acc}}}
`)
	p, err := ParseSkiffFile(filepath.Join(dir, "main.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	fit := p.Tasks[0].Body.Tasks[0]
	if fit.Command[0] != "{{pipeline.dir}}/sub/fit.sh" || fit.Executor != "sim" {
		t.Errorf("sub-pipeline task %+v: want its dir and executor kept", fit)
	}
	if p.Tasks[1].Inputs[0].Type != TypeFloat {
		t.Errorf("sub-pipeline output type %s", p.Tasks[1].Inputs[0].Type)
	}
	write("loop.yaml", "name: loop\ntasks:\n  - {name: x, pipeline: loop.yaml}\n")
	if _, err := ParseSkiffFile(filepath.Join(dir, "loop.yaml")); err == nil || !strings.Contains(err.Error(), "includes itself") {
		t.Errorf("include cycle: %v", err)
	}
	write("missing.yaml", "name: m\ntasks:\n  - {name: x, pipeline: sub/train.yaml}\n")
	if _, err := ParseSkiffFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "tasks[0].parameters.lr") {
		t.Errorf("unbound sub-pipeline parameter: %v", err)
	}
}
