package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLI_IrisSweepPicksTheBestModel runs examples/iris/sweep.yaml with the
// local executor: a ParallelFor over four configurations (two at a time),
// the fan-in of their accuracies and models, the pick of the best, and the
// if/else on its accuracy.
func TestCLI_IrisSweepPicksTheBestModel(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("short")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	data := filepath.Join(t.TempDir(), "data")
	sweep, _ := filepath.Abs("../../examples/iris/sweep.yaml")
	r := skiff(t, data, "run", sweep, "-o", "json", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	s := parseSummary(t, r)
	states := map[string]string{}
	for _, tk := range s.Tasks {
		states[tk.Name] = tk.State
	}
	for _, name := range []string{"sweep", "sweep[0].train", "sweep[3].evaluate", "pick", "gate.then.publish"} {
		if states[name] != "SUCCEEDED" {
			t.Errorf("%s is %q, want SUCCEEDED (tasks %v)", name, states[name], states)
		}
	}
	if states["gate.else"] != "SKIPPED" {
		t.Errorf("gate.else is %q, want SKIPPED", states["gate.else"])
	}
	// The configurations' accuracies are 0.78, 0.89, 0.96 and 1.0 (the
	// split and training are deterministic): the last one wins.
	var best struct {
		Epochs int     `json:"epochs"`
		LR     float64 `json:"learning_rate"`
	}
	if err := json.Unmarshal(s.Outputs["best_config"], &best); err != nil || best.Epochs != 300 || best.LR != 1 {
		t.Errorf("best_config = %s (%v), want epochs 300, learning_rate 1", s.Outputs["best_config"], err)
	}
	var acc float64
	if err := json.Unmarshal(s.Outputs["best_accuracy"], &acc); err != nil || acc != 1 {
		t.Errorf("best_accuracy = %s", s.Outputs["best_accuracy"])
	}

	// Above any accuracy: the else branch runs instead; load is cached.
	r = skiff(t, data, "run", sweep, "-p", "min_accuracy=1.01", "-o", "json", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	s = parseSummary(t, r)
	states = map[string]string{}
	cached := map[string]bool{}
	for _, tk := range s.Tasks {
		states[tk.Name], cached[tk.Name] = tk.State, tk.Cached
	}
	if states["gate.then"] != "SKIPPED" || states["gate.else.too-weak"] != "SUCCEEDED" {
		t.Errorf("gate.then %q, gate.else.too-weak %q: want SKIPPED, SUCCEEDED", states["gate.then"], states["gate.else.too-weak"])
	}
	if _, ok := states["gate.then.publish"]; ok {
		t.Errorf("the skipped branch's task exists")
	}
	if !cached["load"] {
		t.Errorf("load was not cached on the second run")
	}
}

// TestCLI_LoopsExample runs examples/loops: a loop over an upstream list of
// objects, a nested loop, fan-in, a sub-pipeline file in a loop and an
// exit handler.
func TestCLI_LoopsExample(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	p, _ := filepath.Abs("../../examples/loops/pipeline.yaml")
	r := skiff(t, data, "run", p, "-p", `words=["a", "b", "c"]`, "-o", "json", "--progress", "none")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	s := parseSummary(t, r)
	want := map[string]string{
		"total":     "120",
		"tags":      `[["shard 1 red","shard 1 green"],["shard 2 red","shard 2 green"],["shard 3 red","shard 3 green"]]`,
		"greetings": `["A!","B!","C!"]`,
	}
	for k, v := range want {
		var got any
		if err := json.Unmarshal(s.Outputs[k], &got); err != nil {
			t.Fatalf("output %s: %v", k, err)
		}
		b, _ := json.Marshal(got)
		if string(b) != v {
			t.Errorf("output %s = %s, want %s", k, b, v)
		}
	}
	if n := len(s.Tasks); n != 1+1+3*(1+1+2)+1+1+3*2+1 {
		t.Errorf("%d tasks", n)
	}
	logs := skiff(t, data, "logs", s.RunID[:8], "finally")
	if !strings.Contains(logs.stdout, `"state":"SUCCEEDED"`) {
		t.Errorf("the exit handler did not get its upstream status: %q", logs.stdout)
	}
}
