package spec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func testEnv() *PlaceholderEnv {
	return &PlaceholderEnv{
		Inputs:       map[string]string{"frac": "0.3", "data": "/w/in/data", "my-in": "x"},
		Outputs:      map[string]string{"model": "/w/out/model"},
		RunID:        "run1",
		TaskName:     "train",
		ExecutionID:  "exec1",
		PipelineName: "iris",
		PipelineDir:  "/src/iris",
		Root:         "/w",
		Attempt:      2,
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"no placeholders", "plain } { text", "plain } { text"},
		{"input", "--frac={{inputs.frac}}", "--frac=0.3"},
		{"spaces", "{{ inputs.data }}/{{\toutputs.model }}", "/w/in/data//w/out/model"},
		{"dash name", "{{inputs.my-in}}", "x"},
		{"context", "{{run.id}} {{task.name}} {{task.attempt}} {{execution.id}} {{pipeline.name}} {{pipeline.dir}} {{workdir}}", "run1 train 2 exec1 iris /src/iris /w"},
		{"escape", "{{{{inputs.frac}}", "{{inputs.frac}}"},
		{"escape then placeholder", "{{{{{{inputs.frac}}", "{{0.3"},
		{"lone closing", "a}}b", "a}}b"},
		{"adjacent", "{{inputs.frac}}{{inputs.frac}}", "0.30.3"},
		{"empty string", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Expand(tc.in, testEnv())
			if err != nil || got != tc.want {
				t.Fatalf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestExpand_Errors(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, in, want string }{
		{"unknown", "{{foo}}", "placeholder {{foo}}: unknown placeholder"},
		{"unknown prefix", "{{params.x}}", "placeholder {{params.x}}: unknown placeholder"},
		{"missing input", "{{inputs.nope}}", `placeholder {{inputs.nope}}: no input named "nope"`},
		{"missing output", "{{outputs.nope}}", `placeholder {{outputs.nope}}: no output named "nope"`},
		{"bad name", "{{inputs.a b}}", `placeholder {{inputs.a b}}: invalid input name "a b"`},
		{"empty name", "{{outputs.}}", `placeholder {{outputs.}}: invalid output name ""`},
		{"unterminated", "x {{inputs.frac", "placeholder {{inputs.frac: no closing }}"},
		{"empty", "{{}}", "placeholder {{}}: unknown placeholder"},
		{"triple", "{{{inputs.frac}}}", "placeholder {{{inputs.frac}}: unknown placeholder"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Expand(tc.in, testEnv())
			var pe *PlaceholderError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("Expand(%q) error %v; want %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestExpand_EmptyContextIsAnError(t *testing.T) {
	t.Parallel()
	env := testEnv()
	env.PipelineDir = ""
	if _, err := Expand("{{pipeline.dir}}/x.py", env); err == nil || !strings.Contains(err.Error(), "{{pipeline.dir}}") {
		t.Fatalf("got %v", err)
	}
	env = &PlaceholderEnv{}
	if got, err := Expand("{{task.attempt}}", env); err != nil || got != "0" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestParamText(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{`"hello world"`, "hello world"},
		{`"a\"b\u003c"`, `a"b<`},
		{`5`, "5"},
		{`0.25`, "0.25"},
		{`true`, "true"},
		{`[1, "a", {"b": 2}]`, `[1,"a",{"b":2}]`},
		{` {"a" : null} `, `{"a":null}`},
		{`not json`, "not json"},
	}
	for _, tc := range cases {
		if got := ParamText(json.RawMessage(tc.in)); got != tc.want {
			t.Errorf("ParamText(%s) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
