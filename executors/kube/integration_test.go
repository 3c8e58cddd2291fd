package kube_test

// Tests against a real API server, scheduler and kwok (make test-kube, or
// make kube-up then SKIFF_KUBECONFIG=... go test -run Kube ./executors/kube/).
// Without SKIFF_KUBECONFIG they are skipped. kwok runs no containers: its
// stages (tools/kube/stages.yaml) make a pod Running once scheduled, and
// end it with the exit code its annotation skiff-test/exit-code names,
// after skiff-test/run-for; a pod without that annotation runs until it
// is deleted.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/executortest"
	"github.com/skiffml/skiff/executors/kube"
)

// wait bounds every wait: the machine running the tests may be loaded.
const wait = 90 * time.Second

func kubeClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	path := os.Getenv("SKIFF_KUBECONFIG")
	if path == "" {
		t.Skip("SKIFF_KUBECONFIG is not set: run make test-kube (or make kube-up and set it)")
	}
	rest, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	rest.QPS, rest.Burst = 200, 400
	cli, err := kubernetes.NewForConfig(rest)
	if err != nil {
		t.Fatal(err)
	}
	return cli
}

var instances atomic.Int64

// newInstance returns a fresh instance name: each test sees only its pods.
func newInstance(t testing.TB) string {
	return fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e9, instances.Add(1))
}

func newExecutor(t testing.TB, cli kubernetes.Interface, instance string, mod func(*kube.Config)) *kube.Executor {
	t.Helper()
	cfg := kube.DefaultConfig(cli)
	cfg.Instance, cfg.Logger, cfg.GracePeriod = instance, nil, time.Second
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	x, err := kube.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	t.Cleanup(func() { deletePods(t, cli, instance) })
	return x
}

func deletePods(t testing.TB, cli kubernetes.Interface, instance string) {
	zero := int64(0)
	_ = cli.CoreV1().Pods(kube.DefaultNamespace).DeleteCollection(context.Background(),
		metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{LabelSelector: kube.LabelInstance + "=" + instance})
}

var seq atomic.Int64

// stepSpec is a spec whose pod kwok ends with exitCode after runFor
// (exitCode < 0: runs until deleted).
func stepSpec(task string, exitCode int, runFor string) *executors.Spec {
	n := seq.Add(1)
	run := fmt.Sprintf("kt%d-%d", time.Now().UnixNano()%1e6, n)
	s := &executors.Spec{ID: executors.ExecutionID(run, 0, 1), RunID: run, Task: task, Attempt: 1,
		Image: "registry.example/step:1", Command: []string{"python", "train.py"}}
	ann := map[string]string{}
	if exitCode >= 0 {
		ann["skiff-test/exit-code"] = fmt.Sprint(exitCode)
		if runFor != "" {
			ann["skiff-test/run-for"] = runFor
		}
	}
	raw, _ := json.Marshal(map[string]any{"podMetadata": map[string]any{"annotations": ann}})
	s.Kubernetes = raw
	return s
}

func getPod(t testing.TB, cli kubernetes.Interface, id string) (*corev1.Pod, bool) {
	t.Helper()
	p, err := cli.CoreV1().Pods(kube.DefaultNamespace).Get(context.Background(), kube.PodName(id), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return p, true
}

func waitGone(t testing.TB, cli kubernetes.Interface, id string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		if _, ok := getPod(t, cli, id); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod of %s still exists after %s", id, wait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReason waits for a Waiting event of id whose reason contains want.
func waitReason(t testing.TB, rec *executortest.Recorder, id, want string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		for _, ev := range rec.Events() {
			if ev.ID == id && ev.Kind == executors.EventWaiting && strings.Contains(ev.Reason, want) {
				return ev.Reason
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no waiting reason with %q for %s; events %+v", want, id, rec.Events())
	return ""
}

func TestKube_GPUStepLandsOnGPUNodeAndCompletes(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), func(c *kube.Config) { c.KeepPods = true })
	rec := executortest.NewRecorder()
	s := stepSpec("train", 0, "500ms")
	s.Resources = spec.Resources{GPU: 1, MilliCPU: 500, MemoryBytes: 1 << 30}
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	ev := rec.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskSucceeded || ev.ExitCode != 0 {
		t.Fatalf("exited %+v, want SUCCEEDED with code 0", ev)
	}
	rec.CheckOrder(t, s.ID)
	p, ok := getPod(t, cli, s.ID)
	if !ok {
		t.Fatal("pod gone although KeepPods")
	}
	if p.Spec.NodeName != "kwok-gpu-0" {
		t.Errorf("pod ran on %q, want kwok-gpu-0 (the only node with GPUs)", p.Spec.NodeName)
	}
	lim := p.Spec.Containers[0].Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]
	if lim.Value() != 1 {
		t.Errorf("nvidia.com/gpu limit %v, want 1", lim.String())
	}
}

func TestKube_FailureExitCode(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), nil)
	rec := executortest.NewRecorder()
	s := stepSpec("fail", 3, "")
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	ev := rec.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskFailed || ev.ExitCode != 3 || !strings.Contains(ev.Reason, "exit code 3") {
		t.Fatalf("exited %+v, want FAILED with exit code 3", ev)
	}
	waitGone(t, cli, s.ID) // finished pods are deleted once reported
}

func TestKube_UnschedulableShowsReasonAndIsCancellable(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), nil)
	rec := executortest.NewRecorder()
	s := stepSpec("big", 0, "")
	s.Resources.GPU = 16
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	reason := waitReason(t, rec, s.ID, "Insufficient nvidia.com/gpu")
	t.Logf("waiting reason: %s", reason)
	if err := x.Cancel(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	ev := rec.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskCanceled {
		t.Fatalf("exited %+v, want CANCELED", ev)
	}
	waitGone(t, cli, s.ID)
}

func TestKube_CancelDeletesRunningPod(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), nil)
	rec := executortest.NewRecorder()
	s := stepSpec("forever", -1, "")
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, s.ID, executors.EventStarted, wait)
	if ids, err := x.Running(context.Background()); err != nil || len(ids) != 1 || ids[0] != s.ID {
		t.Fatalf("Running() = %v, %v; want [%s]", ids, err, s.ID)
	}
	if err := x.Cancel(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	ev := rec.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskCanceled {
		t.Fatalf("exited %+v, want CANCELED", ev)
	}
	waitGone(t, cli, s.ID)
	rec.CheckOrder(t, s.ID)
	if err := x.Cancel(context.Background(), s.ID); err != nil {
		t.Errorf("second cancel: %v", err)
	}
}

func TestKube_Timeout(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), nil)
	rec := executortest.NewRecorder()
	s := stepSpec("slow", -1, "")
	s.Timeout = 2 * time.Second
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	ev := rec.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskFailed || !strings.Contains(ev.Reason, "timed out after 2s") {
		t.Fatalf("exited %+v, want FAILED timed out after 2s", ev)
	}
	waitGone(t, cli, s.ID)
}

// TestKube_AdoptAfterRestart: a second executor (the engine restarted)
// adopts the pod the first created: no second pod, and its end is
// reported through the new executor.
func TestKube_AdoptAfterRestart(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	inst := newInstance(t)
	x1 := newExecutor(t, cli, inst, nil)
	rec1 := executortest.NewRecorder()
	s := stepSpec("adopt", 0, "3s")
	if err := x1.Start(context.Background(), s, rec1.Report); err != nil {
		t.Fatal(err)
	}
	rec1.Wait(t, s.ID, executors.EventStarted, wait)
	x1.Detach()
	p1, ok := getPod(t, cli, s.ID)
	if !ok {
		t.Fatal("pod gone after detach")
	}

	x2 := newExecutor(t, cli, inst, nil)
	if ids, err := x2.Running(context.Background()); err != nil || len(ids) != 1 || ids[0] != s.ID {
		t.Fatalf("Running() after restart = %v, %v; want [%s]", ids, err, s.ID)
	}
	rec2 := executortest.NewRecorder()
	ok, err := x2.Adopt(context.Background(), s, rec2.Report)
	if err != nil || !ok {
		t.Fatalf("Adopt = %v, %v", ok, err)
	}
	if p2, ok := getPod(t, cli, s.ID); ok && p2.UID != p1.UID {
		t.Fatalf("a second pod replaced the first (uid %s -> %s)", p1.UID, p2.UID)
	}
	ev := rec2.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("adopted execution exited %+v, want SUCCEEDED", ev)
	}
	if rec1.CountOf(s.ID) != 1 {
		t.Errorf("the detached executor reported %d events, want only Started", rec1.CountOf(s.ID))
	}
	// Adopting something unknown says so.
	if ok, err := x2.Adopt(context.Background(), stepSpec("none", 0, ""), rec2.Report); ok || err != nil {
		t.Errorf("Adopt(unknown) = %v, %v; want false, nil", ok, err)
	}
}

// TestKube_StartAgainFindsThePod: starting the same execution again after
// a restart (the engine did not know the pod existed) creates no twin.
func TestKube_StartAgainFindsThePod(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	inst := newInstance(t)
	x1 := newExecutor(t, cli, inst, nil)
	s := stepSpec("again", -1, "")
	rec1 := executortest.NewRecorder()
	if err := x1.Start(context.Background(), s, rec1.Report); err != nil {
		t.Fatal(err)
	}
	rec1.Wait(t, s.ID, executors.EventStarted, wait)
	p1, _ := getPod(t, cli, s.ID)
	x1.Detach()
	x2 := newExecutor(t, cli, inst, nil)
	rec2 := executortest.NewRecorder()
	if err := x2.Start(context.Background(), s, rec2.Report); err != nil {
		t.Fatal(err)
	}
	rec2.Wait(t, s.ID, executors.EventStarted, wait)
	p2, ok := getPod(t, cli, s.ID)
	if !ok || p2.UID != p1.UID {
		t.Fatalf("pod after the second start: %v (uid %v), want the first (uid %s)", ok, p2, p1.UID)
	}
	pods, err := cli.CoreV1().Pods(kube.DefaultNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: kube.LabelInstance + "=" + inst})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("%d pods of the instance (%v), want 1", len(pods.Items), err)
	}
	if err := x2.Cancel(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
	rec2.Wait(t, s.ID, executors.EventExited, wait)
}

// TestKube_OrphansDeleted: after a restart, pods of executions the engine
// does not know are deleted; known ones and other instances' are kept.
func TestKube_OrphansDeleted(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	inst := newInstance(t)
	x1 := newExecutor(t, cli, inst, nil)
	other := newExecutor(t, cli, newInstance(t), nil)
	known, orphan, foreign := stepSpec("known", -1, ""), stepSpec("orphan", -1, ""), stepSpec("foreign", -1, "")
	rec := executortest.NewRecorder()
	for _, s := range []*executors.Spec{known, orphan} {
		if err := x1.Start(context.Background(), s, rec.Report); err != nil {
			t.Fatal(err)
		}
		rec.Wait(t, s.ID, executors.EventStarted, wait)
	}
	if err := other.Start(context.Background(), foreign, rec.Report); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, foreign.ID, executors.EventStarted, wait)
	x1.Detach()
	x2 := newExecutor(t, cli, inst, nil)
	gone, err := x2.DeleteOrphans(context.Background(), func(id string) bool { return id == known.ID })
	if err != nil || len(gone) != 1 || gone[0] != orphan.ID {
		t.Fatalf("DeleteOrphans = %v, %v; want [%s]", gone, err, orphan.ID)
	}
	waitGone(t, cli, orphan.ID)
	for _, s := range []*executors.Spec{known, foreign} {
		if _, ok := getPod(t, cli, s.ID); !ok {
			t.Errorf("pod of %s was deleted", s.Task)
		}
	}
}

func TestKube_BadSpecRejected(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), nil)
	rec := executortest.NewRecorder()
	s := stepSpec("bad", 0, "")
	s.Kubernetes = json.RawMessage(`{"pvcMount":[{"constant":"c","mountPath":"relative"}]}`)
	err := x.Start(context.Background(), s, rec.Report)
	if err == nil || !strings.Contains(err.Error(), "kubernetes.pvcMount[0].mountPath") {
		t.Fatalf("Start = %v, want an error naming kubernetes.pvcMount[0].mountPath", err)
	}
	s2 := stepSpec("out", 0, "")
	s2.Outputs = []executors.OutputSpec{{Name: "model", Type: spec.TypeModel}}
	if err := x.Start(context.Background(), s2, rec.Report); err == nil || !strings.Contains(err.Error(), "outputs") {
		t.Fatalf("Start with outputs = %v, want a refusal naming outputs", err)
	}
	if _, ok := getPod(t, cli, s.ID); ok {
		t.Error("a pod was created for a rejected spec")
	}
	if rec.Count() != 0 {
		t.Errorf("%d events for rejected specs", rec.Count())
	}
}
