package kube_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// TestKube_ChainStepTimings measures, for a chain of SKIFF_KUBE_CHAIN (30)
// steps run one after the other through the executor alone (no engine),
// whose pods kwok ends at once: from Start to Started (pod created,
// scheduled, made Running by kwok, seen by the informer), from Started to
// Exited (kwok ends it, the informer sees it), and Start to Exited. It
// logs p50 and p99 (go test -v); it asserts no timing. It is not parallel,
// so that it runs before the parallel tests load the control plane. The
// engine's share is TestCLI_KubeChainOverhead's (cmd/skiff).
func TestKube_ChainStepTimings(t *testing.T) {
	cli := kubeClient(t)
	n := 30
	if v := os.Getenv("SKIFF_KUBE_CHAIN"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil || n < 2 {
			t.Fatalf("SKIFF_KUBE_CHAIN=%q: want a number >= 2", v)
		}
	}
	x := newExecutor(t, cli, newInstance(t), nil)
	var toStart, toExit, total []time.Duration
	for i := 0; i < n; i++ {
		s := stepSpec(fmt.Sprintf("s%d", i), 0, "")
		started, exited := make(chan time.Time, 1), make(chan executors.Event, 1)
		report := func(ev executors.Event) {
			switch ev.Kind {
			case executors.EventStarted:
				started <- time.Now()
			case executors.EventExited:
				ev.Time = time.Now()
				exited <- ev
			}
		}
		t0 := time.Now()
		if err := x.Start(context.Background(), s, report); err != nil {
			t.Fatal(err)
		}
		var t1 time.Time
		select {
		case t1 = <-started:
		case <-time.After(wait):
			t.Fatalf("step %d: not started within %s", i, wait)
		}
		var ev executors.Event
		select {
		case ev = <-exited:
		case <-time.After(wait):
			t.Fatalf("step %d: not exited within %s", i, wait)
		}
		if ev.State != spec.TaskSucceeded {
			t.Fatalf("step %d exited %+v, want SUCCEEDED", i, ev)
		}
		toStart = append(toStart, t1.Sub(t0))
		toExit = append(toExit, ev.Time.Sub(t1))
		total = append(total, ev.Time.Sub(t0))
	}
	t.Logf("kube executor, %d steps one after another: Start to Started p50 %s p99 %s; Started to Exited p50 %s p99 %s; Start to Exited p50 %s p99 %s",
		n, pctl(toStart, 50), pctl(toStart, 99), pctl(toExit, 50), pctl(toExit, 99), pctl(total, 50), pctl(total, 99))
}

// pctl is the p-th percentile of d (nearest rank).
func pctl(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i].Round(time.Millisecond)
}
