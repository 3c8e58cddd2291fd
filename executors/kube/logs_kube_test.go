package kube_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/executortest"
	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/kube/kwoktest"
)

// endPod makes kwok end the pod of id (started without an exit code: it
// runs until told) with code, by annotating it as the stages expect.
func endPod(t testing.TB, cli kubernetes.Interface, id string, code int) {
	t.Helper()
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"skiff-test/exit-code":"%d"}}}`, code)
	_, err := cli.CoreV1().Pods(kube.DefaultNamespace).Patch(context.Background(), kube.PodName(id),
		types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// readLogs reads execution id's whole log (no follow) through the
// executor, retrying while kwok has not yet seen its Logs object.
func readLogs(t testing.TB, x *kube.Executor, id string) string {
	t.Helper()
	deadline := time.Now().Add(wait)
	for {
		rc, err := x.Logs(context.Background(), id, false)
		if err == nil {
			b, rerr := io.ReadAll(rc)
			rc.Close()
			if rerr == nil {
				return string(b)
			}
			err = rerr
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lineReader reads lines off a stream in the background, so that a test
// can wait for the next one with a deadline.
func lineReader(r io.Reader) <-chan string {
	ch := make(chan string, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func nextLine(t testing.TB, lines <-chan string, want string) {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("log stream ended, want line %q", want)
		}
		if l != want {
			t.Fatalf("log line %q, want %q", l, want)
		}
	case <-time.After(wait):
		t.Fatalf("no log line %q within %s", want, wait)
	}
}

// TestKube_LogsWhileStepRuns: while a step's pod runs, its container log
// (served by kwok as a kubelet would, and proxied by the real API server
// as pods/log) is read through the executor's Logs: all of it so far
// without follow, and with follow a line written while the step runs
// arrives on the open stream. The step then ends normally.
func TestKube_LogsWhileStepRuns(t *testing.T) {
	t.Parallel()
	cli := kubeClient(t)
	x := newExecutor(t, cli, newInstance(t), nil)
	rec := executortest.NewRecorder()
	s := stepSpec("talk", -1, "")
	file := filepath.Join(t.TempDir(), "main.log")
	kwoktest.AppendLog(t, file, "epoch 1 loss 0.9", "epoch 2 loss 0.5")
	kwoktest.ServeLogs(t, os.Getenv("SKIFF_KUBECONFIG"), kube.DefaultNamespace, kube.PodName(s.ID), kube.ContainerName, file)
	if err := x.Start(context.Background(), s, rec.Report); err != nil {
		t.Fatal(err)
	}
	rec.Wait(t, s.ID, executors.EventStarted, wait)

	got := readLogs(t, x, s.ID)
	if got != "epoch 1 loss 0.9\nepoch 2 loss 0.5\n" {
		t.Fatalf("log of the running step = %q, want its two lines", got)
	}
	if p, ok := getPod(t, cli, s.ID); !ok || p.Status.Phase != corev1.PodRunning {
		t.Fatalf("pod after reading its log: %v, want Running", p)
	}

	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	rc, err := x.Logs(ctx, s.ID, true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lines := lineReader(rc)
	nextLine(t, lines, "epoch 1 loss 0.9")
	nextLine(t, lines, "epoch 2 loss 0.5")
	kwoktest.AppendLog(t, file, "epoch 3 loss 0.1")
	nextLine(t, lines, "epoch 3 loss 0.1")
	if n := rec.CountOf(s.ID); n != 1 {
		t.Fatalf("%d events while the step runs, want only Started: %+v", n, rec.Events())
	}
	// kwok's log stream never ends by itself (kwok has no container to
	// see exit): the reader hangs up.
	cancel()
	rc.Close()

	endPod(t, cli, s.ID, 0)
	ev := rec.Wait(t, s.ID, executors.EventExited, wait)
	if ev.State != spec.TaskSucceeded {
		t.Fatalf("exited %+v, want SUCCEEDED", ev)
	}
	rec.CheckOrder(t, s.ID)
}
