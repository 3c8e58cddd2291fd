package spec

import (
	"encoding/json"
	"errors"
	"testing"
)

func paramPlan(tb testing.TB) *Plan {
	tb.Helper()
	p, err := ParseSkiff([]byte(`
name: p
parameters:
  s: {type: string}
  i: {type: int, default: 5}
  f: {type: float, default: 0.5}
  b: {type: bool, default: false}
  l: {type: list, default: []}
  o: {type: object, default: {}}
tasks:
  - {name: a, image: x}
`))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func TestResolveParams(t *testing.T) {
	t.Parallel()
	p := paramPlan(t)
	got, err := p.ResolveParams(map[string]string{"s": "a b", "i": "7", "f": "1e-3", "b": "true", "l": `[1, 2]`, "o": `{"k": "v"}`})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"s": `"a b"`, "i": "7", "f": "0.001", "b": "true", "l": "[1,2]", "o": `{"k":"v"}`}
	for k, w := range want {
		if string(got[k]) != w {
			t.Errorf("%s = %s, want %s", k, got[k], w)
		}
	}
	got, err = p.ResolveParams(map[string]string{"s": "5"})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"s": `"5"`, "i": "5", "f": "0.5", "b": "false", "l": "[]", "o": "{}"}
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for k, w := range want {
		if string(got[k]) != w {
			t.Errorf("default %s = %s, want %s", k, got[k], w)
		}
	}
}

func TestResolveParams_Errors(t *testing.T) {
	t.Parallel()
	p := paramPlan(t)
	cases := []struct {
		name  string
		given map[string]string
		want  string
	}{
		{"missing required", map[string]string{}, "parameters.s: required parameter of type string has no value"},
		{"unknown", map[string]string{"s": "x", "zz": "1"}, "parameters.zz: unknown parameter; declared: b, f, i, l, o, s"},
		{"odd name", map[string]string{"s": "x", "a b": "1"}, `parameters["a b"]: unknown parameter`},
		{"bad int", map[string]string{"s": "x", "i": "1.5"}, `parameters.i: expected int, got "1.5"`},
		{"bad float", map[string]string{"s": "x", "f": "abc"}, `parameters.f: expected float, got "abc"`},
		{"nan float", map[string]string{"s": "x", "f": "NaN"}, `parameters.f: expected float`},
		{"bad bool", map[string]string{"s": "x", "b": "maybe"}, `parameters.b: expected bool (true or false), got "maybe"`},
		{"bad list", map[string]string{"s": "x", "l": "{}"}, `parameters.l: expected list as JSON`},
		{"bad object", map[string]string{"s": "x", "o": "[1"}, `parameters.o: expected object as JSON`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := p.ResolveParams(tc.given)
			var ve *ValidationError
			if !errors.As(err, &ve) || !containsLine(err.Error(), tc.want) {
				t.Fatalf("got %v, want a line %q", err, tc.want)
			}
			if len(ve.Errors) != 1 {
				t.Fatalf("want one error, got %v", err)
			}
		})
	}
}

func TestCheckParams(t *testing.T) {
	t.Parallel()
	p := paramPlan(t)
	ok := map[string]json.RawMessage{"s": json.RawMessage(`"x"`), "i": json.RawMessage(`3`), "f": json.RawMessage(`3`)}
	if err := p.CheckParams(ok); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		vals map[string]json.RawMessage
		want string
	}{
		{"missing", map[string]json.RawMessage{}, "parameters.s: required"},
		{"wrong type", map[string]json.RawMessage{"s": json.RawMessage(`1`)}, "parameters.s: expected string, got number 1"},
		{"int fraction", map[string]json.RawMessage{"s": json.RawMessage(`"x"`), "i": json.RawMessage(`1.5`)}, "parameters.i: expected int, got 1.5"},
		{"invalid json", map[string]json.RawMessage{"s": json.RawMessage(`"x`)}, "parameters.s: expected string, got invalid JSON"},
		{"unknown", map[string]json.RawMessage{"s": json.RawMessage(`"x"`), "q": json.RawMessage(`1`)}, "parameters.q: unknown parameter"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := p.CheckParams(tc.vals); err == nil || !containsLine(err.Error(), tc.want) {
				t.Fatalf("got %v, want a line %q", err, tc.want)
			}
		})
	}
	vals, err := p.ResolveParamValues(map[string]json.RawMessage{"s": json.RawMessage(` "x" `), "i": json.RawMessage(`4.0`)})
	if err != nil || string(vals["s"]) != `"x"` || string(vals["i"]) != "4" || string(vals["b"]) != "false" {
		t.Fatalf("ResolveParamValues = %s, %v", vals, err)
	}
}
