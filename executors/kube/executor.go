package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiffml/skiff/executors"
)

var (
	_ executors.Executor = (*Executor)(nil)
	_ executors.Adopter  = (*Executor)(nil)
)

// apiTimeout bounds the executor's own API calls made off a caller's ctx
// (creating and deleting pods in the background).
const apiTimeout = time.Minute

// Executor runs each execution as one pod.
type Executor struct {
	cfg  Config
	cli  kubernetes.Interface
	log  *slog.Logger
	sel  labels.Selector
	stop chan struct{}

	wmu      sync.Mutex                           // held while an informer starts
	imu      sync.Mutex                           // guards informers
	informer map[string]cache.SharedIndexInformer // pod informers, by Kubernetes namespace

	mu   sync.Mutex
	live map[string]*execution // by execution id
	wg   sync.WaitGroup        // background API calls
}

// New checks cfg, checks that the API server answers (listing pods in the
// namespace: the executor needs that right anyway) and starts the pod
// informer. Close stops it.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	sel := labels.SelectorFromSet(labels.Set{LabelManaged: "true", LabelInstance: cfg.Instance})
	if _, err := cfg.Client.CoreV1().Pods(cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String(), Limit: 1}); err != nil {
		return nil, fmt.Errorf("kube: %w: list pods in namespace %q: %v", ErrNoCluster, cfg.Namespace, err)
	}
	e := &Executor{
		cfg: cfg, cli: cfg.Client, log: cfg.Logger, sel: sel, stop: make(chan struct{}),
		informer: map[string]cache.SharedIndexInformer{}, live: map[string]*execution{},
	}
	if _, err := e.watch(ctx, cfg.Namespace); err != nil {
		close(e.stop)
		return nil, err
	}
	return e, nil
}

// watch returns the pod informer of Kubernetes namespace ns, starting it
// (and waiting for its first list) the first time.
func (e *Executor) watch(ctx context.Context, ns string) (cache.SharedIndexInformer, error) {
	if inf := e.informerOf(ns); inf != nil {
		return inf, nil
	}
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if inf := e.informerOf(ns); inf != nil {
		return inf, nil
	}
	select {
	case <-e.stop:
		return nil, errors.New("kube: executor closed")
	default:
	}
	f := informers.NewSharedInformerFactoryWithOptions(e.cli, DefaultResync,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = e.sel.String() }))
	inf := f.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.onPod(obj, false) },
		UpdateFunc: func(_, obj any) { e.onPod(obj, false) },
		DeleteFunc: func(obj any) { e.onPod(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("kube: pod informer of namespace %q: %w", ns, err)
	}
	f.Start(e.stop)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		f.Shutdown()
		return nil, fmt.Errorf("kube: %w: pod informer of namespace %q did not sync: %v", ErrNoCluster, ns, ctx.Err())
	}
	e.imu.Lock()
	e.informer[ns] = inf
	e.imu.Unlock()
	return inf, nil
}

func (e *Executor) informerOf(ns string) cache.SharedIndexInformer {
	e.imu.Lock()
	defer e.imu.Unlock()
	return e.informer[ns]
}

// cached returns the informer's latest copy of pod ns/name, if any.
func (e *Executor) cached(ns, name string) (*corev1.Pod, bool) {
	inf := e.informerOf(ns)
	if inf == nil {
		return nil, false
	}
	obj, ok, _ := inf.GetStore().GetByKey(ns + "/" + name)
	if !ok {
		return nil, false
	}
	p, ok := obj.(*corev1.Pod)
	return p, ok
}

// target is the Kubernetes namespace of the pods of Skiff namespace ns.
func (e *Executor) target(ns string) (string, error) {
	if e.cfg.Targets == nil {
		return e.cfg.Namespace, nil
	}
	t, err := e.cfg.Targets.Target(ns)
	if err != nil {
		return "", fmt.Errorf("kube namespace of namespace %q: %w", ns, err)
	}
	if t == "" {
		return e.cfg.Namespace, nil
	}
	if m := validation.IsDNS1123Label(t); len(m) > 0 {
		return "", fmt.Errorf("kube namespace of namespace %q: %q: %s", ns, t, m[0])
	}
	return t, nil
}

// namespaces lists every Kubernetes namespace this executor's pods may be
// in: its own, every target, and every one it watches.
func (e *Executor) namespaces() ([]string, error) {
	set := map[string]bool{e.cfg.Namespace: true}
	if e.cfg.Targets != nil {
		all, err := e.cfg.Targets.All()
		if err != nil {
			return nil, fmt.Errorf("kube: target namespaces: %w", err)
		}
		for _, ns := range all {
			if ns != "" {
				set[ns] = true
			}
		}
	}
	e.imu.Lock()
	for ns := range e.informer {
		set[ns] = true
	}
	e.imu.Unlock()
	return slices.Sorted(maps.Keys(set)), nil
}

// listPods lists this instance's pods in every namespace of namespaces.
func (e *Executor) listPods(ctx context.Context) ([]corev1.Pod, error) {
	nss, err := e.namespaces()
	if err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, ns := range nss {
		pods, err := e.cli.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: e.sel.String()})
		if err != nil {
			return nil, fmt.Errorf("kube: list pods in namespace %q: %w", ns, err)
		}
		out = append(out, pods.Items...)
	}
	return out, nil
}

// findPod returns execution id's pod: in namespace first (the target of
// its Skiff namespace), else in any other namespace of this executor (a
// mapping changed since the pod was made); nil when there is none.
func (e *Executor) findPod(ctx context.Context, id, first string) (*corev1.Pod, error) {
	name := PodName(id)
	pod, err := e.cli.CoreV1().Pods(first).Get(ctx, name, metav1.GetOptions{})
	if err == nil && pod.Annotations[AnnotationExecution] == id && pod.Labels[LabelInstance] == e.cfg.Instance {
		return pod, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, err
	}
	nss, err := e.namespaces()
	if err != nil {
		return nil, err
	}
	for _, ns := range nss {
		if ns == first {
			continue
		}
		pod, err := e.cli.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if pod.Annotations[AnnotationExecution] == id && pod.Labels[LabelInstance] == e.cfg.Instance {
			return pod, nil
		}
	}
	return nil, nil
}

// Close stops watching; pods keep running (a later executor adopts them).
func (e *Executor) Close() {
	e.mu.Lock()
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	for _, x := range e.live {
		x.stopTimer()
	}
	e.live = map[string]*execution{}
	e.mu.Unlock()
	e.wg.Wait()
}

// Detach forgets every execution without touching its pod, as if the
// process had died; for tests of adoption.
func (e *Executor) Detach() { e.Close() }

// Name is "kube".
func (e *Executor) Name() string { return "kube" }

// Root is PodRoot (/skiff) for every execution.
func (e *Executor) Root(id string) string { return PodRoot }

// Namespace is where the executor's pods live unless Config.Targets maps
// a Skiff namespace elsewhere.
func (e *Executor) Namespace() string { return e.cfg.Namespace }

// Start builds the pod in the Kubernetes namespace of the spec's Skiff
// namespace (a bad spec or kubernetes setting is rejected here, naming the
// field) and creates it in the background.
func (e *Executor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if s == nil {
		return fmt.Errorf("kube: start: %w: nil spec", executors.ErrBadSpec)
	}
	cfg := e.cfg
	ns, err := e.target(s.Namespace)
	if err != nil {
		return fmt.Errorf("kube: start %q: %w", s.ID, err)
	}
	cfg.Namespace = ns
	pod, err := BuildPod(cfg, s)
	if err != nil {
		return fmt.Errorf("kube: start %q: %w", s.ID, err)
	}
	if report == nil {
		return fmt.Errorf("kube: start %q: %w: nil report func", s.ID, executors.ErrBadSpec)
	}
	x := &execution{e: e, spec: s.Clone(), ns: ns, pod: pod, report: report}
	if err := e.register(x); err != nil {
		return fmt.Errorf("kube: start %q: %w", s.ID, err)
	}
	e.background(x.create)
	return nil
}

func (e *Executor) register(x *execution) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.stop:
		return errors.New("executor closed")
	default:
	}
	if _, ok := e.live[x.spec.ID]; ok {
		return ErrAlreadyRunning
	}
	e.live[x.spec.ID] = x
	return nil
}

func (e *Executor) lookup(id string) *execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live[id]
}

func (e *Executor) forget(x *execution) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live[x.spec.ID] == x {
		delete(e.live, x.spec.ID)
	}
}

// background runs f off the caller with its own deadline.
func (e *Executor) background(f func(ctx context.Context)) {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		f(ctx)
	}()
}

// onPod hands an informer notification to the execution it belongs to.
func (e *Executor) onPod(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	x := e.lookup(pod.Annotations[AnnotationExecution])
	// The pod's name and namespace, from the immutable id and ns: x.pod
	// is observe's, under x.mu.
	if x == nil || PodName(x.spec.ID) != pod.Name || x.ns != pod.Namespace {
		return
	}
	x.observe(pod, deleted)
}

// Cancel deletes execution id's pod with the grace period; its Exited
// event (TaskCanceled) follows when the pod is gone. An unknown or
// finished id is not an error.
func (e *Executor) Cancel(ctx context.Context, id string) error {
	x := e.lookup(id)
	if x == nil {
		return nil
	}
	if !x.markCanceled() {
		return nil // not created yet: create sees the mark
	}
	return x.deletePod(ctx, e.cfg.GracePeriod)
}

// Running lists the executions whose pods (of this instance) are not
// finished, whether or not this process follows them.
func (e *Executor) Running(ctx context.Context) ([]string, error) {
	pods, err := e.listPods(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, p := range pods {
		id := p.Annotations[AnnotationExecution]
		if id == "" || p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// Adopt re-attaches to s's pod after a restart: it reports the pod's end
// (at once when it already ended) and returns true; false when there is no
// pod of this execution.
func (e *Executor) Adopt(ctx context.Context, s *executors.Spec, report func(executors.Event)) (bool, error) {
	if s == nil || report == nil {
		return false, fmt.Errorf("kube: adopt: %w: nil spec or report func", executors.ErrBadSpec)
	}
	ns, err := e.target(s.Namespace)
	if err != nil {
		return false, fmt.Errorf("kube: adopt %q: %w", s.ID, err)
	}
	pod, err := e.findPod(ctx, s.ID, ns)
	if err != nil {
		return false, fmt.Errorf("kube: adopt %q: %w", s.ID, err)
	}
	if pod == nil {
		return false, nil
	}
	if _, err := e.watch(ctx, pod.Namespace); err != nil {
		return false, fmt.Errorf("kube: adopt %q: %w", s.ID, err)
	}
	x := &execution{e: e, spec: s.Clone(), ns: pod.Namespace, pod: pod, report: report, created: true, started: true, adopted: true}
	if err := e.register(x); err != nil {
		return false, fmt.Errorf("kube: adopt %q: %w", s.ID, err)
	}
	// The informer may have the newer state; the pod read here may
	// already be final.
	if cur, ok := e.cached(pod.Namespace, pod.Name); ok {
		pod = cur
	}
	x.observe(pod, false)
	return true, nil
}

// DeleteOrphans deletes the pods of this instance whose execution known
// says the engine does not know (an attempt the store does not record as
// running), and returns their ids. The engine calls it once it has
// adopted what it knows, after a restart or a failover.
func (e *Executor) DeleteOrphans(ctx context.Context, known func(id string) bool) ([]string, error) {
	pods, err := e.listPods(ctx)
	if err != nil {
		return nil, err
	}
	var gone []string
	var errs []error
	for _, p := range pods {
		id := p.Annotations[AnnotationExecution]
		if p.DeletionTimestamp != nil || known(id) || e.lookup(id) != nil {
			continue
		}
		grace := int64(0)
		err := e.cli.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete orphan pod %s/%s: %w", p.Namespace, p.Name, err))
			continue
		}
		e.log.Info("deleted orphan pod", "namespace", p.Namespace, "pod", p.Name, "execution", id)
		gone = append(gone, id)
	}
	return gone, errors.Join(errs...)
}

// Logs streams execution id's main container output; with follow, until
// the container ends. A pod not yet running is waited for when following.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	name := PodName(id)
	first := e.cfg.Namespace
	if x := e.lookup(id); x != nil {
		first = x.ns
	}
	pod, err := e.findPod(ctx, id, first)
	if err != nil {
		return nil, fmt.Errorf("kube: logs %q: %w", id, err)
	}
	if pod == nil {
		return nil, fmt.Errorf("kube: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	ns := pod.Namespace
	for follow && pod.Status.Phase == corev1.PodPending {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kube: logs %q: %w", id, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if pod, err = e.cli.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("kube: logs %q: %w", id, err)
		}
	}
	rc, err := e.cli.CoreV1().Pods(ns).GetLogs(name, &corev1.PodLogOptions{Container: ContainerName, Follow: follow}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube: logs %q: %w", id, err)
	}
	return rc, nil
}
