package api

import (
	"testing"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// The waiting reason recorded on a RUNNING task's live attempt shows in
// the KFP task detail and in Skiff's run summary; an ended attempt's does
// not.
func TestTaskViews_WaitingReason(t *testing.T) {
	why := "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."
	run := store.Run{ID: "r1"}
	live := store.Task{RunID: "r1", Index: 0, Name: "train", State: spec.TaskRunning,
		Attempts: []store.Attempt{{N: 1, ExecutionID: "r1-0-1", Executor: "kube", State: spec.TaskRunning, Waiting: why}}}
	ended := live
	ended.State = spec.TaskFailed
	ended.Attempts = []store.Attempt{{N: 1, ExecutionID: "r1-0-1", Executor: "kube", State: spec.TaskFailed, Waiting: why}}
	if got := taskOut(run, live).WaitingReason; got != why {
		t.Errorf("task detail of a waiting task: %q, want %q", got, why)
	}
	if got := taskOut(run, ended).WaitingReason; got != "" {
		t.Errorf("task detail of an ended task: %q, want none", got)
	}
	sum := Summarize(run, []store.Task{live})
	if len(sum.Tasks) != 1 || sum.Tasks[0].WaitingReason != why {
		t.Errorf("summary: %+v", sum.Tasks)
	}
}
