package ui

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

func TestRunModel_WaitReasonSaysWhyAPendingTaskWaits(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	plan := spec.Plan{Name: "why", Executor: "local", Tasks: []spec.Task{
		{Name: "prep"},
		{Name: "train", Deps: []int{0}, Retry: &spec.Retry{Limit: 3, Backoff: spec.Duration(10 * time.Second)}},
		{Name: "sweep", ParallelFor: &spec.Loop{ItemParam: "x", Parallelism: 2}, Body: &spec.Plan{Tasks: []spec.Task{
			{Name: "fit"}, {Name: "score", Deps: []int{0}},
		}}},
		{Name: "ready"},
		{Name: "bad"},
		{Name: "after-bad", Deps: []int{4}},
	}}
	raw, _ := jsonMarshal(plan)
	// sweep's 4 iterations x 2 tasks sit at 6..13
	run := store.Run{ID: "r", Plan: raw, State: spec.RunRunning,
		Expansions: []store.Expansion{{Task: 2, Base: 6, Count: 4, Loop: true, Names: []string{"fit", "score"}}}}
	tasks := []store.Task{
		{Index: 0, Name: "prep", State: spec.TaskRunning},
		{Index: 1, Name: "train", State: spec.TaskPending},
		{Index: 2, Name: "sweep", State: spec.TaskRunning},
		{Index: 3, Name: "ready", State: spec.TaskPending},
		{Index: 4, Name: "bad", State: spec.TaskFailed},
		{Index: 5, Name: "after-bad", State: spec.TaskPending},
	}
	iter := []spec.TaskState{spec.TaskSucceeded, spec.TaskRunning, spec.TaskRunning, spec.TaskPending, // 0: fit done, score running; 1: fit running
		spec.TaskPending, spec.TaskPending, spec.TaskPending, spec.TaskPending}
	for k, st := range iter {
		tasks = append(tasks, store.Task{Index: 6 + k, Name: "x", State: st})
	}
	m, err := newRunModel(run, tasks)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		task int
		want string
	}{
		{"dependency", 1, "Waits for its dependencies: prep (running)"},
		{"sibling in its iteration", 9, "Waits for its dependencies: fit[1] (running)"},
		{"parallelism limit", 10, "at most 2 iterations at once, and 2 earlier ones are not done"},
		{"ready: capacity", 3, `capacity on executor "local"`},
		{"upstream failed", 5, "Upstream bad did not succeed"},
		{"running: no reason", 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := m.waitReason(c.task, now)
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Fatalf("waitReason(%d) = %q, want %q", c.task, got, c.want)
			}
		})
	}

	// a failed attempt waiting out its backoff
	m.tasks[0].State = spec.TaskSucceeded
	m.tasks[1].Attempts = []store.Attempt{{N: 1, State: spec.TaskFailed, Error: "exit code 3", FinishedAt: now.Add(-4 * time.Second)}}
	got := m.waitReason(1, now)
	if !strings.Contains(got, "Attempt 1 failed (exit code 3); waits to retry in 6.0s (backoff 10.0s)") {
		t.Fatalf("retry: %q", got)
	}
	m.run.State = spec.RunSucceeded
	if got := m.waitReason(1, now); got != "" {
		t.Fatalf("a final run's task waits: %q", got)
	}
}

func TestRunModel_LoopItemFromARunParameter(t *testing.T) {
	t.Parallel()
	plan := spec.Plan{Name: "p", Params: []spec.Param{{Name: "xs", Type: spec.TypeList}}, Tasks: []spec.Task{
		{Name: "sweep", ParallelFor: &spec.Loop{Items: spec.Input{Param: "xs"}, ItemParam: "x"}, Body: &spec.Plan{Tasks: []spec.Task{
			{Name: "fit", Inputs: []spec.Input{{Name: "x", Type: spec.TypeInt, Param: "x"}}},
		}}},
	}}
	raw, _ := jsonMarshal(plan)
	run := store.Run{ID: "r", Plan: raw, State: spec.RunSucceeded, Params: map[string]json.RawMessage{"xs": json.RawMessage(`[5, 6, 7]`)},
		Expansions: []store.Expansion{{Task: 0, Base: 1, Count: 3, Loop: true, Names: []string{"fit"}}}}
	tasks := []store.Task{{Index: 0, Name: "sweep"}, {Index: 1, Name: "a"}, {Index: 2, Name: "b"}, {Index: 3, Name: "c"}}
	m, err := newRunModel(run, tasks)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := m.loopItem(0, 1); !ok || got != "6" {
		t.Fatalf("loopItem(0, 1) = %q, %v; want 6", got, ok)
	}
	if _, ok := m.loopItem(0, 3); ok {
		t.Fatal("an iteration past the list has an item")
	}
	p := m.taskPanel(3, time.Now())
	if len(p.Inputs) != 1 || p.Inputs[0].Source != "loop item x" || p.Inputs[0].Value != "7" {
		t.Fatalf("inputs %+v", p.Inputs)
	}
}

// TestStringField_FindsARecordedWaitingReason: the reason an executor gave
// for not running a task (executors.EventWaiting), once the engine records
// it on the task or its live attempt under one of waitReasonKeys, is what
// the page says; a finished attempt's reason is not shown.
func TestStringField_FindsARecordedWaitingReason(t *testing.T) {
	t.Parallel()
	type attempt struct {
		State  spec.TaskState `json:"state"`
		Reason string         `json:"waiting_reason,omitempty"`
	}
	type task struct {
		store.Task
		Waiting string `json:"waiting,omitempty"`
	}
	rec := task{Task: store.Task{State: spec.TaskRunning}, Waiting: "0/3 nodes:\n Insufficient nvidia.com/gpu"}
	if got := stringField(rec, waitReasonKeys); got != "0/3 nodes: Insufficient nvidia.com/gpu" {
		t.Errorf("task's reason = %q", got)
	}
	if got := stringField(attempt{State: spec.TaskRunning, Reason: "pulling image"}, waitReasonKeys); got != "pulling image" {
		t.Errorf("attempt's reason = %q", got)
	}
	if got := stringField(store.Task{State: spec.TaskPending, Error: "x"}, waitReasonKeys); got != "" {
		t.Errorf("a record without a reason gave %q", got)
	}
	if got := recordedWaitReason(&store.Task{State: spec.TaskRunning, Attempts: []store.Attempt{{N: 1, State: spec.TaskRunning}}}); got != "" {
		t.Errorf("a store record without a reason gave %q", got)
	}
	// The store's own field (Attempt.Waiting, committed with the worker's
	// report) is found under its JSON key.
	stored := &store.Task{State: spec.TaskRunning, Attempts: []store.Attempt{{N: 1, State: spec.TaskRunning, Waiting: "Unschedulable: 0/3 nodes"}}}
	if got := recordedWaitReason(stored); got != "Unschedulable: 0/3 nodes" {
		t.Errorf("store record with Attempt.Waiting gave %q", got)
	}
}
