package executortest

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// hostTree is a directory outside every execution root with a secret file
// in it; check fails the test if anything in it was changed or added.
type hostTree struct {
	dir, secret string
	before      map[string]string
}

const hostSecret = "host secret: must never be read by a step's output\n"

func newHostTree(t *testing.T) *hostTree {
	h := &hostTree{dir: t.TempDir()}
	h.secret = filepath.Join(h.dir, "secret")
	if err := os.WriteFile(h.secret, []byte(hostSecret), 0o644); err != nil {
		t.Fatal(err)
	}
	h.before = h.snapshot(t)
	return h
}

func (h *hostTree) snapshot(t *testing.T) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(h.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		b, _ := os.ReadFile(p)
		m[p] = d.Type().String() + ":" + string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (h *hostTree) check(t *testing.T) {
	t.Helper()
	after := h.snapshot(t)
	for p, v := range after {
		if h.before[p] != v {
			t.Errorf("host file %s was written or created: %q", p, v)
		}
	}
	for p := range h.before {
		if _, ok := after[p]; !ok {
			t.Errorf("host file %s was removed", p)
		}
	}
}

// testHostile: a step owns its root and may plant symbolic links there
// pointing at host files; no host file is read, listed or written through
// them. Each link is an error on the output it names (or, for a KFP
// ExecutorOutput value, the value is taken without writing through the
// link); the log is kept where no link of the step leads it.
func testHostile(t *testing.T, h Harness) {
	if h.Synthetic {
		t.Skip("synthetic executor: runs no step")
	}
	f := newFixture(t, h)
	host := newHostTree(t)
	type hostile struct {
		name   string
		script string
		outs   []executors.OutputSpec
		check  func(t *testing.T, ev executors.Event)
	}
	failsOn := func(output string) func(t *testing.T, ev executors.Event) {
		return func(t *testing.T, ev executors.Event) {
			if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, `output "`+output+`"`) || !strings.Contains(ev.Reason, "symbolic link") {
				t.Errorf("state %s reason %q; want FAILED with an error on output %q about a symbolic link", ev.State, ev.Reason, output)
			}
		}
	}
	cases := []hostile{
		{"param output linked to a host file", `ln -s "$HOST_SECRET" "$ROOT/outputs/p"`,
			[]executors.OutputSpec{{Name: "p", Type: spec.TypeString}}, failsOn("p")},
		{"artifact output linked to a host file", `ln -s "$HOST_SECRET" "$ROOT/outputs/m"`,
			[]executors.OutputSpec{{Name: "m", Type: spec.TypeModel}}, failsOn("m")},
		{"outputs dir replaced by a link to a host dir", `rm -rf "$ROOT/outputs" && ln -s "$HOST_DIR" "$ROOT/outputs"`,
			[]executors.OutputSpec{{Name: "secret", Type: spec.TypeString}, {Name: "all", Type: spec.TypeDataset}}, failsOn("secret")},
		{"outputs dir linked, artifact", `rm -rf "$ROOT/outputs" && ln -s "$HOST_DIR" "$ROOT/outputs"`,
			[]executors.OutputSpec{{Name: "secret", Type: spec.TypeDataset}}, failsOn("secret")},
		{"executor output value through a link", `ln -s "$HOST_SECRET" "$ROOT/outputs/p"
printf '{"parameterValues": {"p": "from the step"}}' > "$ROOT/eo.json"`,
			[]executors.OutputSpec{{Name: "p", Type: spec.TypeString, ExecutorOutput: "eo.json"}},
			func(t *testing.T, ev executors.Event) {
				if ev.State != spec.TaskSucceeded || string(ev.Outputs["p"].Param) != `"from the step"` {
					t.Errorf("state %s reason %q outputs %v; want the ExecutorOutput value", ev.State, ev.Reason, ev.Outputs)
				}
			}},
		{"log locations linked to host files", `ln -s "$HOST_SECRET" "$ROOT/output.log"
rm -rf "$ROOT/logs" && ln -s "$HOST_DIR" "$ROOT/logs"
for i in 1 2 3 4 5; do echo "line $i"; sleep 0.1; done`, nil,
			func(t *testing.T, ev executors.Event) {
				if ev.State != spec.TaskSucceeded {
					t.Errorf("state %s reason %q", ev.State, ev.Reason)
				}
				if logs := f.logs(t, ev); !strings.Contains(logs, "line 5") || strings.Contains(logs, "host secret") {
					t.Errorf("logs = %q; want the step's own output", logs)
				}
			}},
	}
	specs := make([]*executors.Spec, len(cases))
	for i, c := range cases {
		s := f.spec(TaskHostile, "set -e\n"+c.script)
		s.Env = []spec.EnvVar{{Name: "HOST_SECRET", Value: host.secret}, {Name: "HOST_DIR", Value: host.dir}, {Name: "ROOT", Value: f.root(s)}}
		s.Outputs = c.outs
		specs[i] = s
		f.start(t, s)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := f.exited(t, specs[i].ID)
			c.check(t, ev)
			for name, v := range ev.Outputs {
				if v.Artifact != nil && v.Artifact.Size > 0 {
					if b := f.readBlob(t, *v.Artifact); strings.Contains(string(b), "host secret") {
						t.Errorf("output %s holds the host file", name)
					}
				}
				if strings.Contains(string(v.Param), "host secret") {
					t.Errorf("output %s holds the host file", name)
				}
			}
		})
	}
	sum := sha256.Sum256([]byte(hostSecret))
	if f.blobs.Has("sha256:" + hex.EncodeToString(sum[:])) {
		t.Error("the host file's content was stored in the blob store")
	}
	host.check(t)
}
