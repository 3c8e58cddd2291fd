package engine_test

import (
	"context"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
)

// forgetful reports success for every execution, with the outputs of the
// task named "make" left out until attempt keepFrom (0 = never).
type forgetful struct {
	*sim.Executor
	keepFrom int
}

func (f *forgetful) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if s.Task != "make" || (f.keepFrom > 0 && s.Attempt >= f.keepFrom) {
		return f.Executor.Start(ctx, s, report)
	}
	report(executors.Event{ID: s.ID, Kind: executors.EventStarted})
	report(executors.Event{ID: s.ID, Kind: executors.EventExited, State: spec.TaskSucceeded, ExitCode: 0})
	return nil
}

func (f *forgetful) Name() string { return "sim" }

const outputsYAML = `
name: outputs
executor: sim
tasks:
  - name: make
    command: [x]
    outputs: {model: Artifact, score: float}
    retry: RETRY
  - name: use
    command: [x, "{{inputs.m}}"]
    inputs: {m: {type: Artifact, from: make.model}}
`

// TestEngine_SuccessWithoutDeclaredOutputsFails: an executor that says a
// step succeeded but reports none of its declared outputs fails the step
// itself, naming what is missing (not its consumer, later, for a missing
// input); the step's retry policy applies.
func TestEngine_SuccessWithoutDeclaredOutputsFails(t *testing.T) {
	t.Parallel()
	h := newHarnessWith(t, t.TempDir(), &forgetful{Executor: sim.New(sim.Config{})})
	id := h.submit(mustPlan(t, strings.Replace(outputsYAML, "RETRY", "{limit: 0}", 1)), nil)
	r := h.wait(id)
	if r.State != spec.RunFailed {
		t.Fatalf("run %s, want FAILED", r.State)
	}
	ts := h.tasks(id)
	mk := ts["make"]
	if mk.State != spec.TaskFailed || !strings.Contains(mk.Error, "without its declared outputs (model, score)") {
		t.Errorf("make: %s %q, want FAILED naming model and score", mk.State, mk.Error)
	}
	if use := ts["use"]; use.State == spec.TaskFailed || len(use.Attempts) > 0 {
		t.Errorf("use: %s with %d attempts, want not started", use.State, len(use.Attempts))
	}

	// With a retry the second attempt (which reports them) succeeds.
	h2 := newHarnessWith(t, t.TempDir(), &forgetful{Executor: sim.New(sim.Config{}), keepFrom: 2})
	id = h2.submit(mustPlan(t, strings.Replace(outputsYAML, "RETRY", "{limit: 1, backoff: 1ms}", 1)), nil)
	if r := h2.wait(id); r.State != spec.RunSucceeded {
		t.Fatalf("with a retry: run %s %q, want SUCCEEDED", r.State, r.Error)
	}
	if mk := h2.tasks(id)["make"]; len(mk.Attempts) != 2 || !strings.Contains(mk.Attempts[0].Error, "declared outputs") {
		t.Errorf("make with a retry: %+v", mk.Attempts)
	}
}
