package kfp

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// TestCompile_KubernetesSettingsAreCarried compiles a corpus pipeline whose
// two executors mount a PVC: each step carries its executor's pvcMount as
// written, and each executor gets one warning.
func TestCompile_KubernetesSettingsAreCarried(t *testing.T) {
	readCorpus(t) // skips without the corpus
	plan, warns, err := loadCorpusFile(t, "pvc_mount.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	const pvc = `{"pvcMount":[{"componentInputParameter":"pvc_name","mountPath":"/data","pvcNameParameter":{"componentInputParameter":"pvc_name"}}]}`
	for _, name := range []string{"producer", "consumer"} {
		if got := string(findTask(t, plan, name).Kubernetes); got != pvc {
			t.Errorf("%s: Kubernetes = %s, want %s", name, got, pvc)
		}
	}
	perExecutor := map[string]int{}
	for _, w := range warns {
		if strings.HasPrefix(w.Path, kubeExecutorsPath) {
			perExecutor[w.Path]++
			if w.Msg != "Kubernetes persistent volume claim mounts: "+kubeNotApplied+"it" {
				t.Errorf("warning %q", w)
			}
		}
	}
	want := map[string]int{kubeExecutorsPath + ".exec-consumer": 1, kubeExecutorsPath + ".exec-producer": 1}
	if len(perExecutor) != len(want) || perExecutor[kubeExecutorsPath+".exec-consumer"] != 1 || perExecutor[kubeExecutorsPath+".exec-producer"] != 1 {
		t.Errorf("warnings per executor = %v, want %v", perExecutor, want)
	}
}

// TestCompile_KubeExecutorGetsNoKeptWarning: compiled for the kube
// executor (Options.Kube), which applies the settings, the same pipeline
// carries them as before and no warning says they are only kept.
func TestCompile_KubeExecutorGetsNoKeptWarning(t *testing.T) {
	readCorpus(t) // skips without the corpus
	plan, warns, err := loadCorpusFile(t, "pvc_mount.yaml", Options{Kube: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(findTask(t, plan, "producer").Kubernetes) == 0 {
		t.Error("producer carries no Kubernetes settings")
	}
	for _, w := range warns {
		if strings.Contains(w.Msg, kubeNotApplied) {
			t.Errorf("warning %q with Options.Kube", w)
		}
	}
}

// withPlatform is minimalIR with a PlatformSpec.
func withPlatform(platform string) string { return minimalIR + "---\n" + platform }

func TestCompile_KubernetesSettingsOfOneExecutor(t *testing.T) {
	doc := withPlatform(`
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-echo:
          tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
          nodeSelector: {labels: {pool: gpu}}
          imagePullPolicy: IfNotPresent
          activeDeadlineSeconds: "600"
          emptyDirMounts: []
        exec-gone:
          tolerations: [{key: gpu}]
`)
	plan, warns, err := Load([]byte(doc), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"nodeSelector":{"labels":{"pool":"gpu"}},"imagePullPolicy":"IfNotPresent","activeDeadlineSeconds":600,"tolerations":[{"effect":"NoSchedule","key":"gpu","operator":"Exists"}]}`
	if got := string(plan.Tasks[0].Kubernetes); got != want {
		t.Errorf("Kubernetes = %s\nwant %s", got, want)
	}
	if len(warns) != 2 {
		t.Fatalf("warnings = %v, want one for exec-echo and one for exec-gone", warns)
	}
	if w := warns[0]; w.Path != kubeExecutorsPath+".exec-echo" ||
		w.Msg != "Kubernetes node selectors, image pull policy, active deadline, tolerations: "+kubeNotApplied+"them" {
		t.Errorf("warning %q", w)
	}
	if w := warns[1]; w.Path != kubeExecutorsPath+".exec-gone" || !strings.Contains(w.Msg, "no executor") {
		t.Errorf("warning %q", w)
	}
}

func TestCompile_KubernetesSettingsAreChecked(t *testing.T) {
	cases := []struct {
		name, settings, path, msg string
	}{
		{"list given as an object", "pvcMount: {mountPath: /data}", "pvcMount", "expected a list"},
		{"object given as a list", "nodeSelector: [a]", "nodeSelector", "expected an object"},
		{"list item not an object", "tolerations: [gpu]", "tolerations[0]", "expected an object"},
		{"pull policy", "imagePullPolicy: Sometimes", "imagePullPolicy", "expected Always, Never or IfNotPresent"},
		{"negative deadline", "activeDeadlineSeconds: -1", "activeDeadlineSeconds", "whole number of seconds"},
		{"fractional deadline", "activeDeadlineSeconds: 1.5", "activeDeadlineSeconds", "whole number of seconds"},
		{"unknown setting", "podAntiAffinity: []", "podAntiAffinity", "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := withPlatform("platforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n        exec-echo:\n          " + tc.settings + "\n")
			_, _, err := Load([]byte(doc), "", Options{})
			requireFieldError(t, err, kubeExecutorsPath+".exec-echo."+tc.path, tc.msg)
		})
	}
}

func TestCompile_PipelineConfig(t *testing.T) {
	cases := []struct {
		name, config, path, msg string
	}{
		{"workspace size", "workspace: {size: lots}", kubeWorkspacePath + ".size", "expected a size like 10Gi"},
		{"semaphore", "semaphoreKey: k", "platforms.kubernetes.pipelineConfig.semaphoreKey", "unsupported: pipeline concurrency limits"},
		{"unknown", "workspace: {sise: 1Gi}", kubeWorkspacePath + ".sise", "unknown field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := withPlatform("platforms:\n  kubernetes:\n    pipelineConfig:\n      " + tc.config + "\n")
			_, _, err := Load([]byte(doc), "", Options{})
			requireFieldError(t, err, tc.path, tc.msg)
		})
	}
	_, _, err := Load([]byte(withPlatform("platforms:\n  kubernetes:\n    pipelineConfig: {semaphoreKey: '', resourceTtl: 0}\n")), "", Options{})
	if err != nil {
		t.Errorf("proto3 defaults are absent values: %v", err)
	}
}

func loadWorkspaceIR(t *testing.T, platform bool) (*spec.Plan, []Warning) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "workspace.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !platform {
		pipeline, _, _ := strings.Cut(string(data), "\n---\n")
		data = []byte(pipeline)
	}
	plan, warns, err := Load(data, "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	return plan, warns
}

// TestCompile_Workspace: the steps that use {{$.workspace_path}} carry the
// workspace config; a pipeline that uses it without one gets a warning.
func TestCompile_Workspace(t *testing.T) {
	plan, warns := loadWorkspaceIR(t, true)
	for _, name := range []string{"write-file", "read-file"} {
		var d taskData
		if err := json.Unmarshal(findTask(t, plan, name).KFP, &d); err != nil {
			t.Fatal(err)
		}
		if d.Workspace == nil || d.Workspace.Size != "1Gi" || d.Workspace.Kubernetes == nil || string(d.Workspace.Kubernetes.PVCSpecPatch["accessModes"]) != `["ReadWriteOnce"]` {
			t.Errorf("%s: workspace = %+v", name, d.Workspace)
		}
	}
	if len(warns) != 1 || warns[0].Path != kubeWorkspacePath+".kubernetes" || !strings.Contains(warns[0].Msg, "workspace PVC spec patch") {
		t.Errorf("warnings = %v, want one for the PVC spec patch", warns)
	}
	_, warns = loadWorkspaceIR(t, false)
	if len(warns) != 1 || !strings.Contains(warns[0].Msg, "sets no pipelineConfig.workspace") {
		t.Errorf("warnings without a workspace config = %v", warns)
	}
}

// TestPrepare_Workspace: {{$.workspace_path}} resolves to
// Runtime.Workspace, in commands and f-string inputs alike, and fails the
// step where the executor gives no workspace.
func TestPrepare_Workspace(t *testing.T) {
	plan, _ := loadWorkspaceIR(t, true)
	rt := goldenRuntime
	rt.Workspace = "/srv/skiff/exec/.workspace-run-1"
	write := findTask(t, plan, "write-file")
	inv, err := Prepare(write, nil, rt)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Command[2] != "echo hi > /srv/skiff/exec/.workspace-run-1/f" || inv.Workspace != rt.Workspace {
		t.Errorf("command %q, workspace %q", inv.Command, inv.Workspace)
	}
	read := findTask(t, plan, "read-file")
	inv, err = Prepare(read, sampleInputs(plan, read, nil), rt)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Command[3] != rt.Workspace || inv.Workspace != rt.Workspace {
		t.Errorf("command %q, workspace %q", inv.Command, inv.Workspace)
	}
	if !strings.Contains(string(inv.ExecutorInput), `"workspace_path":"/srv/skiff/exec/.workspace-run-1"`) {
		t.Errorf("ExecutorInput %s lacks the resolved workspace_path", inv.ExecutorInput)
	}
	for _, tk := range []*spec.Task{write, read} {
		_, err := Prepare(tk, sampleInputs(plan, tk, nil), goldenRuntime)
		if !errors.Is(err, ErrNoWorkspace) || !strings.Contains(err.Error(), "{{$.workspace_path}}: workspaces need the local executor") {
			t.Errorf("%s without a workspace: %v", tk.Name, err)
		}
	}
	echo, _, err := Load([]byte(minimalIR), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv, err = Prepare(&echo.Tasks[0], sampleInputs(echo, &echo.Tasks[0], nil), rt)
	if err != nil || inv.Workspace != "" {
		t.Errorf("a step without the placeholder: workspace %q, %v", inv.Workspace, err)
	}
}

func TestPrepare_PersistentResourceIDIsEmpty(t *testing.T) {
	doc := strings.Replace(minimalIR, `command: [echo, "{{$.inputs.parameters['msg']}}"]`,
		`command: [echo, "id={{$.pipeline_persistent_resource_id}}"]`, 1)
	plan, _, err := Load([]byte(doc), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Prepare(&plan.Tasks[0], sampleInputs(plan, &plan.Tasks[0], nil), goldenRuntime)
	if err != nil || inv.Command[1] != "id=" {
		t.Errorf("command %q, %v", inv.Command, err)
	}
}
