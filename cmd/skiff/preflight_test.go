package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec/kfp"
)

// TestPreflight_NamesTheField: what would fail a step at its start is
// found from the plan, with the field path, nested tasks included.
func TestPreflight_NamesTheField(t *testing.T) {
	t.Parallel()
	node := nodeCaps{milliCPU: 2000, gpus: 1, gpuSource: "SKIFF_GPUS"}
	cases := []struct {
		name, yaml, executor string
		want                 []string // error paths, in order
	}{
		{"fits", "name: p\ntasks:\n  - name: a\n    command: [x]\n    resources: {gpu: 1, cpu: 2}\n", "", nil},
		{"too many gpus", "name: p\ntasks:\n  - name: a\n    command: [x]\n  - name: b\n    command: [x]\n    resources: {gpu: 2}\n", "", []string{"tasks[1].resources.gpu"}},
		{"too much cpu", "name: p\ntasks:\n  - name: a\n    command: [x]\n    resources: {cpu: 3}\n", "local", []string{"tasks[0].resources.cpu"}},
		{"sim ignores resources", "name: p\nexecutor: sim\ntasks:\n  - name: a\n    command: [x]\n    resources: {gpu: 8}\n", "", nil},
		{"docker without image", "name: p\ntasks:\n  - name: a\n    executor: docker\n    command: [x]\n", "", []string{"tasks[0].image"}},
		{"docker by default", "name: p\ntasks:\n  - name: a\n    command: [x]\n  - name: b\n    image: busybox\n    command: [x]\n", "docker", []string{"tasks[0].image"}},
		{"nested", "name: p\ntasks:\n  - name: loop\n    parallelFor: {items: [1, 2]}\n    tasks:\n      - name: x\n        command: [x]\n        resources: {gpu: 4}\n", "", []string{"tasks[0].tasks[0].resources.gpu"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plan, _, err := kfp.Load([]byte(c.yaml), "p.yaml", kfp.Options{})
			if err != nil {
				t.Fatal(err)
			}
			errs := preflight(plan, c.executor, node)
			var got []string
			for _, e := range errs {
				got = append(got, e.Path)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("preflight paths %v, want %v (%v)", got, c.want, errs)
			}
		})
	}
}

// TestCLI_KnownBeforeRunning: validate and run refuse, before any run is
// created, a step asking more GPUs than the node has, a docker step
// without an image and a when reading an undeclared input, each with its
// field path and the whole message.
func TestCLI_KnownBeforeRunning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	env := append(skiffEnv(t), "SKIFF_GPUS=0,1")
	cases := map[string]struct{ yaml, want string }{
		"gpu": {"name: p\ntasks:\n  - name: train\n    command: [/bin/true]\n    resources: {gpu: 4}\n",
			`tasks[0].resources.gpu: task train asks 4 GPU(s), more than this node's 2 (SKIFF_GPUS="0,1"); lower it, or run it where there are more (--server)`},
		"docker": {"name: p\ntasks:\n  - name: a\n    executor: docker\n    command: [/bin/true]\n",
			"tasks[0].image: task a runs with the docker executor but names no image; give it an image: (or run it with executor: local)"},
		"when": {"name: p\nparameters:\n  score: {type: float, default: 0.5}\ntasks:\n  - name: a\n    command: [/bin/true]\n    inputs: {score: {type: float, param: score}}\n    when: inputs.scor > 0.3\n",
			"tasks[0].when: reads inputs.scor, which the task does not declare (its inputs are score)"},
	}
	for name, c := range cases {
		p := writeFile(t, dir, name+".yaml", c.yaml)
		for _, cmd := range [][]string{{"validate", p}, {"run", p, "--progress", "plain"}} {
			r := skiffWithEnv(t, env, data, cmd...)
			if r.code != 2 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%s %s: exit %d, stderr:\n%s\nwant exit 2 and %q", cmd[0], name, r.code, r.stderr, c.want)
			}
		}
	}
	if r := skiffWithEnv(t, env, data, "runs", "list", "-o", "name"); r.stdout != "" {
		t.Errorf("runs were created:\n%s", r.stdout)
	}
}
