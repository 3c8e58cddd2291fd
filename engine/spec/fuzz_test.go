package spec

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func FuzzParseSkiff(f *testing.F) {
	f.Add(readExample(f, "iris"))
	f.Add(readExample(f, "hello"))
	f.Add([]byte(base))
	f.Add([]byte("name: p\ntasks:\n  - {name: a, image: i, after: [a]}\n"))
	f.Add([]byte("name: p\ntasks:\n  - name: a\n    command: [\"{{{{x}}\"]\n    resources: {cpu: 1e3m, memory: 1.5Ki}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseSkiff(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		roundTrip(t, p)
	})
}

func FuzzExpand(f *testing.F) {
	for _, name := range []string{"iris", "hello"} {
		p, err := ParseSkiff(readExample(f, name))
		if err != nil {
			f.Fatal(err)
		}
		for _, task := range p.Tasks {
			for _, s := range append(append([]string{task.WorkingDir}, task.Command...), task.Args...) {
				f.Add(s)
			}
		}
	}
	for _, s := range []string{"", "{{", "}}", "{{{{", "{{{{{{inputs.frac}}", "{{ workdir }}", "{{inputs.}}", "{{{inputs.frac}}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		env := testEnv()
		for _, name := range []string{"data", "frac", "train", "test", "model", "metrics", "accuracy", "who", "text", "lr", "epochs", "seed", "test_fraction", "min_accuracy"} {
			env.Inputs[name] = "IN:" + name
			env.Outputs[name] = "OUT:" + name
		}
		out, err := Expand(s, env)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "placeholder ") {
				t.Fatalf("error %q does not name the placeholder", err)
			}
			return
		}
		if !strings.Contains(s, "{{") && out != s {
			t.Fatalf("text without placeholders changed: %q -> %q", s, out)
		}
		// Escaping every "{{" makes any text expand to itself.
		lit, err := Expand(strings.ReplaceAll(s, "{{", "{{{{"), env)
		if err != nil || lit != s {
			t.Fatalf("escaped %q expanded to %q, %v", s, lit, err)
		}
	})
}

func FuzzResolveParams(f *testing.F) {
	for _, s := range []string{"5", "1.5", "true", "[1]", `{"a":1}`, "x", "1e400", ""} {
		f.Add(s)
	}
	p := paramPlan(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, prm := range p.Params {
			vals, err := p.ResolveParams(map[string]string{"s": "x", prm.Name: s})
			if err != nil {
				continue
			}
			if err := p.CheckParams(vals); err != nil {
				t.Fatalf("resolved values fail CheckParams: %v", err)
			}
			if !json.Valid(vals[prm.Name]) {
				t.Fatalf("invalid JSON %q", vals[prm.Name])
			}
		}
	})
}

// FuzzYAMLValue: what yamlValue makes of a document is exactly what a JSON
// decoder (UseNumber) makes of its JSON, the form the pipeline decoders
// were written against (they once read that JSON).
func FuzzYAMLValue(f *testing.F) {
	f.Add(readExample(f, "iris"))
	f.Add([]byte(base))
	f.Add([]byte("a: &x {b: [1, 2.50, -0x1F, 1_000, .5e3, null, ~, true, 'no', y]}\nc: *x\nd: !!binary aGk=\ne: 2001-12-14\n"))
	f.Add([]byte("[\"\\u00e9\", {\"k\": 1e400}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := yamlValue(data)
		if err != nil {
			return
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("yamlValue made %#v, which JSON cannot encode: %v", v, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(j)))
		dec.UseNumber()
		var back any
		if err := dec.Decode(&back); err != nil {
			t.Fatalf("decode %s: %v", j, err)
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("yamlValue made\n%#v\nbut its JSON %s decodes to\n%#v", v, j, back)
		}
	})
}
