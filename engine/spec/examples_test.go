package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func readExample(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", name, "pipeline.yaml"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseSkiff_Examples(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"iris", "hello"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseSkiff(readExample(t, name))
			if err != nil {
				t.Fatalf("ParseSkiff: %v", err)
			}
			roundTrip(t, p)
		})
	}
}

// fataler is what roundTrip needs of testing.TB and *rapid.T.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// roundTrip checks that p survives JSON and a second Finalize unchanged.
func roundTrip(tb fataler, p *Plan) {
	tb.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		tb.Fatal(err)
	}
	var q Plan
	if err := json.Unmarshal(b, &q); err != nil {
		tb.Fatalf("unmarshal: %v\n%s", err, b)
	}
	if err := q.Finalize(); err != nil {
		tb.Fatalf("Finalize after round trip: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(p, &q) {
		b2, _ := json.Marshal(&q)
		tb.Fatalf("round trip changed the plan:\n%s\n%s", b, b2)
	}
}

func TestParseSkiff_IrisPlan(t *testing.T) {
	t.Parallel()
	p, err := ParseSkiff(readExample(t, "iris"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tk := range p.Tasks {
		names = append(names, tk.Name)
	}
	if want := []string{"load", "split", "train", "evaluate", "report"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("task order %v, want %v", names, want)
	}
	wantDeps := [][]int{nil, {0}, {1}, {1, 2}, {3}}
	for i, tk := range p.Tasks {
		if !reflect.DeepEqual(tk.Deps, wantDeps[i]) {
			t.Errorf("%s deps %v, want %v", tk.Name, tk.Deps, wantDeps[i])
		}
	}
	tr := p.Tasks[2]
	if tr.Resources != (Resources{MilliCPU: 500, MemoryBytes: 256 << 20}) {
		t.Errorf("train resources %+v", tr.Resources)
	}
	if tr.Retry == nil || tr.Retry.Limit != 2 || tr.Retry.Factor != 2 || tr.Retry.MaxBackoff.String() != "10s" {
		t.Errorf("train retry %+v", tr.Retry)
	}
	if p.Version != PlanVersion || p.Executor != "local" || len(p.Params) != 5 || len(p.Outputs) != 4 {
		t.Errorf("plan header %+v", p)
	}
	if o := p.Outputs[0]; o.Name != "accuracy" || o.From.TaskIndex != 3 {
		t.Errorf("outputs[0] = %+v", o)
	}
	if in := p.Tasks[3].Inputs[0]; in.Name != "model" || in.From.TaskIndex != 2 {
		t.Errorf("evaluate inputs[0] = %+v", in)
	}
}
