package main

// Tests of skiff with the kube executor against the control plane of
// make kube-up (SKIFF_KUBECONFIG); skipped without it. See
// executors/kube/integration_test.go for how kwok ends pods.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffml/skiff/executors/kube"
)

func kubeconfigForTest(t *testing.T) (string, kubernetes.Interface) {
	t.Helper()
	path := os.Getenv("SKIFF_KUBECONFIG")
	if path == "" {
		t.Skip("SKIFF_KUBECONFIG is not set: run make test-kube")
	}
	rest, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := kubernetes.NewForConfig(rest)
	if err != nil {
		t.Fatal(err)
	}
	return path, cli
}

// kfpChain is a KFP IR pipeline of n container steps one after the other;
// kwok ends each pod with exit code 0 after runFor (first step: firstFor).
func kfpChain(n int, firstFor, runFor string) string {
	var comps, execs, tasks, plat strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&comps, "  comp-s%d: {executorLabel: exec-s%d}\n", i, i)
		fmt.Fprintf(&execs, "    exec-s%d:\n      container: {image: 'registry.example/step:1', command: [sh, -c, 'echo step %d']}\n", i, i)
		fmt.Fprintf(&tasks, "      s%d:\n        componentRef: {name: comp-s%d}\n        taskInfo: {name: s%d}\n", i, i, i)
		if i > 0 {
			fmt.Fprintf(&tasks, "        dependentTasks: [s%d]\n", i-1)
		}
		d := runFor
		if i == 0 {
			d = firstFor
		}
		fmt.Fprintf(&plat, "        exec-s%d:\n          podMetadata:\n            annotations: {skiff-test/exit-code: '0', skiff-test/run-for: '%s'}\n", i, d)
	}
	return "pipelineInfo: {name: kube-chain}\ncomponents:\n" + comps.String() +
		"deploymentSpec:\n  executors:\n" + execs.String() +
		"root:\n  dag:\n    tasks:\n" + tasks.String() +
		"schemaVersion: 2.1.0\nsdkVersion: kfp-2.14.6\n---\nplatforms:\n  kubernetes:\n    deploymentSpec:\n      executors:\n" + plat.String()
}

func kubePodCount(t *testing.T, cli kubernetes.Interface, instance string) int {
	t.Helper()
	pods, err := cli.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelInstance + "=" + instance})
	if err != nil {
		t.Fatal(err)
	}
	return len(pods.Items)
}

// TestCLI_KubeKillNineThenResumeAdoptsPod: skiff is killed with SIGKILL
// while a step's pod runs; skiff runs resume adopts that pod (the step
// keeps its one attempt: no second pod) and the run succeeds.
func TestCLI_KubeKillNineThenResumeAdoptsPod(t *testing.T) {
	t.Parallel()
	kc, cli := kubeconfigForTest(t)
	instance := fmt.Sprintf("cli%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	p := writeFile(t, dir, "chain.yaml", kfpChain(2, "8s", "0s"))
	data := filepath.Join(dir, "data")
	env := append(os.Environ(), "SKIFF_KUBECONFIG="+kc, "SKIFF_KUBE_INSTANCE="+instance)
	cmd := exec.Command(skiffBin, "--data-dir", data, "run", p, "--executor", "kube", "--progress", "plain")
	cmd.Env = env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if !once && strings.Contains(sc.Text(), "s0") && strings.Contains(sc.Text(), "RUNNING") {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("s0 never reported RUNNING")
	}
	deadline := time.Now().Add(60 * time.Second)
	for kubePodCount(t, cli, instance) == 0 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("no pod for s0")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if n := kubePodCount(t, cli, instance); n != 1 {
		t.Fatalf("%d pods after kill -9, want s0's", n)
	}

	r := skiffWithEnv(t, env, data, "runs", "resume", "--progress", "plain")
	if r.code != 0 {
		t.Fatalf("resume: exit %d\n%s", r.code, r.stderr)
	}
	list := skiff(t, data, "runs", "list", "-o", "name")
	s := parseSummary(t, skiff(t, data, "runs", "get", strings.TrimSpace(list.stdout), "-o", "json"))
	if s.State != "SUCCEEDED" {
		t.Fatalf("run after resume: %s %s", s.State, s.Error)
	}
	for _, tk := range s.Tasks {
		if tk.Attempts != 1 {
			t.Errorf("task %s has %d attempts, want 1 (its pod adopted, not replaced)", tk.Name, tk.Attempts)
		}
	}
}

// TestCLI_KubeChainOverhead measures, on a chain of SKIFF_KUBE_CHAIN (50)
// steps whose pods kwok ends at once, the time per step from one step's
// RUNNING to the next's (pod create, schedule, run, exit, report, next
// start), and the engine's share: from a step's SUCCEEDED to the next
// step's RUNNING.
func TestCLI_KubeChainOverhead(t *testing.T) {
	kc, cli := kubeconfigForTest(t)
	n := 50
	if v := os.Getenv("SKIFF_KUBE_CHAIN"); v != "" {
		fmt.Sscan(v, &n)
	}
	instance := fmt.Sprintf("chain%d", time.Now().UnixNano()%1e9)
	dir := t.TempDir()
	p := writeFile(t, dir, "chain.yaml", kfpChain(n, "0s", "0s"))
	env := append(os.Environ(), "SKIFF_KUBECONFIG="+kc, "SKIFF_KUBE_INSTANCE="+instance)
	start := time.Now()
	r := skiffWithEnv(t, env, filepath.Join(dir, "data"), "run", p, "--executor", "kube", "--progress", "json")
	wall := time.Since(start)
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	running, done := map[string]time.Time{}, map[string]time.Time{}
	for _, l := range strings.Split(r.stderr, "\n") {
		var rec struct{ Time, Task, State string }
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Task == "" {
			continue
		}
		ts, err := time.Parse(time.RFC3339Nano, rec.Time)
		if err != nil {
			continue
		}
		switch rec.State {
		case "RUNNING":
			running[rec.Task] = ts
		case "SUCCEEDED":
			done[rec.Task] = ts
		}
	}
	var cycle, engine []time.Duration
	for i := 0; i+1 < n; i++ {
		a, b := fmt.Sprintf("s%d", i), fmt.Sprintf("s%d", i+1)
		if running[a].IsZero() || running[b].IsZero() || done[a].IsZero() {
			t.Fatalf("missing progress of %s or %s:\n%s", a, b, r.stderr)
		}
		cycle = append(cycle, running[b].Sub(running[a]))
		engine = append(engine, running[b].Sub(done[a]))
	}
	if left := kubePodCount(t, cli, instance); left != 0 {
		t.Errorf("%d pods left after the run", left)
	}
	t.Logf("kube chain of %d steps: %s wall; per step (RUNNING to next RUNNING) p50 %s p99 %s; engine (SUCCEEDED to next RUNNING) p50 %s p99 %s",
		n, wall.Round(time.Millisecond), pct(cycle, 50), pct(cycle, 99), pct(engine, 50), pct(engine, 99))
}

func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Millisecond)
}
