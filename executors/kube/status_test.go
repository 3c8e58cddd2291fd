package kube

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffml/skiff/engine/spec"
)

func terminatedPod(phase corev1.PodPhase, code int32, reason, msg string) *corev1.Pod {
	return &corev1.Pod{Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
		Name: ContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: msg}}}}}}
}

// TestExitEvent_Reasons: how a finished pod reads as an execution's end.
func TestExitEvent_Reasons(t *testing.T) {
	evicted := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}}
	deadline := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "DeadlineExceeded", Message: "Pod was active on the node longer than the specified deadline"}}
	cases := []struct {
		name    string
		pod     *corev1.Pod
		timeout time.Duration
		state   spec.TaskState
		code    int
		reason  string
	}{
		{"success", terminatedPod(corev1.PodSucceeded, 0, "Completed", ""), 0, spec.TaskSucceeded, 0, ""},
		{"exit code", terminatedPod(corev1.PodFailed, 3, "Error", ""), 0, spec.TaskFailed, 3, "exit code 3"},
		{"exit code with message", terminatedPod(corev1.PodFailed, 1, "Error", "boom"), 0, spec.TaskFailed, 1, "exit code 1: boom"},
		{"oom", terminatedPod(corev1.PodFailed, 137, "OOMKilled", ""), 0, spec.TaskFailed, 137, "OOMKilled (exit code 137)"},
		{"evicted", evicted, 0, spec.TaskFailed, -1, "Evicted: The node was low on resource: memory."},
		{"deadline with timeout", deadline, 10 * time.Second, spec.TaskFailed, -1, "timed out after 10s (DeadlineExceeded)"},
		{"deadline from settings", deadline, 0, spec.TaskFailed, -1, "DeadlineExceeded"},
		{"failed without status", &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "NodeLost"}}, 0, spec.TaskFailed, -1, "pod failed: NodeLost"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := exitEvent(c.pod, c.timeout)
			if ev.State != c.state || ev.ExitCode != c.code || !strings.HasPrefix(ev.Reason, c.reason) || (c.reason == "" && ev.Reason != "") {
				t.Errorf("exitEvent = %v %d %q; want %v %d %q", ev.State, ev.ExitCode, ev.Reason, c.state, c.code, c.reason)
			}
		})
	}
}

// TestWaitingReason: why a pending pod waits, and when it never runs.
func TestWaitingReason(t *testing.T) {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: ContainerName, Image: "registry.example/train:2"}}}
	waiting := func(reason, msg string) *corev1.Pod {
		return &corev1.Pod{Spec: spec, Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{
			Name: ContainerName, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}}
	}
	unsched := &corev1.Pod{Spec: spec, Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
		Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
		Message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}}}
	cases := []struct {
		name   string
		pod    *corev1.Pod
		reason string
		fatal  bool
	}{
		{"unschedulable", unsched, "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu.", false},
		{"pull backoff names the image", waiting("ImagePullBackOff", "Back-off pulling image"), "ImagePullBackOff: image registry.example/train:2 (Back-off pulling image)", false},
		{"invalid image is fatal", waiting("InvalidImageName", ""), "InvalidImageName: image registry.example/train:2", true},
		{"missing secret", waiting("CreateContainerConfigError", `secret "db" not found`), `CreateContainerConfigError: secret "db" not found`, false},
		{"creating says nothing", waiting("ContainerCreating", ""), "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, fatal := waitingReason(c.pod)
			if r != c.reason || fatal != c.fatal {
				t.Errorf("waitingReason = %q, %v; want %q, %v", r, fatal, c.reason, c.fatal)
			}
		})
	}
}
