package executors

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store/blob"
)

func TestParseParam(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		typ  spec.Type
		in   string
		want string // "" = error
	}{
		{"string trims one newline", spec.TypeString, "hi\n\n", `"hi\n"`},
		{"string crlf", spec.TypeString, "hi\r\n", `"hi"`},
		{"string raw", spec.TypeString, "  a b ", `"  a b "`},
		{"string empty", spec.TypeString, "", `""`},
		{"string not utf8", spec.TypeString, "\xff", ""},
		{"int", spec.TypeInt, " 42 \n", `42`},
		{"int negative", spec.TypeInt, "-7", `-7`},
		{"int fraction", spec.TypeInt, "4.5", ""},
		{"int exponent", spec.TypeInt, "1e3", ""},
		{"int overflow", spec.TypeInt, "99999999999999999999", ""},
		{"int text", spec.TypeInt, "abc", ""},
		{"float", spec.TypeFloat, "0.93\n", `0.93`},
		{"float from int", spec.TypeFloat, "3", `3`},
		{"float exponent", spec.TypeFloat, "1e-3", `1e-3`},
		{"float text", spec.TypeFloat, "abc", ""},
		{"float nan", spec.TypeFloat, "NaN", ""},
		{"float string", spec.TypeFloat, `"1"`, ""},
		{"bool", spec.TypeBool, "true\n", `true`},
		{"bool word", spec.TypeBool, "yes", ""},
		{"list", spec.TypeList, "[1, 2,\n 3]\n", `[1,2,3]`},
		{"list object", spec.TypeList, `{"a":1}`, ""},
		{"object", spec.TypeObject, `{ "a" : [1] }`, `{"a":[1]}`},
		{"object null", spec.TypeObject, "null", ""},
		{"object trailing", spec.TypeObject, `{} {}`, ""},
		{"artifact type", spec.TypeModel, "x", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseParam(tc.typ, []byte(tc.in))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("ParseParam(%s, %q) = %s, want error", tc.typ, tc.in, got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("ParseParam(%s, %q) = %s, %v; want %s", tc.typ, tc.in, got, err, tc.want)
			}
		})
	}
}

func FuzzParseParam(f *testing.F) {
	types := []spec.Type{spec.TypeString, spec.TypeInt, spec.TypeFloat, spec.TypeBool, spec.TypeList, spec.TypeObject}
	for _, s := range []string{"1", "1.5\n", "true", "[1]", `{"a":1}`, "abc\n", "-0", "1e400"} {
		f.Add(uint8(0), []byte(s))
	}
	f.Fuzz(func(t *testing.T, ti uint8, data []byte) {
		typ := types[int(ti)%len(types)]
		raw, err := ParseParam(typ, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "expected ") {
				t.Fatalf("error %q does not say what was expected", err)
			}
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("ParseParam(%s, %q) = invalid JSON %s", typ, data, raw)
		}
		if typ == spec.TypeInt {
			if _, err := strconv.ParseInt(string(raw), 10, 64); err != nil {
				t.Fatalf("int result %s: %v", raw, err)
			}
		}
		// Parsing the result again gives the same value (strings aside, whose
		// newline trimming is not idempotent by design).
		if typ != spec.TypeString {
			again, err := ParseParam(typ, raw)
			if err != nil || string(again) != string(raw) {
				t.Fatalf("re-parse of %s = %s, %v", raw, again, err)
			}
		}
	})
}

func TestCollectOutputs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	blobs, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := PrepareRoot(root); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{InputsDir, OutputsDir, TmpDir} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			t.Fatalf("%s not created: %v", d, err)
		}
	}
	write := func(name, content string) {
		p := OutputPath(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("accuracy", "0.9\n")
	write("name", "resnet\n")
	write("model", "weights")
	write("ds/part-0", "rows")
	write("bad", "abc")

	outs := []OutputSpec{
		{Name: "accuracy", Type: spec.TypeFloat},
		{Name: "name", Type: spec.TypeString},
		{Name: "model", Type: spec.TypeModel},
		{Name: "ds", Type: spec.TypeDataset},
	}
	vals, err := CollectOutputs(ctx, root, outs, blobs, 0)
	if err != nil {
		t.Fatal(err)
	}
	if string(vals["accuracy"].Param) != "0.9" || string(vals["name"].Param) != `"resnet"` {
		t.Fatalf("params = %s, %s", vals["accuracy"].Param, vals["name"].Param)
	}
	m, ds := vals["model"].Artifact, vals["ds"].Artifact
	if m == nil || m.Type != spec.TypeModel || m.Dir || m.Size != 7 {
		t.Fatalf("model = %+v", m)
	}
	if ds == nil || ds.Type != spec.TypeDataset || !ds.Dir {
		t.Fatalf("ds = %+v", ds)
	}

	// Round trip through MaterializeInputs.
	root2 := t.TempDir()
	PrepareRoot(root2)
	ins := []ArtifactInput{{Name: "m", Ref: *m}, {Name: "d", Ref: *ds}}
	if err := MaterializeInputs(ctx, root2, ins, blobs); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(InputPath(root2, "m")); string(b) != "weights" {
		t.Fatalf("input m = %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(InputPath(root2, "d"), "part-0")); string(b) != "rows" {
		t.Fatalf("input d/part-0 = %q", b)
	}

	for _, tc := range []struct {
		name string
		out  OutputSpec
		want string
	}{
		{"bad float", OutputSpec{Name: "bad", Type: spec.TypeFloat}, `output "bad": expected float, got "abc"`},
		{"missing param", OutputSpec{Name: "nope", Type: spec.TypeInt}, `output "nope": missing`},
		{"missing artifact", OutputSpec{Name: "gone", Type: spec.TypeModel}, `output "gone": missing`},
		{"escape", OutputSpec{Name: "../x", Type: spec.TypeModel}, `output "../x": name must be`},
		{"unknown type", OutputSpec{Name: "bad", Type: "Weird"}, `output "bad": unknown type`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CollectOutputs(ctx, root, []OutputSpec{tc.out}, blobs, 0)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want prefix %q", err, tc.want)
			}
		})
	}
	if err := MaterializeInputs(ctx, root2, []ArtifactInput{{Name: "/abs", Ref: *m}}, blobs); err == nil {
		t.Fatal("absolute input name accepted")
	}
}

// TestCollectOutputs_NoneOpensNothing: a step without outputs has nothing
// read from its root, so the root is not even opened (a root gone by then
// changes nothing).
func TestCollectOutputs_NoneOpensNothing(t *testing.T) {
	blobs, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := CollectOutputs(context.Background(), filepath.Join(t.TempDir(), "gone"), nil, blobs, 0)
	if err != nil || vals == nil || len(vals) != 0 {
		t.Fatalf("no outputs: got %v, %v; want an empty map and no error", vals, err)
	}
}
