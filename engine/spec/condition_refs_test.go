package spec

import (
	"strings"
	"testing"
)

func TestConditionInputs_ListsWhatItReads(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		`inputs.a > 1`:                            "a",
		`inputs["b c"] == "x" && inputs.a`:        "a,b c",
		`has(inputs.x) && inputs.x.size > 3`:      "x",
		`inputs.status.state == "FAILED" || true`: "status",
		`[1, 2].exists(v, v == inputs.n)`:         "n",
		`true`:                                    "",
		`inputs[string(1)] == 1`:                  "",
	}
	for expr, want := range cases {
		got, err := ConditionInputs(expr)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ConditionInputs(%q) = %v, %v; want %s", expr, got, err, want)
		}
	}
}

// TestParseSkiff_WhenReadsOnlyDeclaredInputs: a when naming an input the
// task does not declare is refused at validation, with its path.
func TestParseSkiff_WhenReadsOnlyDeclaredInputs(t *testing.T) {
	t.Parallel()
	_, err := ParseSkiff([]byte(`name: p
parameters:
  score: {type: float, default: 0.5}
tasks:
  - name: a
    command: [x]
    inputs: {score: {type: float, param: score}}
    when: inputs.score > 0.3 && inputs.scor < 1.0
  - name: b
    command: [x]
    when: inputs["nope"] == 1
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"tasks[0].when: reads inputs.scor, which the task does not declare (its inputs are score)",
		"tasks[1].when: reads inputs.nope, which the task does not declare (the task declares no inputs)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if _, err := ParseSkiff([]byte("name: p\nparameters:\n  s: {type: float, default: 0.5}\ntasks:\n  - name: a\n    command: [x]\n    inputs: {s: {type: float, param: s}}\n    when: inputs.s > 0.3\n")); err != nil {
		t.Errorf("a declared input refused: %v", err)
	}
}
