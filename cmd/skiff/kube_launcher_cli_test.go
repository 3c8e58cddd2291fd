package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffml/skiff/executors/docker/dockertest"
	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/kube/kubelettest"
)

// kfpLauncherPipeline is launcherPipeline of executors/kube in KFP IR
// (greet writes an artifact, shout reads it and writes an artifact and a
// parameter), each step on image %[1]s and placed by node selector and
// toleration on the node labelled and tainted skiff-test/kubelet=%[2]s.
const kfpLauncherPipeline = `pipelineInfo: {name: kube-launcher}
components:
  comp-greet:
    executorLabel: exec-greet
    inputDefinitions:
      parameters:
        who: {parameterType: STRING}
    outputDefinitions:
      artifacts:
        greeting: {artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}}
  comp-shout:
    executorLabel: exec-shout
    inputDefinitions:
      artifacts:
        text: {artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}}
    outputDefinitions:
      artifacts:
        loud: {artifactType: {schemaTitle: system.Artifact, schemaVersion: 0.0.1}}
      parameters:
        chars: {parameterType: NUMBER_INTEGER}
deploymentSpec:
  executors:
    exec-greet:
      container:
        image: %[1]s
        command: [sh, -c, 'mkdir -p "$(dirname "$1")"; printf "hello, %%s\n" "$0" > "$1"; echo greeted "$0"']
        args: ['{{$.inputs.parameters[''who'']}}', '{{$.outputs.artifacts[''greeting''].path}}']
    exec-shout:
      container:
        image: %[1]s
        command: [sh, -c, 'mkdir -p "$(dirname "$1")" "$(dirname "$2")"; tr "a-z" "A-Z" < "$0" > "$1"; wc -c < "$0" | tr -d " \n" > "$2"']
        args: ['{{$.inputs.artifacts[''text''].path}}', '{{$.outputs.artifacts[''loud''].path}}', '{{$.outputs.parameters[''chars''].output_file}}']
root:
  dag:
    outputs:
      parameters:
        chars: {valueFromParameter: {outputParameterKey: chars, producerSubtask: shout}}
    tasks:
      greet:
        componentRef: {name: comp-greet}
        inputs:
          parameters:
            who: {componentInputParameter: who}
        taskInfo: {name: greet}
      shout:
        componentRef: {name: comp-shout}
        dependentTasks: [greet]
        inputs:
          artifacts:
            text: {taskOutputArtifact: {outputArtifactKey: greeting, producerTask: greet}}
        taskInfo: {name: shout}
  inputDefinitions:
    parameters:
      who: {parameterType: STRING, defaultValue: kube, isOptional: true}
  outputDefinitions:
    parameters:
      chars: {parameterType: NUMBER_INTEGER}
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.6
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-greet:
          nodeSelector: {labels: {skiff-test/kubelet: %[2]s}}
          tolerations: [{key: skiff-test/kubelet, operator: Equal, value: %[2]s, effect: NoSchedule}]
        exec-shout:
          nodeSelector: {labels: {skiff-test/kubelet: %[2]s}}
          tolerations: [{key: skiff-test/kubelet, operator: Equal, value: %[2]s, effect: NoSchedule}]
`

// dockerNode registers a Node that kwok does not manage (no
// kwok.x-k8s.io/node annotation): Ready, with room for pods, labelled
// skiff-test/kubelet=NAME and tainted with it (NoSchedule), so that only
// pods that select and tolerate it land there (not those of the kwok
// tests running beside). The test's cleanup deletes it. It returns its
// name.
func dockerNode(t *testing.T, cli kubernetes.Interface) string {
	t.Helper()
	ctx := context.Background()
	name := fmt.Sprintf("skiff-docker-%d", time.Now().UnixNano()%1_000_000_000)
	res := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("20")}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"skiff-test/kubelet": name, "kubernetes.io/hostname": name}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{{Key: "skiff-test/kubelet", Value: name, Effect: corev1.TaintEffectNoSchedule}}},
	}
	n, err := cli.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := cli.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("delete node %s: %v", name, err)
		}
	})
	now := metav1.Now()
	n.Status = corev1.NodeStatus{Capacity: res, Allocatable: res,
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			LastHeartbeatTime: now, LastTransitionTime: now}},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}}}
	if _, err := cli.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("node %s status: %v", name, err)
	}
	return name
}

// TestCLI_KubeLauncherRunsArtifactPipeline: skiff run --executor kube on
// a workstation, with --kube-launcher-image and --kube-launcher-listen,
// runs a pipeline whose steps pass an artifact and a parameter, through
// the real API server and scheduler of make kube-up. kwok runs no
// containers, so the steps go to a node of the test's own, which
// kubelettest plays with Docker (host network: the launchers reach skiff
// run's launcher port on loopback).
func TestCLI_KubeLauncherRunsArtifactPipeline(t *testing.T) {
	kc, cli := kubeconfigForTest(t)
	img := kubelettest.LauncherImage(t)
	node := dockerNode(t, cli)
	kl := kubelettest.Start(t, kubelettest.Config{Client: cli, Namespace: "default", Node: node})
	instance := fmt.Sprintf("launcher-%d", time.Now().UnixNano()%1_000_000)
	t.Cleanup(func() { // what the run left, if it failed
		zero := int64(0)
		_ = cli.CoreV1().Pods("default").DeleteCollection(context.Background(), metav1.DeleteOptions{GracePeriodSeconds: &zero},
			metav1.ListOptions{LabelSelector: kube.LabelInstance + "=" + instance})
	})

	dir := t.TempDir()
	p := writeFile(t, dir, "launcher.yaml", fmt.Sprintf(kfpLauncherPipeline, dockertest.Image, node))
	data := filepath.Join(dir, "data")
	env := append(envWithoutKube(), "SKIFF_KUBECONFIG="+kc, "SKIFF_KUBE_INSTANCE="+instance)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, skiffBin, "--data-dir", data, "run", p, "--executor", "kube", "--progress", "plain", "-o", "json",
		"--kube-launcher-image", img, "--kube-launcher-listen", "127.0.0.1:0")
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	wall := time.Since(start)
	t.Logf("skiff run (%s): %v\n%s", wall.Round(time.Millisecond), err, stderr.String())
	if err != nil {
		t.Fatalf("skiff run: %v\n%s", err, stdout.String())
	}
	sum := parseSummary(t, result{stdout: stdout.String()})
	if sum.State != "SUCCEEDED" || string(sum.Outputs["chars"]) != "12" {
		t.Fatalf("run %s, outputs %s: want SUCCEEDED with chars 12 (\"hello, kube\\n\")", sum.State, sum.Outputs)
	}
	if pods := kl.Pods(); len(pods) != 2 {
		t.Errorf("the Docker kubelet ran pods %v, want the 2 steps'", pods)
	}
	env = envWithoutKube()
	if r := skiffWithEnv(t, env, data, "artifacts", "cat", sum.RunID, "shout", "loud"); r.code != 0 || r.stdout != "HELLO, KUBE\n" {
		t.Errorf("artifact shout.loud: exit %d, %q, want \"HELLO, KUBE\\n\"\n%s", r.code, r.stdout, r.stderr)
	}
	if r := skiffWithEnv(t, env, data, "logs", sum.RunID, "greet"); r.code != 0 || !strings.Contains(r.stdout, "greeted kube") {
		t.Errorf("log of greet (uploaded by its launcher): exit %d, %q\n%s", r.code, r.stdout, r.stderr)
	}
}
