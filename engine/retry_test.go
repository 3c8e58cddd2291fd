package engine_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// flaky fails every attempt of the task named flaky below succeedAt (0 =
// never succeeds).
type flaky struct {
	*sim.Executor
	succeedAt int
}

func (f *flaky) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if s.Task == "flaky" && (f.succeedAt == 0 || s.Attempt < f.succeedAt) {
		report(executors.Event{ID: s.ID, Kind: executors.EventExited, State: spec.TaskFailed, ExitCode: 1, Reason: "exit code 1"})
		return nil
	}
	return f.Executor.Start(ctx, s, report)
}

func (f *flaky) Name() string { return "sim" }

func retryHarness(t *testing.T, succeedAt int) (*store.Store, *engine.Engine) {
	t.Helper()
	scfg := store.DefaultConfig(filepath.Join(t.TempDir(), "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.DefaultConfig(st, &flaky{Executor: sim.New(sim.Config{}), succeedAt: succeedAt}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; st.Close() })
	return st, eng
}

func retryPlan(t *testing.T, retry string) *spec.Plan {
	return mustPlan(t, `
name: retry
executor: sim
tasks:
  - name: flaky
    command: [x]
    retry: `+retry+`
  - name: after
    command: [x]
    after: [flaky]
`)
}

func waitRun(t *testing.T, eng *engine.Engine, id string) store.Run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := eng.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestEngine_RetryWithBackoffUntilSuccess(t *testing.T) {
	t.Parallel()
	st, eng := retryHarness(t, 3)
	id, err := eng.Submit(context.Background(), retryPlan(t, "{limit: 3, backoff: 20ms, factor: 2}"), nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, eng, id); r.State != spec.RunSucceeded {
		t.Fatalf("run = %s (%s)", r.State, r.Error)
	}
	tk, _ := st.Task(id, 0)
	if len(tk.Attempts) != 3 {
		t.Fatalf("flaky has %d attempts, want 3", len(tk.Attempts))
	}
	want := []spec.TaskState{spec.TaskFailed, spec.TaskFailed, spec.TaskSucceeded}
	for i, a := range tk.Attempts {
		if a.State != want[i] {
			t.Errorf("attempt %d = %s, want %s", i+1, a.State, want[i])
		}
	}
	// Backoff: 20ms before attempt 2, 40ms before attempt 3.
	if gap := tk.Attempts[1].StartedAt.Sub(tk.Attempts[0].FinishedAt); gap < 20*time.Millisecond {
		t.Errorf("attempt 2 started %v after attempt 1 failed, want >= 20ms", gap)
	}
	if gap := tk.Attempts[2].StartedAt.Sub(tk.Attempts[1].FinishedAt); gap < 40*time.Millisecond {
		t.Errorf("attempt 3 started %v after attempt 2 failed, want >= 40ms", gap)
	}
}

func TestEngine_RetriesExhaustedFailTheTask(t *testing.T) {
	t.Parallel()
	st, eng := retryHarness(t, 0)
	id, err := eng.Submit(context.Background(), retryPlan(t, "{limit: 1}"), nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, eng, id); r.State != spec.RunFailed {
		t.Fatalf("run = %s, want FAILED", r.State)
	}
	tk, _ := st.Task(id, 0)
	if tk.State != spec.TaskFailed || len(tk.Attempts) != 2 {
		t.Errorf("flaky = %s with %d attempts, want FAILED with 2 (limit 1 retry)", tk.State, len(tk.Attempts))
	}
	if after, _ := st.Task(id, 1); after.State != spec.TaskSkipped {
		t.Errorf("downstream = %s, want SKIPPED", after.State)
	}
}

func TestEngine_CancelDuringBackoff(t *testing.T) {
	t.Parallel()
	st, eng := retryHarness(t, 0)
	id, err := eng.Submit(context.Background(), retryPlan(t, "{limit: 5, backoff: 1h}"), nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		tk, _ := st.Task(id, 0)
		return tk.State == spec.TaskPending && len(tk.Attempts) == 1
	})
	if err := eng.Cancel(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, eng, id); r.State != spec.RunCanceled {
		t.Fatalf("run = %s, want CANCELED", r.State)
	}
	tk, _ := st.Task(id, 0)
	if tk.State != spec.TaskCanceled || len(tk.Attempts) != 1 {
		t.Errorf("flaky = %s with %d attempts, want CANCELED with 1", tk.State, len(tk.Attempts))
	}
}
