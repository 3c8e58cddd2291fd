package spec

import (
	"errors"
	"strings"
	"testing"
)

// base is a valid pipeline; cases below append to or replace parts of it.
const base = `
name: p
parameters:
  frac: {type: float, default: 0.3}
  name: {type: string}
tasks:
  - name: a
    command: [sh, -c, "echo {{inputs.frac}} > {{outputs.x}}"]
    inputs:
      frac: {type: float, param: frac}
    outputs:
      x: float
      d: Dataset
  - name: b
    command: [sh]
    args: ["{{inputs.d}}"]
    inputs:
      d: {type: Dataset, from: a.d}
`

func TestParseSkiff_Valid(t *testing.T) {
	t.Parallel()
	p, err := ParseSkiff([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tasks[1].Deps[0] != 0 || p.Tasks[1].Inputs[0].From.TaskIndex != 0 {
		t.Fatalf("deps not filled: %+v", p.Tasks[1])
	}
	if p.Params[0].Name != "frac" || p.Params[1].Name != "name" || p.Params[1].Default != nil {
		t.Fatalf("params %+v", p.Params)
	}
	roundTrip(t, p)
}

func TestParseSkiff_Forms(t *testing.T) {
	t.Parallel()
	src := `
name: forms_1
executor: docker
parameters:
  k: int
  l: {type: list, default: [1, "a"]}
  o: {type: object, default: {b: 1, a: "<x>"}}
  i: {type: int, default: 5.0}
tasks:
  - name: t
    image: alpine
    env: {B: "2", A: "{{inputs.k}}"}
    workingDir: "{{workdir}}/w"
    inputs:
      k: {param: k}
      f: {type: float, param: k}
      lit: {type: list, value: [1, 2]}
      s: {type: string, value: "x"}
    outputs:
      z: {type: Model}
    resources: {cpu: 2, memory: 1.5Gi, gpu: 1}
    cache: false
    timeout: 90
  - name: u
    command: ["{{{{literal}}"]
    inputs:
      m: {from: t.z}
    after: [t, t]
    resources: {cpu: "0.25", memory: 1G}
    cache: {maxStaleness: 1h}
outputs:
  model: t.z
`
	p, err := ParseSkiff([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	tk := p.Tasks[0]
	if tk.Env[0].Name != "A" || tk.Env[1].Name != "B" {
		t.Errorf("env not sorted: %+v", tk.Env)
	}
	if got := []string{tk.Inputs[0].Name, tk.Inputs[1].Name, tk.Inputs[2].Name, tk.Inputs[3].Name}; strings.Join(got, ",") != "f,k,lit,s" {
		t.Errorf("inputs not sorted: %v", got)
	}
	if tk.Inputs[1].Type != TypeInt {
		t.Errorf("inferred type %q, want int", tk.Inputs[1].Type)
	}
	if tk.Resources != (Resources{MilliCPU: 2000, MemoryBytes: 3 << 29, GPU: 1}) {
		t.Errorf("resources %+v", tk.Resources)
	}
	if tk.Cache == nil || tk.Cache.Enabled || tk.Timeout.String() != "1m30s" {
		t.Errorf("cache %+v timeout %v", tk.Cache, tk.Timeout)
	}
	if string(p.Param("i").Default) != "5" || string(p.Param("o").Default) != `{"a":"\u003cx\u003e","b":1}` {
		t.Errorf("defaults %s %s", p.Param("i").Default, p.Param("o").Default)
	}
	u := p.Tasks[1]
	if u.Inputs[0].Type != TypeModel || len(u.Deps) != 1 || u.Deps[0] != 0 {
		t.Errorf("u %+v", u)
	}
	if u.Resources != (Resources{MilliCPU: 250, MemoryBytes: 1e9}) || !u.Cache.Enabled || u.Cache.MaxStaleness.String() != "1h0m0s" {
		t.Errorf("u resources %+v cache %+v", u.Resources, u.Cache)
	}
	roundTrip(t, p)
}

func TestParseSkiff_Rejects(t *testing.T) {
	t.Parallel()
	edit := func(old, new string) string {
		if !strings.Contains(base, old) {
			panic("case does not apply: " + old)
		}
		return strings.Replace(base, old, new, 1)
	}
	cases := []struct {
		name string
		src  string
		want string // a line of the error
	}{
		{"syntax", "name: [", "invalid YAML"},
		{"empty document", "", "the document is empty"},
		{"not a mapping", "- a", "expected a mapping"},
		{"unknown top field", base + "colour: red\n", "colour: unknown field"},
		{"unknown task field", edit("  - name: b\n", "  - name: b\n    imagee: x\n"), "tasks[1].imagee: unknown field"},
		{"unknown input field", edit("{type: Dataset, from: a.d}", "{type: Dataset, form: a.d}"), "tasks[1].inputs.d.form: unknown field"},
		{"command not a list", edit("command: [sh]", "command: sh"), "tasks[1].command: expected a list of strings"},
		{"arg not a string", edit(`args: ["{{inputs.d}}"]`, `args: [5]`), "tasks[1].args[0]: expected a string, got number 5"},
		{"tasks not a list", "name: p\ntasks: {a: 1}\n", "tasks: expected a list of tasks"},
		{"no tasks", "name: p\ntasks: []\n", "tasks: a pipeline needs at least one task"},
		{"tasks missing", "name: p\n", "tasks: required"},
		{"missing name", strings.Replace(base, "name: p\n", "", 1), "name: required"},
		{"invalid name", strings.Replace(base, "name: p\n", "name: Bad.Name\n", 1), `name: invalid name "Bad.Name"`},
		{"invalid task name", edit("- name: b", "- name: B"), `tasks[1].name: invalid name "B"`},
		{"missing task name", edit("- name: b", "- image: x"), "tasks[1].name: required"},
		{"node selector not an object", edit("  - name: b\n", "  - name: b\n    nodeSelector: gpu\n"), "tasks[1].nodeSelector: expected"},
		{"node selector bad name", edit("  - name: b\n", "  - name: b\n    nodeSelector: {\"-gpu\": a100}\n"), `tasks[1].nodeSelector.-gpu: label name "-gpu"`},
		{"node selector bad value", edit("  - name: b\n", "  - name: b\n    nodeSelector: {gpu: \"a 100\"}\n"), `tasks[1].nodeSelector.gpu: label gpu value "a 100"`},
		{"node selector value not a string", edit("  - name: b\n", "  - name: b\n    nodeSelector: {gpu: [a]}\n"), "tasks[1].nodeSelector.gpu: expected a string"},
		{"duplicate task", edit("- name: b", "- name: a"), `tasks[1].name: duplicate task name "a" (also tasks[0])`},
		{"duplicate key", edit("  frac: {type: float, default: 0.3}\n", "  frac: {type: float, default: 0.3}\n  frac: {type: int}\n"), "invalid YAML"},
		{"invalid param name", edit("  name: {type: string}", "  9x: {type: string}"), "parameters.9x: invalid parameter name"},
		{"unknown param type", edit("name: {type: string}", "name: {type: str}"), `parameters.name.type: unknown type "str"`},
		{"artifact param type", edit("name: {type: string}", "name: {type: Dataset}"), "parameters.name.type: Dataset is an artifact type"},
		{"default wrong type", edit("default: 0.3", "default: abc"), `parameters.frac.default: expected float, got string "abc"`},
		{"int default fraction", edit("name: {type: string}", "name: {type: int, default: 1.5}"), "parameters.name.default: expected int, got 1.5"},
		{"unknown output type", edit("x: float", "x: Floaty"), `tasks[0].outputs.x: unknown type "Floaty"`},
		{"unknown input type", edit("{type: float, param: frac}", "{type: flt, param: frac}"), `tasks[0].inputs.frac.type: unknown type "flt"`},
		{"no source", edit("{type: float, param: frac}", "{type: float}"), "tasks[0].inputs.frac: no source"},
		{"several sources", edit("{type: float, param: frac}", "{type: float, param: frac, value: 1}"), "tasks[0].inputs.frac: several sources (value, param)"},
		{"literal on artifact", edit("{type: Dataset, from: a.d}", "{type: Dataset, value: x}"), "tasks[1].inputs.d.value: a literal value cannot feed artifact input"},
		{"literal wrong type", edit("{type: float, param: frac}", "{type: float, value: true}"), "tasks[0].inputs.frac.value: expected float, got bool true"},
		{"literal without type", edit("{type: float, param: frac}", "{value: 1}"), "tasks[0].inputs.frac.type: required with a literal value"},
		{"unknown param", edit("param: frac}", "param: test_frac}"), `tasks[0].inputs.frac: unknown pipeline parameter "test_frac"`},
		{"param type mismatch", edit("{type: float, param: frac}", "{type: int, param: frac}"), `tasks[0].inputs.frac: type mismatch: pipeline parameter "frac" is float, input is int`},
		{"param into artifact", edit("{type: float, param: frac}", "{type: Dataset, param: frac}"), "tasks[0].inputs.frac: type mismatch"},
		{"from unknown task", edit("from: a.d", "from: z.d"), `tasks[1].inputs.d: from z.d: unknown task "z"`},
		{"from unknown output", edit("from: a.d", "from: a.q"), `tasks[1].inputs.d: from a.q: task "a" has no output "q"`},
		{"from self", edit("from: a.d", "from: b.d"), "tasks[1].inputs.d: from b.d: a task cannot take its own output"},
		{"from malformed", edit("from: a.d", "from: ad"), `tasks[1].inputs.d.from: expected TASK.OUTPUT, got "ad"`},
		{"from type mismatch", edit("{type: Dataset, from: a.d}", "{type: Model, from: a.d}"), "tasks[1].inputs.d: type mismatch: a.d is Dataset, input is Model"},
		{"artifact into param", edit("{type: Dataset, from: a.d}", "{type: float, from: a.d}"), "tasks[1].inputs.d: type mismatch: a.d is Dataset, input is float"},
		{"param into artifact from", edit("{type: Dataset, from: a.d}", "{type: Dataset, from: a.x}"), "tasks[1].inputs.d: type mismatch: a.x is float, input is Dataset"},
		{"after unknown", edit("  - name: b\n", "  - name: b\n    after: [zz]\n"), `tasks[1].after[0]: unknown task "zz"`},
		{"after self", edit("  - name: b\n", "  - name: b\n    after: [b]\n"), "tasks[1].after[0]: a task cannot run after itself"},
		{"cycle", edit("  - name: a\n", "  - name: a\n    after: [b]\n"), "tasks: cycle a -> b -> a"},
		{"negative cpu", edit("  - name: b\n", "  - name: b\n    resources: {cpu: -1}\n"), "tasks[1].resources.cpu: must not be negative"},
		{"negative memory", edit("  - name: b\n", "  - name: b\n    resources: {memory: -1Gi}\n"), "tasks[1].resources.memory: must not be negative"},
		{"negative gpu", edit("  - name: b\n", "  - name: b\n    resources: {gpu: -1}\n"), "tasks[1].resources.gpu: must not be negative"},
		{"bad memory", edit("  - name: b\n", "  - name: b\n    resources: {memory: 1Qi}\n"), `tasks[1].resources.memory: invalid memory "1Qi"`},
		{"bad cpu", edit("  - name: b\n", "  - name: b\n    resources: {cpu: 1x}\n"), `tasks[1].resources.cpu: invalid cpu "1x"`},
		{"retry limit", edit("  - name: b\n", "  - name: b\n    retry: {limit: -1}\n"), "tasks[1].retry.limit: must not be negative"},
		{"retry factor", edit("  - name: b\n", "  - name: b\n    retry: {limit: 1, factor: 0.5}\n"), "tasks[1].retry.factor: must be at least 1"},
		{"retry backoff", edit("  - name: b\n", "  - name: b\n    retry: {limit: 1, backoff: soon}\n"), `tasks[1].retry.backoff: invalid duration "soon"`},
		{"max backoff below backoff", edit("  - name: b\n", "  - name: b\n    retry: {limit: 1, backoff: 1m, maxBackoff: 1s}\n"), "tasks[1].retry.maxBackoff: 1s is less than backoff 1m0s"},
		{"bad timeout", edit("  - name: b\n", "  - name: b\n    timeout: -5s\n"), "tasks[1].timeout: invalid duration"},
		{"cache enabled type", edit("  - name: b\n", "  - name: b\n    cache: {enabled: 1}\n"), "tasks[1].cache.enabled: expected true or false"},
		{"no command or image", edit("    command: [sh]\n", ""), "tasks[1]: set command, image or both"},
		{"env value number", edit("  - name: b\n", "  - name: b\n    env: {NUM: 1}\n"), "tasks[1].env.NUM: expected a string, got number 1 (quote it"},
		{"env bad name", edit("  - name: b\n", "  - name: b\n    env: {1N: x}\n"), "tasks[1].env.1N: invalid environment variable name"},
		{"placeholder undeclared input", edit(`args: ["{{inputs.d}}"]`, `args: ["{{inputs.e}}"]`), `tasks[1].args[0]: placeholder {{inputs.e}}: task "b" has no input "e"`},
		{"placeholder undeclared output", edit(`args: ["{{inputs.d}}"]`, `args: ["{{ outputs.o }}"]`), `tasks[1].args[0]: placeholder {{ outputs.o }}: task "b" has no output "o"`},
		{"placeholder unknown", edit(`args: ["{{inputs.d}}"]`, `args: ["x{{run.name}}"]`), "tasks[1].args[0]: placeholder {{run.name}}: unknown placeholder"},
		{"placeholder unterminated", edit(`args: ["{{inputs.d}}"]`, `args: ["{{inputs.d"]`), "tasks[1].args[0]: placeholder {{inputs.d: no closing }}"},
		{"placeholder in env", edit("  - name: b\n", "  - name: b\n    env: {X: \"{{inputs.nope}}\"}\n"), "tasks[1].env.X: placeholder {{inputs.nope}}"},
		{"placeholder in workingDir", edit("  - name: b\n", "  - name: b\n    workingDir: \"{{oops}}\"\n"), "tasks[1].workingDir: placeholder {{oops}}: unknown placeholder"},
		{"placeholder in command", edit("command: [sh]", `command: ["{{task.attempts}}"]`), "tasks[1].command[0]: placeholder {{task.attempts}}"},
		{"pipeline output unknown task", base + "outputs:\n  r: z.x\n", `outputs.r: z.x: unknown task "z"`},
		{"pipeline output unknown output", base + "outputs:\n  r: a.nope\n", `outputs.r: a.nope: task "a" has no output "nope"`},
		{"pipeline output malformed", base + "outputs:\n  r: a\n", `outputs.r: expected TASK.OUTPUT, got "a"`},
		{"output missing type", edit("x: float", "x: {}"), "tasks[0].outputs.x: type required"},
		{"input null", edit("{type: Dataset, from: a.d}", ""), "tasks[1].inputs.d: expected an object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseSkiff([]byte(tc.src))
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %T is not a *ValidationError: %v", err, err)
			}
			if !containsLine(err.Error(), tc.want) {
				t.Fatalf("error\n%v\nhas no line starting %q", err, tc.want)
			}
		})
	}
}

// containsLine reports whether a line of msg starts with want.
func containsLine(msg, want string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if strings.HasPrefix(l, want) {
			return true
		}
	}
	return false
}

func TestParseSkiff_ReportsAllErrors(t *testing.T) {
	t.Parallel()
	src := `
name: p
tasks:
  - name: a
    command: [x]
    inputs:
      i: {type: int, param: nope}
      j: {type: int}
  - name: a
    command: [x]
    after: [zz]
`
	_, err := ParseSkiff([]byte(src))
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("got %v", err)
	}
	want := []string{
		"tasks[1].name: duplicate task name",
		"tasks[0].inputs.i: unknown pipeline parameter",
		"tasks[0].inputs.j: no source",
		"tasks[1].after[0]: unknown task",
	}
	if len(ve.Errors) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(ve.Errors), len(want), err)
	}
	for _, w := range want {
		if !containsLine(err.Error(), w) {
			t.Errorf("missing %q in\n%v", w, err)
		}
	}
}

func TestFinalize_LeavesInvalidPlanUnchanged(t *testing.T) {
	t.Parallel()
	p := &Plan{Name: "p", Tasks: []Task{
		{Name: "a", Command: []string{"x"}, Outputs: []Output{{Name: "o", Type: TypeInt}}},
		{Name: "b", Command: []string{"x"}, Inputs: []Input{{Name: "i", From: &Ref{Task: "a", Output: "o"}}}, After: []string{"nope"}},
	}}
	if err := p.Finalize(); err == nil {
		t.Fatal("accepted")
	}
	if p.Version != 0 || p.Tasks[1].Deps != nil || p.Tasks[1].Inputs[0].Type != "" {
		t.Fatalf("plan changed: %+v", p)
	}
	p.Tasks[1].After = nil
	if err := p.Finalize(); err != nil {
		t.Fatal(err)
	}
	if p.Version != PlanVersion || len(p.Tasks[1].Deps) != 1 || p.Tasks[1].Inputs[0].Type != TypeInt {
		t.Fatalf("plan not finalized: %+v", p)
	}
}

func TestFinalize_PlanLevelChecks(t *testing.T) {
	t.Parallel()
	task := Task{Name: "a", Command: []string{"x"}, Outputs: []Output{{Name: "o", Type: TypeInt}}}
	cases := []struct {
		name string
		p    Plan
		want string
	}{
		{"future version", Plan{Version: 99, Name: "p", Tasks: []Task{task}}, "version: unsupported plan version 99"},
		{"duplicate param", Plan{Name: "p", Params: []Param{{Name: "x", Type: TypeInt}, {Name: "x", Type: TypeInt}}, Tasks: []Task{task}}, "parameters.x: duplicate parameter name"},
		{"duplicate input", Plan{Name: "p", Tasks: []Task{task, {Name: "b", Image: "i", Inputs: []Input{{Name: "i", Type: TypeInt, Value: []byte("1")}, {Name: "i", Type: TypeInt, Value: []byte("1")}}}}}, "tasks[1].inputs.i: duplicate input name"},
		{"duplicate output", Plan{Name: "p", Tasks: []Task{{Name: "a", Image: "i", Outputs: []Output{{Name: "o", Type: TypeInt}, {Name: "o", Type: TypeInt}}}}}, "tasks[0].outputs.o: duplicate output name"},
		{"duplicate env", Plan{Name: "p", Tasks: []Task{{Name: "a", Image: "i", Env: []EnvVar{{Name: "E"}, {Name: "E"}}}}}, "tasks[0].env.E: duplicate environment variable"},
		{"duplicate plan output", Plan{Name: "p", Tasks: []Task{task}, Outputs: []PlanOutput{{Name: "r", From: Ref{Task: "a", Output: "o"}}, {Name: "r", From: Ref{Task: "a", Output: "o"}}}}, "outputs.r: duplicate output name"},
		{"negative backoff", Plan{Name: "p", Tasks: []Task{{Name: "a", Image: "i", Retry: &Retry{Backoff: -1}}}}, "tasks[0].retry.backoff: must not be negative"},
		{"negative staleness", Plan{Name: "p", Tasks: []Task{{Name: "a", Image: "i", Cache: &Cache{MaxStaleness: -1}}}}, "tasks[0].cache.maxStaleness: must not be negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.p.Finalize()
			if err == nil || !containsLine(err.Error(), tc.want) {
				t.Fatalf("got %v, want a line %q", err, tc.want)
			}
		})
	}
}

func TestFinalize_CycleNamesTheCycle(t *testing.T) {
	t.Parallel()
	src := `
name: p
tasks:
  - {name: a, image: i}
  - {name: b, image: i, after: [a, d]}
  - {name: c, image: i, after: [b]}
  - {name: d, image: i, after: [c]}
`
	_, err := ParseSkiff([]byte(src))
	if err == nil || err.Error() != "tasks: cycle b -> c -> d -> b" {
		t.Fatalf("got %v", err)
	}
}

func TestParseSkiff_YAML12Scalars(t *testing.T) {
	p, err := ParseSkiff([]byte(`
name: norway
parameters:
  n: {type: string, default: no}
  y: {type: int, default: 0x10}
tasks:
  - name: a
    command: [echo, "{{inputs.n}}"]
    inputs: {n: {type: string, param: n}, on: {type: string, value: off}}
`))
	if err != nil {
		t.Fatalf("YAML 1.2 keys n/y/on must stay strings: %v", err)
	}
	if got := string(p.Param("n").Default); got != `"no"` {
		t.Errorf("default of n = %s, want \"no\"", got)
	}
	if got := string(p.Param("y").Default); got != `16` {
		t.Errorf("default of y = %s, want 16", got)
	}
}

func TestParseSkiff_RejectsSecondDocumentAndDuplicateKeys(t *testing.T) {
	for name, doc := range map[string]string{
		"two documents": "name: a\ntasks: [{name: t, command: [x]}]\n---\nname: b\n",
		"duplicate key": "name: a\nname: b\ntasks: [{name: t, command: [x]}]\n",
		"merge key":     "base: &b {x: 1}\nname: a\ntasks: [{<<: *b, name: t, command: [x]}]\n",
	} {
		if _, err := ParseSkiff([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestParseSkiff_ConditionsAndExitHandlers(t *testing.T) {
	good := `
name: gate
tasks:
  - name: eval
    command: [x]
    outputs: {acc: float}
  - name: deploy
    command: [x]
    inputs: {acc: {from: eval.acc}}
    when: inputs.acc >= 0.9
  - name: cleanup
    command: [x]
    after: [eval, deploy]
    ignoreUpstreamFailure: true
    inputs: {status: {upstreamStatus: true}}
`
	p, err := ParseSkiff([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if p.Tasks[1].When != "inputs.acc >= 0.9" || !p.Tasks[2].IgnoreUpstreamFailure || p.Tasks[2].Inputs[0].Type != TypeObject {
		t.Errorf("plan = %+v", p.Tasks)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		"invalid CEL":       {"when: inputs.acc >= 0.9", "when: inputs.acc >=", "tasks[1].when: invalid CEL"},
		"not a bool":        {"when: inputs.acc >= 0.9", "when: '1 + 2'", "tasks[1].when: must be a bool"},
		"status not object": {"{status: {upstreamStatus: true}}", "{status: {type: string, upstreamStatus: true}}", "tasks[2].inputs.status.type"},
		"two sources":       {"{status: {upstreamStatus: true}}", "{status: {upstreamStatus: true, value: {}}}", "several sources"},
		"iuf not a bool":    {"ignoreUpstreamFailure: true", "ignoreUpstreamFailure: yes", "tasks[2].ignoreUpstreamFailure"},
	} {
		_, err := ParseSkiff([]byte(strings.Replace(good, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", name, err, tc.want)
		}
	}
}

// TestParseSkiff_NodeSelector: a task's nodeSelector is kept as given and
// reaches the plan; a group may not have one (nor resources, retry,
// timeout or cache).
func TestParseSkiff_NodeSelector(t *testing.T) {
	t.Parallel()
	p, err := ParseSkiff([]byte(strings.Replace(base, "  - name: b\n", "  - name: b\n    nodeSelector: {skiff.dev/gpu: a100, zone: \"\"}\n", 1)))
	if err != nil {
		t.Fatal(err)
	}
	got := p.Tasks[1].NodeSelector
	if len(got) != 2 || got["skiff.dev/gpu"] != "a100" || got["zone"] != "" {
		t.Fatalf("nodeSelector: %v", got)
	}
	_, err = ParseSkiff([]byte("name: p\ntasks:\n  - name: g\n    nodeSelector: {gpu: a100}\n    tasks:\n      - {name: s, command: [x]}\n"))
	if err == nil || !strings.Contains(err.Error(), "remove nodeSelector") {
		t.Fatalf("group with a nodeSelector: %v", err)
	}
	// Step fields on a group were once dropped unread.
	for field, src := range map[string]string{"resources": "resources: {cpu: 1}", "retry": "retry: {limit: 2}", "timeout": "timeout: 1m", "cache": "cache: true"} {
		_, err = ParseSkiff([]byte("name: p\ntasks:\n  - name: g\n    " + src + "\n    tasks:\n      - {name: s, command: [x]}\n"))
		if err == nil || !strings.Contains(err.Error(), "remove "+field) {
			t.Errorf("group with %s: %v", field, err)
		}
	}
}

// Several unknown fields of one mapping are reported each, in key order,
// whatever order the document or the map gives them.
func TestParseSkiff_UnknownFieldsInKeyOrder(t *testing.T) {
	t.Parallel()
	src := strings.Replace(base, "  - name: b\n", "  - name: b\n    zeta: 1\n    alpha: 2\n    image2: x\n", 1)
	_, err := ParseSkiff([]byte(src))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	var at []int
	for _, f := range []string{"tasks[1].alpha: unknown field", "tasks[1].image2: unknown field", "tasks[1].zeta: unknown field"} {
		i := strings.Index(msg, f)
		if i < 0 {
			t.Fatalf("%q not in %q", f, msg)
		}
		at = append(at, i)
	}
	if !(at[0] < at[1] && at[1] < at[2]) {
		t.Errorf("not in key order: %q", msg)
	}
}
