package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
	pods cache.SharedIndexInformer
	stop chan struct{}

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
	f := informers.NewSharedInformerFactoryWithOptions(cfg.Client, DefaultResync,
		informers.WithNamespace(cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = sel.String() }))
	e := &Executor{
		cfg: cfg, cli: cfg.Client, log: cfg.Logger, sel: sel,
		pods: f.Core().V1().Pods().Informer(), stop: make(chan struct{}),
		live: map[string]*execution{},
	}
	if _, err := e.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.onPod(obj, false) },
		UpdateFunc: func(_, obj any) { e.onPod(obj, false) },
		DeleteFunc: func(obj any) { e.onPod(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("kube: pod informer: %w", err)
	}
	f.Start(e.stop)
	if !cache.WaitForCacheSync(ctx.Done(), e.pods.HasSynced) {
		close(e.stop)
		return nil, fmt.Errorf("kube: %w: pod informer did not sync: %v", ErrNoCluster, ctx.Err())
	}
	return e, nil
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

// Namespace is where the executor's pods live.
func (e *Executor) Namespace() string { return e.cfg.Namespace }

// Start builds the pod (a bad spec or kubernetes setting is rejected here,
// naming the field) and creates it in the background.
func (e *Executor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	pod, err := BuildPod(e.cfg, s)
	if err != nil {
		id := ""
		if s != nil {
			id = s.ID
		}
		return fmt.Errorf("kube: start %q: %w", id, err)
	}
	if report == nil {
		return fmt.Errorf("kube: start %q: %w: nil report func", s.ID, executors.ErrBadSpec)
	}
	x := &execution{e: e, spec: s.Clone(), pod: pod, report: report}
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
	// The pod's name, from the immutable id: x.pod is observe's, under
	// x.mu.
	if x == nil || PodName(x.spec.ID) != pod.Name {
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
	pods, err := e.cli.CoreV1().Pods(e.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: e.sel.String()})
	if err != nil {
		return nil, fmt.Errorf("kube: list pods: %w", err)
	}
	var ids []string
	for _, p := range pods.Items {
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
	pod, err := e.cli.CoreV1().Pods(e.cfg.Namespace).Get(ctx, PodName(s.ID), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("kube: adopt %q: %w", s.ID, err)
	}
	if pod.Annotations[AnnotationExecution] != s.ID || pod.Labels[LabelInstance] != e.cfg.Instance {
		return false, nil
	}
	x := &execution{e: e, spec: s.Clone(), pod: pod, report: report, created: true, started: true, adopted: true}
	if err := e.register(x); err != nil {
		return false, fmt.Errorf("kube: adopt %q: %w", s.ID, err)
	}
	// The informer may have the newer state; the pod read here may
	// already be final.
	if cur, ok, _ := e.pods.GetStore().GetByKey(pod.Namespace + "/" + pod.Name); ok {
		pod = cur.(*corev1.Pod)
	}
	x.observe(pod, false)
	return true, nil
}

// DeleteOrphans deletes the pods of this instance whose execution known
// says the engine does not know (an attempt the store does not record as
// running), and returns their ids. The engine calls it once it has
// adopted what it knows, after a restart or a failover.
func (e *Executor) DeleteOrphans(ctx context.Context, known func(id string) bool) ([]string, error) {
	pods, err := e.cli.CoreV1().Pods(e.cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: e.sel.String()})
	if err != nil {
		return nil, fmt.Errorf("kube: list pods: %w", err)
	}
	var gone []string
	var errs []error
	for _, p := range pods.Items {
		id := p.Annotations[AnnotationExecution]
		if p.DeletionTimestamp != nil || known(id) || e.lookup(id) != nil {
			continue
		}
		grace := int64(0)
		err := e.cli.CoreV1().Pods(e.cfg.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete orphan pod %s: %w", p.Name, err))
			continue
		}
		e.log.Info("deleted orphan pod", "pod", p.Name, "execution", id)
		gone = append(gone, id)
	}
	return gone, errors.Join(errs...)
}

// Logs streams execution id's main container output; with follow, until
// the container ends. A pod not yet running is waited for when following.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	name := PodName(id)
	pod, err := e.cli.CoreV1().Pods(e.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("kube: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	if err != nil {
		return nil, fmt.Errorf("kube: logs %q: %w", id, err)
	}
	if pod.Annotations[AnnotationExecution] != id {
		return nil, fmt.Errorf("kube: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	for follow && pod.Status.Phase == corev1.PodPending {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("kube: logs %q: %w", id, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if pod, err = e.cli.CoreV1().Pods(e.cfg.Namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return nil, fmt.Errorf("kube: logs %q: %w", id, err)
		}
	}
	rc, err := e.cli.CoreV1().Pods(e.cfg.Namespace).GetLogs(name, &corev1.PodLogOptions{Container: ContainerName, Follow: follow}).Stream(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube: logs %q: %w", id, err)
	}
	return rc, nil
}
