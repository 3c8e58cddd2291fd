package kube

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store/blob"
)

// TestWithReport_TrustsOnlySignedReportsOfTheExecution: the executor
// takes a launcher pod's outputs from the report its termination message
// names, and fails a zero exit whose report is missing, unsigned, of
// another execution, says the launcher failed or lacks a declared output.
func TestWithReport_TrustsOnlySignedReportsOfTheExecution(t *testing.T) {
	blobs, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	keys := launch.RandomKeys()
	e := &Executor{cfg: Config{Launcher: &Launcher{Keys: keys, Blobs: blobs}}}
	s := &executors.Spec{ID: "run-0-1", Outputs: []executors.OutputSpec{{Name: "n", Type: spec.TypeInt}}}
	store := func(rep launch.Report) launch.ReportReceipt {
		data, _ := json.Marshal(rep)
		ref, err := blobs.Put(context.Background(), bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		return launch.ReportReceipt{Digest: ref.Digest, Signature: keys.SignReport(rep.Execution, ref.Digest)}
	}
	pod := func(code int32, msg string) *corev1.Pod {
		return &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
			Name: ContainerName, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: msg}}}}}}
	}
	logs := &spec.ArtifactRef{Digest: "sha256:" + strings.Repeat("1", 64)}
	good := store(launch.Report{Execution: s.ID, Outputs: map[string]spec.Value{"n": {Param: json.RawMessage("3")}}, Logs: logs})
	mine := store(launch.Report{Execution: s.ID, Reason: `output "m": missing`})
	other := store(launch.Report{Execution: "run-1-1", Outputs: map[string]spec.Value{"n": {Param: json.RawMessage("9")}}})
	lacking := store(launch.Report{Execution: s.ID, Outputs: map[string]spec.Value{"other": {Param: json.RawMessage("1")}}, Logs: logs})
	forged := good
	forged.Signature = strings.Repeat("0", len(good.Signature))
	otherSignedForMe := launch.ReportReceipt{Digest: other.Digest, Signature: keys.SignReport(s.ID, other.Digest)}
	succeeded := executors.Event{State: spec.TaskSucceeded, ExitCode: 0}

	ev := e.withReport(context.Background(), s, pod(0, good.Termination()), succeeded)
	if ev.State != spec.TaskSucceeded || string(ev.Outputs["n"].Param) != "3" || ev.Logs == nil || ev.Logs.Digest != logs.Digest {
		t.Fatalf("good report: %+v", ev)
	}
	for _, c := range []struct{ name, msg, reason string }{
		{"no message", "", "no report"},
		{"forged signature", forged.Termination(), "signature"},
		{"another execution's report", other.Termination(), "signature"},
		{"another execution's report, signed for this one", otherSignedForMe.Termination(), "is not one of execution"},
		{"the launcher failed", mine.Termination(), `output "m": missing`},
		{"a signed report without a declared output", lacking.Termination(), `lacks declared output "n"`},
	} {
		ev := e.withReport(context.Background(), s, pod(0, c.msg), succeeded)
		if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, c.reason) || ev.Outputs != nil {
			t.Errorf("%s: %+v, want FAILED naming %q", c.name, ev, c.reason)
		}
	}
	// A failed step keeps its exit code; the launcher's reason is added.
	ev = e.withReport(context.Background(), s, pod(1, mine.Termination()), executors.Event{State: spec.TaskFailed, ExitCode: 1, Reason: "exit code 1"})
	if ev.State != spec.TaskFailed || ev.ExitCode != 1 || !strings.Contains(ev.Reason, "missing") {
		t.Errorf("failed step: %+v", ev)
	}
}
