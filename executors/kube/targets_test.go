package kube

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffml/skiff/executors"
)

// mapTargets is a Targets over a map that a test changes.
type mapTargets struct {
	mu  sync.Mutex
	m   map[string]string
	err error
}

func (t *mapTargets) set(ns, target string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.m[ns] = target
}

func (t *mapTargets) Target(ns string) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[ns], t.err
}

func (t *mapTargets) All() ([]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, v := range t.m {
		out = append(out, v)
	}
	return out, t.err
}

// newFakeExecutor makes an executor on cli (nil: a new fake clientset).
func newFakeExecutor(t *testing.T, cli *fake.Clientset, targets Targets) (*Executor, *fake.Clientset) {
	t.Helper()
	if cli == nil {
		cli = fake.NewSimpleClientset()
	}
	cfg := DefaultConfig(cli)
	cfg.Namespace, cfg.Targets = "skiff-pods", targets
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	x, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Close)
	return x, cli
}

func waitPod(t *testing.T, cli *fake.Clientset, ns, name string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p, err := cli.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			return p
		}
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			t.Fatalf("pod %s/%s: %v", ns, name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A step's pod goes to the Kubernetes namespace its Skiff namespace maps
// to, labelled with the Skiff namespace; an unmapped namespace's pod goes
// to the executor's own; an error of the mapping refuses the start.
func TestTargets_PodGoesToMappedNamespace(t *testing.T) {
	t.Parallel()
	targets := &mapTargets{m: map[string]string{"team-a": "tenant-a"}}
	x, cli := newFakeExecutor(t, nil, targets)
	ctx := context.Background()
	a, b := baseSpec(), baseSpec()
	a.ID, a.Namespace = "run-a-0-1", "team-a"
	b.ID, b.Namespace = "run-b-0-1", "team-b"
	for _, s := range []*executors.Spec{a, b} {
		if err := x.Start(ctx, s, func(executors.Event) {}); err != nil {
			t.Fatal(err)
		}
	}
	pa := waitPod(t, cli, "tenant-a", PodName(a.ID))
	if pa.Labels[LabelNamespace] != "team-a" || pa.Annotations[AnnotationNamespace] != "team-a" {
		t.Errorf("pod of team-a: labels %v annotations %v", pa.Labels, pa.Annotations)
	}
	waitPod(t, cli, "skiff-pods", PodName(b.ID))
	if _, err := cli.CoreV1().Pods("skiff-pods").Get(ctx, PodName(a.ID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("team-a's pod is also in the executor's own namespace: %v", err)
	}
	// Logs and Running find the pod where it is.
	if ids, err := x.Running(ctx); err != nil || !slices.Contains(ids, a.ID) || !slices.Contains(ids, b.ID) {
		t.Errorf("Running = %v, %v", ids, err)
	}
	bad := &mapTargets{m: map[string]string{}, err: errors.New("store closed")}
	x2, _ := newFakeExecutor(t, nil, bad)
	c := baseSpec()
	c.Namespace = "team-c"
	if err := x2.Start(ctx, c, func(executors.Event) { t.Error("report called after a refused start") }); err == nil {
		t.Error("start with a failing mapping: no error")
	}
}

// After a restart, adoption finds a pod in its mapped namespace, and in
// the namespace it was made in when the mapping changed since; orphans
// are deleted in every mapped namespace.
func TestTargets_AdoptAndOrphansInEveryNamespace(t *testing.T) {
	t.Parallel()
	targets := &mapTargets{m: map[string]string{"team-a": "tenant-a", "team-b": "tenant-b"}}
	x, cli := newFakeExecutor(t, nil, targets)
	ctx := context.Background()
	a, b, o := baseSpec(), baseSpec(), baseSpec()
	a.ID, a.Namespace = "run-a-0-1", "team-a"
	b.ID, b.Namespace = "run-b-0-1", "team-b"
	o.ID, o.Namespace = "run-o-0-1", "team-b"
	for _, s := range []*executors.Spec{a, b, o} {
		if err := x.Start(ctx, s, func(executors.Event) {}); err != nil {
			t.Fatal(err)
		}
	}
	waitPod(t, cli, "tenant-a", PodName(a.ID))
	waitPod(t, cli, "tenant-b", PodName(b.ID))
	waitPod(t, cli, "tenant-b", PodName(o.ID))
	x.Detach()

	// team-a moves to tenant-c meanwhile: its running pod stays where it
	// was made.
	targets.set("team-a", "tenant-c")
	targets.set("team-old", "tenant-a")
	y, _ := newFakeExecutor(t, cli, targets)
	for _, s := range []*executors.Spec{a, b} {
		ok, err := y.Adopt(ctx, s, func(executors.Event) {})
		if err != nil || !ok {
			t.Fatalf("adopt %s: %v, %v", s.ID, ok, err)
		}
	}
	rc, err := y.Logs(ctx, a.ID, false)
	if err != nil {
		t.Fatalf("logs of the adopted pod in its old namespace: %v", err)
	}
	rc.Close()
	gone, err := y.DeleteOrphans(ctx, func(id string) bool { return id == a.ID || id == b.ID })
	if err != nil || !slices.Equal(gone, []string{o.ID}) {
		t.Fatalf("DeleteOrphans = %v, %v; want [%s]", gone, err, o.ID)
	}
	if _, err := cli.CoreV1().Pods("tenant-b").Get(ctx, PodName(o.ID), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("orphan still there: %v", err)
	}
	// A pod of another Skiff instance in a mapped namespace is not ours.
	foreign := baseSpec()
	foreign.ID, foreign.Namespace = "run-f-0-1", "team-b"
	cfg := DefaultConfig(cli)
	cfg.Instance = "other"
	cfg.Namespace = "tenant-b"
	pod, err := BuildPod(cfg, foreign)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.CoreV1().Pods("tenant-b").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if gone, err := y.DeleteOrphans(ctx, func(string) bool { return false }); err != nil || slices.Contains(gone, foreign.ID) {
		t.Errorf("DeleteOrphans = %v, %v: took another instance's pod", gone, err)
	}
}
