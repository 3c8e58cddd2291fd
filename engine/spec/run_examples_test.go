package spec

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// runByHand runs a finalized plan's tasks in list order as the local
// executor would (command + args expanded, one work dir per task), with
// parameter outputs read back from their files as text. It returns the
// pipeline outputs: parameter text, or the artifact's path.
func runByHand(t *testing.T, p *Plan, dir string, params map[string]string) map[string]string {
	t.Helper()
	vals, err := p.ResolveParams(params)
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	outPath := func(task, out string) string { return filepath.Join(root, task, "outputs", out) }
	for i := range p.Tasks {
		task := &p.Tasks[i]
		env := &PlaceholderEnv{Inputs: map[string]string{}, Outputs: map[string]string{},
			RunID: "r1", TaskName: task.Name, ExecutionID: "e1", PipelineName: p.Name,
			PipelineDir: dir, Root: filepath.Join(root, task.Name), Attempt: 1}
		for _, in := range task.Inputs {
			switch {
			case in.Value != nil:
				env.Inputs[in.Name] = ParamText(in.Value)
			case in.Param != "":
				env.Inputs[in.Name] = ParamText(vals[in.Param])
			case in.Type.Kind() == KindArtifact:
				env.Inputs[in.Name] = outPath(in.From.Task, in.From.Output)
			default:
				b, err := os.ReadFile(outPath(in.From.Task, in.From.Output))
				if err != nil {
					t.Fatal(err)
				}
				env.Inputs[in.Name] = strings.TrimSpace(string(b))
			}
		}
		for _, o := range task.Outputs {
			env.Outputs[o.Name] = outPath(task.Name, o.Name)
		}
		if err := os.MkdirAll(filepath.Join(env.Root, "outputs"), 0o755); err != nil {
			t.Fatal(err)
		}
		var argv []string
		for _, s := range append(append([]string(nil), task.Command...), task.Args...) {
			x, err := Expand(s, env)
			if err != nil {
				t.Fatalf("%s: %v", task.Name, err)
			}
			argv = append(argv, x)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = env.Root
		cmd.Env = os.Environ()
		for _, e := range task.Env {
			v, err := Expand(e.Value, env)
			if err != nil {
				t.Fatal(err)
			}
			cmd.Env = append(cmd.Env, e.Name+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", task.Name, err, out)
		}
	}
	res := map[string]string{}
	for _, o := range p.Outputs {
		path := outPath(o.From.Task, o.From.Output)
		if p.Tasks[o.From.TaskIndex].Output(o.From.Output).Type.Kind() == KindArtifact {
			res[o.Name] = path
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		res[o.Name] = strings.TrimSpace(string(b))
	}
	return res
}

func TestExamples_HelloRunsByHand(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	p, err := ParseSkiff(readExample(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("../../examples/hello")
	out := runByHand(t, p, dir, map[string]string{"who": "skiff"})
	loud, err := os.ReadFile(out["loud"])
	if err != nil || string(loud) != "HELLO, SKIFF\n" || out["chars"] != "13" {
		t.Fatalf("loud %q (%v), chars %q", loud, err, out["chars"])
	}
}

func TestExamples_IrisRunsByHand(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("short")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	p, err := ParseSkiff(readExample(t, "iris"))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("../../examples/iris")
	out := runByHand(t, p, dir, map[string]string{"epochs": "150"})
	acc, err := strconv.ParseFloat(out["accuracy"], 64)
	if err != nil || acc <= 0.9 {
		t.Fatalf("accuracy %q (%v), want > 0.9", out["accuracy"], err)
	}
	report, err := os.ReadFile(out["report"])
	if err != nil || !strings.Contains(string(report), "PASS") {
		t.Fatalf("report %q, %v", report, err)
	}
}
