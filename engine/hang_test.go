package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
)

// hung is a sim executor named "hung" whose Start, Cancel and Adopt hang
// (ignoring their context, as a client of a daemon that does not answer
// may) until the test ends.
type hung struct {
	*sim.Executor
	release chan struct{}
	adopt   bool // Adopt hangs too
}

func newHung(t testing.TB) *hung {
	h := &hung{Executor: sim.New(sim.Config{}), release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	return h
}

func (h *hung) Name() string { return "hung" }

func (h *hung) Start(context.Context, *executors.Spec, func(executors.Event)) error {
	<-h.release
	return errors.New("released")
}

func (h *hung) Cancel(context.Context, string) error {
	<-h.release
	return nil
}

func (h *hung) Adopt(context.Context, *executors.Spec, func(executors.Event)) (bool, error) {
	<-h.release
	return false, nil
}

const hungYAML = `
name: hung
executor: hung
tasks:
  - name: stuck
    command: [x]
`

// TestEngine_HungExecutorStallsOnlyItsOwnTasks: an executor whose Start
// never returns does not hold up the other runs, and its task fails at
// the deadline with a reason that says so.
func TestEngine_HungExecutorStallsOnlyItsOwnTasks(t *testing.T) {
	t.Parallel()
	const deadline = 300 * time.Millisecond
	h := newFaultHarness(t, func(c *engine.Config) { c.StartTimeout = deadline },
		sim.New(sim.Config{}), newHung(t))
	stuck := h.submit(mustPlan(t, hungYAML))
	waitFor(t, func() bool { tk, _ := h.store.Task(stuck, 0); return tk.State == spec.TaskRunning })
	start := time.Now()
	ok := h.submit(mustPlan(t, chainYAML))
	if r := h.waitFinal(ok, 10*time.Second); r.State != spec.RunSucceeded {
		t.Fatalf("the other run = %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	r := h.waitFinal(stuck, 10*time.Second)
	if r.State != spec.RunFailed {
		t.Fatalf("run on the hung executor = %s, want FAILED", r.State)
	}
	if time.Since(start) < deadline/2 {
		t.Errorf("the hung start failed after %s, before its deadline %s", time.Since(start), deadline)
	}
	tk, _ := h.store.Task(stuck, 0)
	if want := engine.ErrExecutorTimeout.Error(); !strings.Contains(tk.Error, want) || !strings.Contains(tk.Error, "start") {
		t.Errorf("task error %q does not say that the start timed out (%q)", tk.Error, want)
	}
}

// TestEngine_HungStopEndsTheTaskCanceled: a stop the executor never
// confirms ends the attempt CANCELED at the deadline, saying why.
func TestEngine_HungStopEndsTheTaskCanceled(t *testing.T) {
	t.Parallel()
	m := newManual("hung")
	hx := &hungCancel{manual: m, release: make(chan struct{})}
	t.Cleanup(func() { close(hx.release) })
	h := newFaultHarness(t, func(c *engine.Config) { c.StopTimeout = 200 * time.Millisecond }, hx)
	id := h.submit(mustPlan(t, hungYAML))
	waitFor(t, func() bool { return m.isLive(executors.ExecutionID(id, 0, 1)) })
	if err := h.eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := h.waitFinal(id, 10*time.Second); r.State != spec.RunCanceled {
		t.Fatalf("run = %s, want CANCELED", r.State)
	}
	tk, _ := h.store.Task(id, 0)
	if tk.State != spec.TaskCanceled || !strings.Contains(tk.Error, engine.ErrExecutorTimeout.Error()) {
		t.Errorf("task = %s %q, want CANCELED saying the stop timed out", tk.State, tk.Error)
	}
}

// hungCancel is a manual executor whose Cancel never returns.
type hungCancel struct {
	*manual
	release chan struct{}
}

func (h *hungCancel) Cancel(context.Context, string) error {
	<-h.release
	return nil
}

// TestEngine_HungAdoptGivesANewAttempt: resuming a run whose executor
// never answers Adopt does not hold up other runs; the attempt counts as
// lost at the deadline (saying why) and a new one starts.
func TestEngine_HungAdoptGivesANewAttempt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := newManual("hung")
	h1 := newHarnessWith(t, dir, m)
	id := h1.submit(mustPlan(t, hungYAML), nil)
	waitFor(t, func() bool { return m.isLive(executors.ExecutionID(id, 0, 1)) })
	h1.stop()

	hx := newHung(t)
	ad := &adoptHangs{hung: hx, after: sim.New(sim.Config{})}
	st := openStore(t, dir)
	fs := &faultStore{Store: st}
	cfg := engine.DefaultConfig(fs, sim.New(sim.Config{}), ad)
	cfg.AdoptTimeout = 200 * time.Millisecond
	eng, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	h := &faultHarness{t: t, store: fs, eng: eng}
	if _, err := eng.Resume(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	other := h.submit(mustPlan(t, chainYAML))
	if r := h.waitFinal(other, 10*time.Second); r.State != spec.RunSucceeded {
		t.Fatalf("the other run = %s, want SUCCEEDED", r.State)
	}
	if r := h.waitFinal(id, 10*time.Second); r.State != spec.RunSucceeded {
		t.Fatalf("resumed run = %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	tk, _ := st.Task(id, 0)
	if len(tk.Attempts) != 2 || !strings.Contains(tk.Attempts[0].Error, "adopt") ||
		!strings.Contains(tk.Attempts[0].Error, engine.ErrExecutorTimeout.Error()) {
		t.Errorf("attempts %+v, want a lost one saying adopting it timed out, then a new one", tk.Attempts)
	}
}

// adoptHangs hangs in Adopt and starts new attempts as sim does.
type adoptHangs struct {
	*hung
	after *sim.Executor
}

func (a *adoptHangs) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	return a.after.Start(ctx, s, report)
}
