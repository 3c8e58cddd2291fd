package api_test

import (
	"testing"

	"github.com/skiffml/skiff/api"
)

// cachedPipeline has one cached step; with a custom key when key != "".
func cachedPipeline(key string) string {
	c := "true"
	if key != "" {
		c = "{enabled: true, key: " + key + "}"
	}
	return `name: cached
executor: sim
tasks:
  - name: train
    command: [train]
    cache: ` + c + "\n"
}

// TestCache_ScopedByNamespace: through a real server, an editor of
// namespace b never gets namespace a's cached outputs (nor a's run id as
// cached_from) for an identical step, nor by naming a's custom cache key;
// within a namespace the cache still works.
func TestCache_ScopedByNamespace(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	a := h.token("team-a", api.RoleEditor)
	b := h.token("team-b", api.RoleEditor)
	cachedFrom := func(token, pipeline string) (string, bool) {
		t.Helper()
		id := h.must(200, "POST", "/apis/v2beta1/runs", token, runBody(pipeline, nil)).m(t)["run_id"].(string)
		if st := h.waitRun(id, token)["state"]; st != "SUCCEEDED" {
			t.Fatalf("run %s: %v", id, st)
		}
		tasks, err := h.st.Tasks(id)
		if err != nil || len(tasks) != 1 {
			t.Fatalf("tasks of %s: %v %v", id, tasks, err)
		}
		return tasks[0].CachedFrom, tasks[0].Cached()
	}
	for _, key := range []string{"", "private-model"} {
		if _, hit := cachedFrom(a, cachedPipeline(key)); hit {
			t.Fatalf("key %q: the first run in team-a was a cache hit", key)
		}
		if _, hit := cachedFrom(a, cachedPipeline(key)); !hit {
			t.Fatalf("key %q: the second identical run in team-a was not a cache hit", key)
		}
		if from, hit := cachedFrom(b, cachedPipeline(key)); hit {
			t.Errorf("key %q: team-b reused team-a's cached outputs (cached from %s)", key, from)
		}
	}
}
