package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/kube/kwoktest"
)

// kfpHeld is a KFP IR pipeline of one container step whose pod kwok keeps
// running until the test annotates it with an exit code.
const kfpHeld = `pipelineInfo: {name: kube-held}
components:
  comp-s0: {executorLabel: exec-s0}
deploymentSpec:
  executors:
    exec-s0:
      container: {image: 'registry.example/step:1', command: [sh, -c, 'echo held']}
root:
  dag:
    tasks:
      s0:
        componentRef: {name: comp-s0}
        taskInfo: {name: s0}
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.6
---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-s0:
          podMetadata:
            annotations: {skiff-test/held: 'yes'}
`

// kubeOnlyPod waits for the one pod of instance and returns its name.
func kubeOnlyPod(t *testing.T, cli kubernetes.Interface, instance string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		pods, err := cli.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelInstance + "=" + instance})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 1 && pods.Items[0].Status.Phase == "Running" {
			return pods.Items[0].Name
		}
		if time.Now().After(deadline) {
			t.Fatalf("no running pod of instance %s (%d pods)", instance, len(pods.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLI_KubeLogsWhileStepRuns: while a step runs as a pod, skiff logs
// (another process, through the running skiff's API and engine, the kube
// executor, the real API server's pods/log and kwok serving the
// container's log file) prints what the step has written so far, and
// skiff logs -f prints a line written while it follows. The step then
// ends and the run succeeds.
func TestCLI_KubeLogsWhileStepRuns(t *testing.T) {
	t.Parallel()
	kc, cli := kubeconfigForTest(t)
	instance := "logs" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "")
	dir := t.TempDir()
	p := writeFile(t, dir, "held.yaml", kfpHeld)
	data := filepath.Join(dir, "data")
	env := append(os.Environ(), "SKIFF_KUBECONFIG="+kc, "SKIFF_KUBE_INSTANCE="+instance)
	run := exec.Command(skiffBin, "--data-dir", data, "run", p, "--executor", "kube", "--progress", "plain")
	run.Env = env
	var runErr syncBuffer
	run.Stderr = &runErr
	run.WaitDelay = 5 * time.Second
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	var runErrWait error
	exited := make(chan struct{}) // closed once skiff run ended (runErrWait set)
	go func() { runErrWait = run.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			run.Process.Kill()
			<-exited
		}
	})

	pod := kubeOnlyPod(t, cli, instance)
	logFile := filepath.Join(dir, "main.log")
	kwoktest.AppendLog(t, logFile, "epoch 1 loss 0.9", "epoch 2 loss 0.5")
	kwoktest.ServeLogs(t, kc, "default", pod, kube.ContainerName, logFile)

	runID := strings.TrimSpace(skiffWithEnv(t, env, data, "runs", "list", "-o", "name").stdout)
	if runID == "" {
		t.Fatalf("no run listed; skiff run said:\n%s", runErr.String())
	}
	want := "epoch 1 loss 0.9\nepoch 2 loss 0.5\n"
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := skiffWithEnv(t, env, data, "logs", runID, "s0")
		if r.code == 0 && r.stdout == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("skiff logs %s s0 while s0 runs: exit %d, stdout %q, stderr %s", runID, r.code, r.stdout, r.stderr)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Following: a line the step writes now arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, skiffBin, "--data-dir", data, "logs", "-f", runID, "s0")
	follow.Env = env
	follow.WaitDelay = 5 * time.Second
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok || l != want {
				t.Fatalf("skiff logs -f: line %q (open %v), want %q", l, ok, want)
			}
		case <-ctx.Done():
			t.Fatalf("skiff logs -f: no line %q", want)
		}
	}
	expect("epoch 1 loss 0.9")
	expect("epoch 2 loss 0.5")
	kwoktest.AppendLog(t, logFile, "epoch 3 loss 0.1")
	expect("epoch 3 loss 0.1")
	// kwok's log stream does not end with the step (kwok has no
	// container to see exit): stop following.
	follow.Process.Kill()
	follow.Wait()

	_, err = cli.CoreV1().Pods("default").Patch(context.Background(), pod, types.MergePatchType,
		[]byte(`{"metadata":{"annotations":{"skiff-test/exit-code":"0"}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if runErrWait != nil {
			t.Fatalf("skiff run: %v\n%s", runErrWait, runErr.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("skiff run did not end after its step did:\n%s", runErr.String())
	}
	s := parseSummary(t, skiffWithEnv(t, env, data, "runs", "get", runID, "-o", "json"))
	if s.State != "SUCCEEDED" {
		t.Fatalf("run %s: %s %s", runID, s.State, s.Error)
	}
}

// TestCLI_KubeQPSRefusesBadValue: --kube-qps takes a number above 0 (no
// control plane needed: the value is checked before the API is called).
func TestCLI_KubeQPSRefusesBadValue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc := writeFile(t, dir, "kubeconfig", unreachableKubeconfig)
	p := writeFile(t, dir, "held.yaml", kfpHeld)
	for _, v := range []string{"0", "-3", "fast"} {
		r := skiff(t, filepath.Join(dir, "data"), "run", p, "--executor", "kube", "--kubeconfig", kc, "--kube-qps", v)
		if r.code == 0 || !strings.Contains(r.stderr, "--kube-qps") {
			t.Errorf("--kube-qps %s: exit %d, stderr %s; want a refusal naming --kube-qps", v, r.code, r.stderr)
		}
	}
}

// unreachableKubeconfig names an API server nothing answers at: enough for
// the checks skiff makes before it calls the API.
const unreachableKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
`
