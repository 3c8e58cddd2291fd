package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func TestCache_SuccessWithKeyIsRecordedAndHitReusesIt(t *testing.T) {
	t.Parallel()
	st := openTestStore(t, t.TempDir())
	ctx := context.Background()
	apply := func(cmds ...Command) ApplyResult {
		t.Helper()
		res, err := st.Apply(ctx, cmds...)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	apply(newRun("r1", 2), newRun("r2", 1))
	outs := map[string]spec.Value{"acc": {Param: json.RawMessage(`0.9`)}}

	// A failed attempt with a key records nothing.
	start := tr(1, 1, pend, runn)
	start.CacheKey, start.ExecutionID = "k-fail", "r1-1-1"
	fail := tr(1, 1, runn, fail)
	fail.CacheKey = "k-fail"
	apply(TransitionTasks{RunID: "r1", Items: []Transition{start, fail}})
	if _, err := st.CacheLookup("k-fail"); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed execution cached: err = %v", err)
	}

	start = tr(0, 1, pend, runn)
	start.CacheKey, start.ExecutionID = "k1", "r1-0-1"
	done := tr(0, 1, runn, succ)
	done.CacheKey, done.Outputs = "k1", outs
	apply(TransitionTasks{RunID: "r1", Items: []Transition{start, done}})
	e, err := st.CacheLookup("k1")
	if err != nil {
		t.Fatal(err)
	}
	if e.ExecutionID != "r1-0-1" || e.RunID != "r1" || string(e.Outputs["acc"].Param) != "0.9" {
		t.Fatalf("entry = %+v", e)
	}

	hit := tr(0, 0, pend, succ)
	hit.CachedFrom, hit.CacheKey, hit.Outputs = e.ExecutionID, "k1", e.Outputs
	if res := apply(TransitionTasks{RunID: "r2", Items: []Transition{hit}}); len(res.Rejected) > 0 {
		t.Fatalf("cache hit rejected: %+v", res.Rejected)
	}
	tk, _ := st.Task("r2", 0)
	if !tk.Cached() || tk.State != spec.TaskSucceeded || len(tk.Attempts) != 0 || string(tk.Outputs["acc"].Param) != "0.9" {
		t.Errorf("cached task = %+v", tk)
	}
}

func TestCache_NoHitAfterCancel(t *testing.T) {
	t.Parallel()
	f := newTestFSM(t)
	f.mustAccept(t, newRun("r", 1), RequestCancel{RunID: "r", Time: t0})
	hit := tr(0, 0, pend, succ)
	hit.CachedFrom = "x-0-1"
	if r := f.apply(t, TransitionTasks{RunID: "r", Items: []Transition{hit}}); len(r.rejected) != 1 {
		t.Errorf("cache hit on a cancelled run accepted")
	}
}
