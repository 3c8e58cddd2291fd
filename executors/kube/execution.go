package kube

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// execution is one pod this executor follows.
type execution struct {
	e      *Executor
	spec   *executors.Spec
	ns     string // the Kubernetes namespace of its pod
	report func(executors.Event)

	mu       sync.Mutex
	pod      *corev1.Pod // the pod to create, then the latest seen
	created  bool
	started  bool
	adopted  bool
	canceled bool
	timedOut bool
	done     bool
	waiting  string    // the last waiting reason reported
	pullFrom time.Time // when an image pull first failed
	timer    *time.Timer
}

// create creates the pod, or finds the one an earlier try created.
func (x *execution) create(ctx context.Context) {
	x.mu.Lock()
	if x.canceled {
		x.mu.Unlock()
		x.finish(executors.Event{State: spec.TaskCanceled, ExitCode: -1, Reason: "canceled before the pod was created"}, false)
		return
	}
	tmpl := x.pod
	x.mu.Unlock()
	if _, err := x.e.watch(ctx, tmpl.Namespace); err != nil {
		x.finish(executors.Event{State: spec.TaskFailed, ExitCode: -1, Reason: "watch pods: " + err.Error()}, false)
		return
	}
	created, err := x.e.cli.CoreV1().Pods(tmpl.Namespace).Create(ctx, tmpl, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// A retry after a restart: the pod is this execution's when its
		// annotation says so; never a twin.
		created, err = x.e.cli.CoreV1().Pods(tmpl.Namespace).Get(ctx, tmpl.Name, metav1.GetOptions{})
		if err == nil && created.Annotations[AnnotationExecution] != x.spec.ID {
			err = fmt.Errorf("pod %s exists and belongs to execution %q", tmpl.Name, created.Annotations[AnnotationExecution])
		}
	}
	if err != nil {
		x.finish(executors.Event{State: spec.TaskFailed, ExitCode: -1, Reason: "create pod: " + err.Error()}, false)
		return
	}
	x.mu.Lock()
	x.created = true
	canceled := x.canceled
	x.mu.Unlock()
	if canceled {
		_ = x.deletePod(ctx, x.e.cfg.GracePeriod)
		return
	}
	// The informer may have seen the pod before created was set.
	if cur, ok := x.e.cached(created.Namespace, created.Name); ok {
		created = cur
	}
	x.observe(created, false)
}

// markCanceled records a cancel; it reports whether the pod exists (or
// is being created) so that the caller must delete it.
func (x *execution) markCanceled() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done {
		return false
	}
	x.canceled = true
	return x.created
}

// deletePod deletes the pod with grace; a pod already gone ends the
// execution.
func (x *execution) deletePod(ctx context.Context, grace time.Duration) error {
	secs := int64(math.Ceil(grace.Seconds()))
	err := x.e.cli.CoreV1().Pods(x.pod.Namespace).Delete(ctx, x.pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &secs})
	if apierrors.IsNotFound(err) {
		x.observe(nil, true)
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube: delete pod %s: %w", x.pod.Name, err)
	}
	return nil
}

func (x *execution) stopTimer() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.timer != nil {
		x.timer.Stop()
	}
}

// observe acts on the pod's latest state (nil with deleted: gone).
func (x *execution) observe(pod *corev1.Pod, deleted bool) {
	x.mu.Lock()
	if x.done || (!x.created && !deleted) {
		x.mu.Unlock()
		return
	}
	if pod != nil {
		x.pod = pod
	}
	now := x.e.cfg.Clock()
	var evs []executors.Event
	var final *executors.Event
	p := x.pod
	running := p.Status.Phase == corev1.PodRunning || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	if running && !x.started {
		x.started = true
		evs = append(evs, executors.Event{Kind: executors.EventStarted})
		if x.spec.Timeout > 0 {
			x.timer = time.AfterFunc(x.spec.Timeout, x.onTimeout)
		}
	}
	switch {
	case x.canceled && (deleted || terminal(p)):
		final = &executors.Event{State: spec.TaskCanceled, ExitCode: -1, Reason: "canceled"}
	case x.timedOut && (deleted || terminal(p)):
		final = &executors.Event{State: spec.TaskFailed, ExitCode: -1, Reason: fmt.Sprintf("timed out after %s", x.spec.Timeout)}
	case terminal(p):
		ev := exitEvent(p, x.spec.Timeout)
		final = &ev
	case deleted:
		final = &executors.Event{State: spec.TaskFailed, ExitCode: -1, Reason: deletedReason(p)}
	case p.Status.Phase == corev1.PodPending:
		reason, fatal := waitingReason(p)
		if isPullFailure(p) {
			if x.pullFrom.IsZero() {
				x.pullFrom = now
			} else if now.Sub(x.pullFrom) > x.e.cfg.ImagePullTimeout {
				fatal = true
				reason += fmt.Sprintf(" (for more than %s)", x.e.cfg.ImagePullTimeout)
			}
		}
		if fatal {
			final = &executors.Event{State: spec.TaskFailed, ExitCode: -1, Reason: reason}
		} else if reason != "" && reason != x.waiting {
			x.waiting = reason
			evs = append(evs, executors.Event{Kind: executors.EventWaiting, Reason: reason})
		}
	}
	launched := final != nil && !x.canceled && !x.timedOut && terminal(p) && needsLauncher(x.spec)
	x.mu.Unlock()
	if launched {
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		*final = x.e.withReport(ctx, x.spec, p, *final)
		cancel()
	}
	for _, ev := range evs {
		ev.ID, ev.Time = x.spec.ID, now
		x.report(ev)
	}
	if final != nil {
		x.finish(*final, !deleted)
	}
}

// onTimeout deletes the pod of an execution past its timeout.
func (x *execution) onTimeout() {
	x.mu.Lock()
	if x.done || x.canceled {
		x.mu.Unlock()
		return
	}
	x.timedOut = true
	x.mu.Unlock()
	x.e.background(func(ctx context.Context) {
		if err := x.deletePod(ctx, x.e.cfg.GracePeriod); err != nil {
			x.e.log.Warn("delete timed-out pod", "execution", x.spec.ID, "err", err)
		}
	})
}

// finish reports the execution's end once, and deletes its pod (when it
// still exists and KeepPods is off).
func (x *execution) finish(ev executors.Event, podExists bool) {
	x.mu.Lock()
	if x.done {
		x.mu.Unlock()
		return
	}
	x.done = true
	if x.timer != nil {
		x.timer.Stop()
	}
	started := x.started
	x.mu.Unlock()
	x.e.forget(x)
	now := x.e.cfg.Clock()
	if !started && ev.State != spec.TaskCanceled && podExists {
		x.report(executors.Event{ID: x.spec.ID, Kind: executors.EventStarted, Time: now})
	}
	ev.ID, ev.Kind, ev.Time = x.spec.ID, executors.EventExited, now
	x.report(ev)
	if podExists && !x.e.cfg.KeepPods {
		x.e.background(func(ctx context.Context) {
			zero := int64(0)
			err := x.e.cli.CoreV1().Pods(x.pod.Namespace).Delete(ctx, x.pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			if err != nil && !apierrors.IsNotFound(err) {
				x.e.log.Warn("delete finished pod", "pod", x.pod.Name, "err", err)
			}
		})
	}
}

func terminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// mainStatus is the step container's status, or nil.
func mainStatus(p *corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == ContainerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// exitEvent reads a finished pod: its exit code and, on failure, why.
func exitEvent(p *corev1.Pod, timeout time.Duration) executors.Event {
	ev := executors.Event{State: spec.TaskFailed, ExitCode: -1}
	switch p.Status.Reason {
	case "DeadlineExceeded":
		ev.Reason = "DeadlineExceeded: the pod ran past its activeDeadlineSeconds"
		if timeout > 0 {
			ev.Reason = fmt.Sprintf("timed out after %s (DeadlineExceeded)", timeout)
		}
		return ev
	case "Evicted":
		ev.Reason = joinReason("Evicted", p.Status.Message)
		return ev
	}
	cs := mainStatus(p)
	if cs == nil || cs.State.Terminated == nil {
		if p.Status.Phase == corev1.PodSucceeded {
			ev.State, ev.ExitCode = spec.TaskSucceeded, 0
			return ev
		}
		ev.Reason = joinReason("pod failed", strings.TrimSpace(p.Status.Reason+" "+p.Status.Message))
		return ev
	}
	t := cs.State.Terminated
	ev.ExitCode = int(t.ExitCode)
	switch {
	case t.Reason == "OOMKilled":
		ev.Reason = fmt.Sprintf("OOMKilled (exit code %d)", t.ExitCode)
	case t.ExitCode != 0:
		ev.Reason = joinReason(fmt.Sprintf("exit code %d", t.ExitCode), t.Message)
	case p.Status.Phase == corev1.PodFailed:
		ev.Reason = joinReason("pod failed", strings.TrimSpace(p.Status.Reason+" "+p.Status.Message))
	default:
		ev.State = spec.TaskSucceeded
	}
	return ev
}

func joinReason(what, detail string) string {
	if detail == "" {
		return what
	}
	return what + ": " + detail
}

// deletedReason says why a pod that vanished before ending is lost.
func deletedReason(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return joinReason("pod deleted ("+c.Reason+")", c.Message)
		}
	}
	return "pod deleted before it ended (not by Skiff)"
}

// waitingReason says why a pending pod waits, and whether it never will
// run (a bad image name, a pull forbidden by the policy).
func waitingReason(p *corev1.Pod) (string, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return joinReason(c.Reason, c.Message), false
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil || w.Reason == "" || w.Reason == "ContainerCreating" || w.Reason == "PodInitializing" {
			continue
		}
		switch w.Reason {
		case "ErrImagePull", "ImagePullBackOff":
			return fmt.Sprintf("%s: image %s", w.Reason, imageOf(p, cs.Name)) + msgSuffix(w.Message), false
		case "InvalidImageName", "ErrImageNeverPull":
			return fmt.Sprintf("%s: image %s", w.Reason, imageOf(p, cs.Name)) + msgSuffix(w.Message), true
		default:
			return joinReason(w.Reason, w.Message), false
		}
	}
	return "", false
}

func msgSuffix(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

func isPullFailure(p *corev1.Pod) bool {
	for _, cs := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") {
			return true
		}
	}
	return false
}

// imageOf is the image of the pod's container name.
func imageOf(p *corev1.Pod, name string) string {
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == name {
			return c.Image
		}
	}
	return "?"
}
