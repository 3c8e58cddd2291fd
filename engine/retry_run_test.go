package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
)

func TestEngine_RetryRunRestartsFailedTasksOnly(t *testing.T) {
	t.Parallel()
	st, eng := retryHarness(t, 2) // flaky fails attempt 1, succeeds from attempt 2
	plan := mustPlan(t, `
name: retry-run
executor: sim
tasks:
  - name: first
    command: [x]
  - name: flaky
    command: [x]
    after: [first]
  - name: after
    command: [x]
    after: [flaky]
`)
	ctx := context.Background()
	id, err := eng.Submit(ctx, plan, nil, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := waitRun(t, eng, id); r.State != spec.RunFailed {
		t.Fatalf("run = %s, want FAILED", r.State)
	}
	if err := eng.Retry(ctx, "no-such-run"); err == nil {
		t.Fatal("retry of an unknown run succeeded")
	}
	if err := eng.Retry(ctx, id); err != nil {
		t.Fatal(err)
	}
	r := waitRun(t, eng, id)
	if r.State != spec.RunSucceeded || r.Error != "" {
		t.Fatalf("retried run = %s (%s), want SUCCEEDED", r.State, r.Error)
	}
	tasks, err := st.Tasks(id)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(tasks[0].Attempts); n != 1 || tasks[0].State != spec.TaskSucceeded {
		t.Errorf("first ran %d times (%s); it succeeded before the retry and must not run again", n, tasks[0].State)
	}
	fl := tasks[1]
	if fl.State != spec.TaskSucceeded || len(fl.Attempts) != 2 {
		t.Fatalf("flaky = %s with %d attempts, want SUCCEEDED with 2", fl.State, len(fl.Attempts))
	}
	for i, want := range []spec.TaskState{spec.TaskFailed, spec.TaskSucceeded} {
		if a := fl.Attempts[i]; a.N != i+1 || a.State != want {
			t.Errorf("flaky attempt %d = #%d %s, want #%d %s", i, a.N, a.State, i+1, want)
		}
	}
	if a := tasks[2]; a.State != spec.TaskSucceeded || len(a.Attempts) != 1 {
		t.Errorf("after = %s with %d attempts, want SUCCEEDED with 1 (it was skipped before)", a.State, len(a.Attempts))
	}
	// A succeeded run cannot be retried.
	if err := eng.Retry(ctx, id); !errors.Is(err, engine.ErrNotRetryable) {
		t.Fatalf("retry of a succeeded run: %v, want ErrNotRetryable", err)
	}
}
