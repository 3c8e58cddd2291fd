package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// harness is one embedded node over a temp data dir, with the sim executor.
type harness struct {
	t     testing.TB
	dir   string
	store *store.Store
	eng   *engine.Engine
	stop  func()
}

func newHarness(t testing.TB, dir string, cfg sim.Config) *harness {
	t.Helper()
	return newHarnessWith(t, dir, sim.New(cfg))
}

// newHarnessWith is newHarness with the given executors.
func newHarnessWith(t testing.TB, dir string, execs ...executors.Executor) *harness {
	t.Helper()
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	ecfg := engine.DefaultConfig(st, execs...)
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	h := &harness{t: t, dir: dir, store: st, eng: eng}
	stopped := false
	h.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("engine loop: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) submit(p *spec.Plan, params map[string]json.RawMessage) string {
	h.t.Helper()
	if params == nil {
		params = map[string]json.RawMessage{}
	}
	id, err := h.eng.Submit(context.Background(), p, params, engine.SubmitOptions{})
	if err != nil {
		h.t.Fatalf("submit: %v", err)
	}
	return id
}

func (h *harness) wait(id string) store.Run {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := h.eng.Wait(ctx, id)
	if err != nil {
		h.t.Fatalf("wait %s: %v", id, err)
	}
	return r
}

func (h *harness) tasks(id string) map[string]store.Task {
	h.t.Helper()
	ts, err := h.store.Tasks(id)
	if err != nil {
		h.t.Fatal(err)
	}
	m := map[string]store.Task{}
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func mustPlan(t testing.TB, yaml string) *spec.Plan {
	t.Helper()
	p, err := spec.ParseSkiff([]byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

const chainYAML = `
name: chain
executor: sim
parameters:
  n: {type: int, default: 3}
tasks:
  - name: a
    command: [gen]
    inputs: {n: {type: int, param: n}}
    outputs: {count: int, data: Dataset}
  - name: b
    command: [use]
    inputs:
      count: {type: int, from: a.count}
      data: {type: Dataset, from: a.data}
    outputs: {score: float}
  - name: c
    command: [report]
    after: [b]
outputs:
  score: b.score
`

func TestEngine_ChainSucceeds(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{Tasks: map[string]sim.Behavior{
		"a": {Outputs: map[string]json.RawMessage{"count": json.RawMessage(`7`)}},
		"b": {Outputs: map[string]json.RawMessage{"score": json.RawMessage(`0.93`)}},
	}})
	id := h.submit(mustPlan(t, chainYAML), map[string]json.RawMessage{"n": json.RawMessage(`3`)})
	r := h.wait(id)
	if r.State != spec.RunSucceeded {
		t.Fatalf("run state = %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	if got := string(r.Outputs["score"].Param); got != "0.93" {
		t.Errorf("pipeline output score = %s, want 0.93", got)
	}
	for name, tk := range h.tasks(id) {
		if tk.State != spec.TaskSucceeded || len(tk.Attempts) != 1 {
			t.Errorf("task %s: %s with %d attempts, want SUCCEEDED with 1", name, tk.State, len(tk.Attempts))
		}
	}
	if got := h.tasks(id)["a"].Outputs["data"]; got.Artifact == nil {
		t.Errorf("task a: artifact output data missing: %+v", got)
	}
}

func TestEngine_FailureSkipsDownstream(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{Tasks: map[string]sim.Behavior{"b": {Fail: true, ExitCode: 3}}})
	id := h.submit(mustPlan(t, chainYAML), nil)
	r := h.wait(id)
	if r.State != spec.RunFailed {
		t.Fatalf("run state = %s, want FAILED", r.State)
	}
	if !strings.Contains(r.Error, "b") {
		t.Errorf("run error %q does not name task b", r.Error)
	}
	ts := h.tasks(id)
	want := map[string]spec.TaskState{"a": spec.TaskSucceeded, "b": spec.TaskFailed, "c": spec.TaskSkipped}
	for name, st := range want {
		if ts[name].State != st {
			t.Errorf("task %s = %s, want %s", name, ts[name].State, st)
		}
	}
	if len(ts["c"].Attempts) != 0 {
		t.Errorf("skipped task c has %d attempts, want 0", len(ts["c"].Attempts))
	}
}

func TestEngine_CancelStopsRunningTasks(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{Default: sim.Behavior{Duration: time.Hour}})
	id := h.submit(mustPlan(t, chainYAML), nil)
	waitFor(t, func() bool { return h.tasks(id)["a"].State == spec.TaskRunning })
	if err := h.eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	r := h.wait(id)
	if r.State != spec.RunCanceled {
		t.Fatalf("run state = %s, want CANCELED", r.State)
	}
	ts := h.tasks(id)
	for _, name := range []string{"a", "b", "c"} {
		if ts[name].State != spec.TaskCanceled {
			t.Errorf("task %s = %s, want CANCELED", name, ts[name].State)
		}
	}
	if len(ts["b"].Attempts) != 0 {
		t.Errorf("task b started after cancel: %d attempts", len(ts["b"].Attempts))
	}
	if err := h.eng.Cancel(context.Background(), id); !errors.Is(err, engine.ErrRunFinished) {
		t.Errorf("second cancel: err = %v, want ErrRunFinished", err)
	}
}

func TestEngine_ResumeAfterStopGivesRunningTaskANewAttempt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"b": {Duration: time.Hour}}})
	id := h.submit(mustPlan(t, chainYAML), nil)
	waitFor(t, func() bool { return h.tasks(id)["b"].State == spec.TaskRunning })
	h.stop() // the engine goes away with b running, as after kill -9

	h2 := newHarness(t, dir, sim.Config{})
	resumed, err := h2.eng.Resume(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(resumed) != 1 || resumed[0] != id {
		t.Fatalf("resumed %v, want [%s]", resumed, id)
	}
	r := h2.wait(id)
	if r.State != spec.RunSucceeded {
		t.Fatalf("run state = %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	ts := h2.tasks(id)
	if n := len(ts["a"].Attempts); n != 1 {
		t.Errorf("finished task a ran %d times, want 1", n)
	}
	b := ts["b"]
	if len(b.Attempts) != 2 {
		t.Fatalf("task b has %d attempts, want 2 (the lost one and the new one)", len(b.Attempts))
	}
	if b.Attempts[0].State != spec.TaskFailed || !strings.Contains(b.Attempts[0].Error, "lost") {
		t.Errorf("lost attempt recorded as %s %q, want FAILED with a 'lost' reason", b.Attempts[0].State, b.Attempts[0].Error)
	}
	if b.Attempts[1].State != spec.TaskSucceeded {
		t.Errorf("second attempt = %s, want SUCCEEDED", b.Attempts[1].State)
	}
}

func TestEngine_BatchesTransitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{})
	var b strings.Builder
	b.WriteString("name: fan\nexecutor: sim\ntasks:\n  - name: root\n    command: [x]\n")
	const width = 1000
	for i := 0; i < width; i++ {
		b.WriteString("  - name: t" + strconv.Itoa(i) + "\n    command: [x]\n    after: [root]\n")
	}
	before := h.store.AppliedIndex()
	id := h.submit(mustPlan(t, b.String()), nil)
	if r := h.wait(id); r.State != spec.RunSucceeded {
		t.Fatalf("run state = %s", r.State)
	}
	entries := h.store.AppliedIndex() - before
	// 2*(width+1) task transitions plus run states: unbatched that would be
	// over 2000 entries. A quiet machine takes about 10; with the race
	// detector under make test's load, 68 and 203 were seen (the batches
	// are what commits while the last one syncs). The bound asks for at
	// least four transitions an entry on average.
	if entries > 2*(width+1)/4 {
		t.Errorf("fan-out of %d took %d store entries; transitions are not batched", width, entries)
	}
}

func TestEngine_SubmitRejectsBadParamsAndStoresNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{})
	_, err := h.eng.Submit(context.Background(), mustPlan(t, chainYAML), map[string]json.RawMessage{"n": json.RawMessage(`"x"`)}, engine.SubmitOptions{})
	if err == nil || !strings.Contains(err.Error(), "n") {
		t.Fatalf("submit with a string for int n: err = %v, want an error naming n", err)
	}
	runs, _ := h.store.ListRuns()
	if len(runs) != 0 {
		t.Errorf("%d runs stored after a rejected submit", len(runs))
	}
}

func TestEngine_SubmitIsIdempotentByRequestID(t *testing.T) {
	t.Parallel()
	h := newHarness(t, t.TempDir(), sim.Config{})
	p := mustPlan(t, chainYAML)
	params := map[string]json.RawMessage{"n": json.RawMessage(`1`)}
	a, err := h.eng.Submit(context.Background(), p, params, engine.SubmitOptions{RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.eng.Submit(context.Background(), p, params, engine.SubmitOptions{RequestID: "req-1"})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("same request id gave runs %s and %s", a, b)
	}
	h.wait(a)
	runs, _ := h.store.ListRuns()
	if len(runs) != 1 {
		t.Errorf("%d runs stored, want 1", len(runs))
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// adopter is a sim executor that can adopt: it reports every adopted
// execution as succeeded at once.
type adopter struct {
	*sim.Executor
	adopted []string
}

func (a *adopter) Adopt(_ context.Context, s *executors.Spec, report func(executors.Event)) (bool, error) {
	a.adopted = append(a.adopted, s.ID)
	outs := map[string]spec.Value{}
	for _, o := range s.Outputs {
		outs[o.Name] = spec.Value{Param: json.RawMessage(`1`)}
	}
	report(executors.Event{ID: s.ID, Kind: executors.EventExited, State: spec.TaskSucceeded, Outputs: outs})
	return true, nil
}

func TestEngine_ResumeAdoptsWhenTheExecutorCan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"b": {Duration: time.Hour}}})
	id := h.submit(mustPlan(t, chainYAML), nil)
	waitFor(t, func() bool { return h.tasks(id)["b"].State == spec.TaskRunning })
	h.stop()

	ad := &adopter{Executor: sim.New(sim.Config{})}
	st := openStore(t, dir)
	eng, err := engine.New(engine.DefaultConfig(st, ad))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() { cancel(); <-done; st.Close() }()
	if _, err := eng.Resume(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	r, err := eng.Wait(wctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != spec.RunSucceeded {
		t.Fatalf("run = %s (%s)", r.State, r.Error)
	}
	ts, _ := st.Tasks(id)
	if n := len(ts[1].Attempts); n != 1 {
		t.Errorf("adopted task b has %d attempts, want 1 (adopted, not restarted)", n)
	}
	if len(ad.adopted) != 1 || ad.adopted[0] != executors.ExecutionID(id, 1, 1) {
		t.Errorf("adopted %v, want the first attempt of b", ad.adopted)
	}
}

func TestEngine_ResumeFinishesACancellationInterruptedByACrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	h := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"b": {Duration: time.Hour}}})
	id := h.submit(mustPlan(t, chainYAML), nil)
	waitFor(t, func() bool { return h.tasks(id)["b"].State == spec.TaskRunning })
	h.stop()
	// The cancel request was committed, then the engine died.
	st := openStore(t, dir)
	if _, err := st.Apply(context.Background(), store.RequestCancel{RunID: id, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	h2 := newHarness(t, dir, sim.Config{})
	if _, err := h2.eng.Resume(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := h2.wait(id)
	if r.State != spec.RunCanceled {
		tks, _ := h2.store.Tasks(id)
		t.Fatalf("run = %s, want CANCELED; tasks %+v", r.State, tks)
	}
	ts := h2.tasks(id)
	if ts["b"].State != spec.TaskCanceled || len(ts["b"].Attempts) != 1 {
		t.Errorf("task b = %s with %d attempts, want CANCELED with 1 (no new attempt after cancel)", ts["b"].State, len(ts["b"].Attempts))
	}
	if ts["c"].State != spec.TaskCanceled {
		t.Errorf("task c = %s, want CANCELED", ts["c"].State)
	}
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

type jsonRaw = json.RawMessage

func replaceAll(s, old, new string) string { return strings.ReplaceAll(s, old, new) }

// TestEngine_CancelRightAfterResume: a cancel committed while the resumed
// run's new attempt is being decided must still end the run (the refused
// attempt is settled from the store).
func TestEngine_CancelRightAfterResume(t *testing.T) {
	t.Parallel()
	for i := 0; i < 3; i++ {
		dir := t.TempDir()
		h := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"b": {Duration: time.Hour}}})
		id := h.submit(mustPlan(t, chainYAML), nil)
		waitFor(t, func() bool { return h.tasks(id)["b"].State == spec.TaskRunning })
		h.stop()

		h2 := newHarness(t, dir, sim.Config{Tasks: map[string]sim.Behavior{"b": {Duration: time.Hour}}})
		if _, err := h2.eng.Resume(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if err := h2.eng.Cancel(context.Background(), id); err != nil && !errors.Is(err, engine.ErrRunFinished) {
			t.Fatal(err)
		}
		if r := h2.wait(id); r.State != spec.RunCanceled {
			t.Fatalf("run = %s, want CANCELED", r.State)
		}
		h2.stop()
	}
}

// TestEngine_RunErrorNamesFailedTasksReadably: a run's error lists the
// failed tasks as words for the run page, not as a Go slice.
func TestEngine_RunErrorNamesFailedTasksReadably(t *testing.T) {
	t.Parallel()
	var yaml strings.Builder
	yaml.WriteString("name: many\ntasks:\n")
	fail := map[string]sim.Behavior{}
	for i := range 7 {
		name := fmt.Sprintf("t%d", i)
		fmt.Fprintf(&yaml, "  - name: %s\n    image: busybox\n    command: [\"true\"]\n", name)
		fail[name] = sim.Behavior{Fail: true, ExitCode: 1}
	}
	for n, want := range map[int]string{2: "2 tasks failed: t0, t1", 7: "7 tasks failed: t0, t1, t2, t3, t4 and 2 more"} {
		only := map[string]sim.Behavior{}
		for i := range n {
			only[fmt.Sprintf("t%d", i)] = fail[fmt.Sprintf("t%d", i)]
		}
		h := newHarness(t, t.TempDir(), sim.Config{Tasks: only})
		r := h.wait(h.submit(mustPlan(t, yaml.String()), nil))
		if r.State != spec.RunFailed || r.Error != want {
			t.Errorf("%d failures: run %s with error %q, want %q", n, r.State, r.Error, want)
		}
	}
}
