package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/sim"
)

const cachedYAML = `
name: cached
executor: sim
parameters:
  lr: {type: float, default: 0.1}
tasks:
  - name: prep
    command: [prep]
    inputs: {lr: {type: float, param: lr}}
    outputs: {data: Dataset, rows: int}
    cache: {enabled: true, maxStaleness: STALE}
  - name: train
    command: [train]
    inputs: {data: {type: Dataset, from: prep.data}}
    outputs: {acc: float}
    cache: true
`

func cachedPlan(t *testing.T, stale string) *spec.Plan {
	return mustPlan(t, replaceAll(cachedYAML, "STALE", stale))
}

func TestEngine_CacheHitReusesOutputsWithoutRunning(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{})
	first := h.submit(cachedPlan(t, "24h"), nil)
	if r := h.wait(first); r.State != spec.RunSucceeded {
		t.Fatalf("first run %s", r.State)
	}
	second := h.submit(cachedPlan(t, "24h"), nil)
	if r := h.wait(second); r.State != spec.RunSucceeded {
		t.Fatalf("second run %s", r.State)
	}
	a, b := h.tasks(first), h.tasks(second)
	for _, name := range []string{"prep", "train"} {
		if b[name].CachedFrom != a[name].Attempts[0].ExecutionID || len(b[name].Attempts) != 0 {
			t.Errorf("%s: cached from %q with %d attempts; want cached from %s with none",
				name, b[name].CachedFrom, len(b[name].Attempts), a[name].Attempts[0].ExecutionID)
		}
		if a[name].Outputs["acc"].Param != nil && string(a[name].Outputs["acc"].Param) != string(b[name].Outputs["acc"].Param) {
			t.Errorf("%s: outputs differ", name)
		}
	}
	if a["prep"].Outputs["data"].Artifact.Digest != b["prep"].Outputs["data"].Artifact.Digest {
		t.Errorf("cache hit did not reuse the artifact digest")
	}

	// A different parameter value is a different key.
	third, err := h.eng.Submit(context.Background(), cachedPlan(t, "24h"), map[string]jsonRaw{"lr": jsonRaw(`0.2`)}, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h.wait(third)
	if c := h.tasks(third)["prep"]; c.Cached() || len(c.Attempts) != 1 {
		t.Errorf("prep with another lr: cached=%v attempts=%d, want a fresh run", c.Cached(), len(c.Attempts))
	}

	// The run-level switch turns the cache off.
	fourth, err := h.eng.Submit(context.Background(), cachedPlan(t, "24h"), nil, engine.SubmitOptions{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	h.wait(fourth)
	if c := h.tasks(fourth)["prep"]; c.Cached() || len(c.Attempts) != 1 {
		t.Errorf("NoCache run: prep cached=%v attempts=%d", c.Cached(), len(c.Attempts))
	}
}

func TestEngine_CacheRespectsMaxStaleness(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{})
	h.wait(h.submit(cachedPlan(t, "1ns"), nil))
	time.Sleep(time.Millisecond) // let the entry age past 1ns
	second := h.submit(cachedPlan(t, "1ns"), nil)
	h.wait(second)
	ts := h.tasks(second)
	if ts["prep"].Cached() {
		t.Errorf("prep reused an entry older than its maxStaleness")
	}
}

func TestEngine_FailedExecutionsAreNeverCached(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{Tasks: map[string]sim.Behavior{"prep": {Fail: true}}})
	first := h.submit(cachedPlan(t, "24h"), nil)
	if r := h.wait(first); r.State != spec.RunFailed {
		t.Fatalf("first run %s", r.State)
	}
	second := h.submit(cachedPlan(t, "24h"), nil)
	h.wait(second)
	if p := h.tasks(second)["prep"]; p.Cached() || len(p.Attempts) != 1 {
		t.Errorf("prep after a failure: cached=%v attempts=%d, want it run again", p.Cached(), len(p.Attempts))
	}
}

func TestEngine_IdenticalTasksInFlightRunOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{Default: sim.Behavior{Duration: 50 * time.Millisecond}})
	id := h.submit(mustPlan(t, `
name: twins
executor: sim
tasks:
  - name: left
    command: [download, big.csv]
    outputs: {data: Dataset}
    cache: true
  - name: right
    command: [download, big.csv]
    outputs: {data: Dataset}
    cache: true
`), nil)
	if r := h.wait(id); r.State != spec.RunSucceeded {
		t.Fatalf("run %s", r.State)
	}
	ts := h.tasks(id)
	ran := len(ts["left"].Attempts) + len(ts["right"].Attempts)
	if ran != 1 {
		t.Fatalf("identical tasks executed %d times, want 1", ran)
	}
	cached := ts["left"]
	if !cached.Cached() {
		cached = ts["right"]
	}
	if !cached.Cached() || ts["left"].Outputs["data"].Artifact.Digest != ts["right"].Outputs["data"].Artifact.Digest {
		t.Errorf("the waiting twin did not reuse the other's outputs: %+v", ts)
	}
}

func TestCacheKey_CoversWhatTheStepRuns(t *testing.T) {
	t.Parallel()
	base := spec.Task{Name: "a", Image: "img", Command: []string{"run"}, Outputs: []spec.Output{{Name: "o", Type: spec.TypeInt}}}
	in := map[string]spec.Value{"x": {Param: jsonRaw(`1`)}}
	k := engine.CacheKey("default", &base, in)
	variants := map[string]func(t *spec.Task, in map[string]spec.Value){
		"image":       func(t *spec.Task, _ map[string]spec.Value) { t.Image = "other" },
		"command":     func(t *spec.Task, _ map[string]spec.Value) { t.Command = []string{"run2"} },
		"args":        func(t *spec.Task, _ map[string]spec.Value) { t.Args = []string{"-v"} },
		"env":         func(t *spec.Task, _ map[string]spec.Value) { t.Env = []spec.EnvVar{{Name: "A", Value: "1"}} },
		"input value": func(_ *spec.Task, in map[string]spec.Value) { in["x"] = spec.Value{Param: jsonRaw(`2`)} },
		"artifact": func(_ *spec.Task, in map[string]spec.Value) {
			in["x"] = spec.Value{Artifact: &spec.ArtifactRef{Digest: "sha256:00"}}
		},
		"output type": func(t *spec.Task, _ map[string]spec.Value) {
			t.Outputs = []spec.Output{{Name: "o", Type: spec.TypeFloat}}
		},
		"output name": func(t *spec.Task, _ map[string]spec.Value) {
			t.Outputs = []spec.Output{{Name: "p", Type: spec.TypeInt}}
		},
		"another input": func(_ *spec.Task, in map[string]spec.Value) { in["y"] = spec.Value{Param: jsonRaw(`1`)} },
		"artifact list": func(_ *spec.Task, in map[string]spec.Value) {
			in["x"] = spec.Value{Artifacts: []spec.ArtifactRef{{Digest: "sha256:00"}}, List: true}
		},
		"kfp container": func(t *spec.Task, _ map[string]spec.Value) { t.KFP = jsonRaw(`{"image":"x"}`) },
		"kubernetes":    func(t *spec.Task, _ map[string]spec.Value) { t.Kubernetes = jsonRaw(`{"pvcMount":[]}`) },
	}
	for name, change := range variants {
		tk := base
		vals := map[string]spec.Value{"x": in["x"]}
		change(&tk, vals)
		if engine.CacheKey("default", &tk, vals) == k {
			t.Errorf("changing the %s keeps the cache key", name)
		}
	}
	list := func(ds ...string) map[string]spec.Value {
		v := spec.Value{List: true}
		for _, d := range ds {
			v.Artifacts = append(v.Artifacts, spec.ArtifactRef{Digest: d})
		}
		return map[string]spec.Value{"x": v}
	}
	if engine.CacheKey("default", &base, list("sha256:00", "sha256:01")) == engine.CacheKey("default", &base, list("sha256:01", "sha256:00")) {
		t.Error("the order of an artifact list does not change the key")
	}
	renamed := base
	renamed.Name = "b"
	if engine.CacheKey("default", &renamed, in) != k {
		t.Error("the task's name changed the key; identical steps must share results")
	}
	custom := base
	custom.Cache = &spec.Cache{Enabled: true, Key: "mine"}
	other := custom
	other.Command = []string{"different"}
	if engine.CacheKey("default", &custom, in) != engine.CacheKey("default", &other, nil) {
		t.Error("a custom key does not replace the computed one")
	}
}

// TestCacheKey_ScopedByNamespace: the same step with the same inputs, or the
// same custom key, gives another key in another namespace, so one tenant
// never reuses (or learns the run id of) another's results.
func TestCacheKey_ScopedByNamespace(t *testing.T) {
	t.Parallel()
	tk := spec.Task{Name: "a", Image: "img", Command: []string{"run"}}
	in := map[string]spec.Value{"x": {Param: jsonRaw(`1`)}}
	if engine.CacheKey("a", &tk, in) == engine.CacheKey("b", &tk, in) {
		t.Error("two namespaces share a computed cache key")
	}
	custom := tk
	custom.Cache = &spec.Cache{Enabled: true, Key: "model-v1"}
	if engine.CacheKey("a", &custom, in) == engine.CacheKey("b", &custom, in) {
		t.Error("a custom key is not combined with the namespace")
	}
	if engine.CacheKey("a", &custom, in) != engine.CacheKey("a", &custom, nil) {
		t.Error("a custom key no longer replaces the computed description within a namespace")
	}
}

// TestCacheKey_ArtifactMetadata: a step can read its input artifacts'
// metadata, so metadata changes the key; an artifact without metadata
// keeps the key it had before metadata was carried.
func TestCacheKey_ArtifactMetadata(t *testing.T) {
	t.Parallel()
	tk := spec.Task{Name: "a", Command: []string{"run"}}
	one := func(meta string) map[string]spec.Value {
		ref := &spec.ArtifactRef{Digest: "sha256:00"}
		if meta != "" {
			ref.Metadata = jsonRaw(meta)
		}
		return map[string]spec.Value{"x": {Artifact: ref}}
	}
	list := func(metas ...string) map[string]spec.Value {
		v := spec.Value{List: true}
		for _, m := range metas {
			ref := spec.ArtifactRef{Digest: "sha256:00"}
			if m != "" {
				ref.Metadata = jsonRaw(m)
			}
			v.Artifacts = append(v.Artifacts, ref)
		}
		return map[string]spec.Value{"x": v}
	}
	plain := engine.CacheKey("default", &tk, one(""))
	// The keys these inputs had before metadata was part of the key.
	if plain != keyWithoutMetadata || engine.CacheKey("default", &tk, list("", "")) != listKeyWithoutMetadata {
		t.Errorf("keys of artifacts without metadata changed: %s, %s", plain, engine.CacheKey("default", &tk, list("", "")))
	}
	if engine.CacheKey("default", &tk, one(`{"accuracy":0.9}`)) == plain {
		t.Error("an artifact's metadata does not change the key")
	}
	if engine.CacheKey("default", &tk, one(`{"accuracy":0.9}`)) == engine.CacheKey("default", &tk, one(`{"accuracy":0.8}`)) {
		t.Error("different metadata gives the same key")
	}
	if engine.CacheKey("default", &tk, list("", "")) == engine.CacheKey("default", &tk, list("", `{"k":1}`)) {
		t.Error("the metadata of a list's artifact does not change the key")
	}
	if engine.CacheKey("default", &tk, list(`{"k":1}`, "")) == engine.CacheKey("default", &tk, list("", `{"k":1}`)) {
		t.Error("the metadata of a list is not keyed by position")
	}
}

// Keys that TestCacheKey_ArtifactMetadata's inputs without metadata have
// in the default namespace (key version 2): metadata-free artifacts keep
// the key they had before metadata was carried, so entries recorded since
// version 2 still match.
const (
	keyWithoutMetadata     = "sha256:42c2b83af9bb2d414868df4bc698d5f29451f219945bfcfad152eda506805f2a"
	listKeyWithoutMetadata = "sha256:a3156ab06df37fcd937121b15decbe04f49cc9ff50cc77079add73852857a40b"
)
