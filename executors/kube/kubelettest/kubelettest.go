// Package kubelettest plays the kubelet with Docker, for tests of the kube
// executor's pods that must really run: the launcher's (init container,
// main container under `skiff launch`, artifacts through the Skiff API).
// kwok runs no containers, and client-go's fake clientset has no kubelet.
//
// A Kubelet watches the pods of a namespace through any
// kubernetes.Interface (a fake clientset, or a real API server where it
// runs only the pods bound to its node) and runs each pod's init
// containers, then its main container, as Docker containers of local
// images (docker run --pull never), with the pod's command, args, env and
// working dir, its emptyDirs as host directories, on the host network (so
// that a launcher reaches a Skiff API the test serves on loopback). It
// writes the pod's phase and the main container's end (exit code,
// termination message) into the pod's status as a kubelet does. Docker has
// no termination-log file: the kubelet sets SKIFF_LAUNCH_TERMINATION to a
// file in the launcher's emptyDir and copies it into the status. A pod
// being deleted has its containers removed and is deleted at once (grace
// period 0), as a kubelet confirms a deletion.
package kubelettest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/skiffml/skiff/executors/docker/dockertest"
	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/launch"
)

// PollInterval is how often the kubelet lists the pods.
const PollInterval = 20 * time.Millisecond

// Config says which pods a Kubelet runs.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	// Node: run only the pods bound to this node (spec.nodeName), as a
	// kubelet does; "" runs every pod of Namespace (a fake clientset, where
	// no scheduler binds pods).
	Node string
}

// Kubelet runs pods as Docker containers; Start makes one.
type Kubelet struct {
	t   testing.TB
	cfg Config
	dir string

	mu   sync.Mutex
	pods map[string]context.CancelFunc // by pod name: every pod it started
	wg   sync.WaitGroup
}

// Start runs the pods cfg selects until the test ends: its cleanup stops
// the kubelet, removes the containers still running and waits for them.
// It skips the test (fails it with CI=true) without Docker and the test
// image (dockertest).
func Start(t testing.TB, cfg Config) *Kubelet {
	t.Helper()
	dockertest.Client(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command")
	}
	k := &Kubelet{t: t, cfg: cfg, dir: t.TempDir(), pods: map[string]context.CancelFunc{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); k.loop(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		k.wg.Wait()
	})
	return k
}

// Pods returns the names of the pods the kubelet started, sorted.
func (k *Kubelet) Pods() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for name := range k.pods {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

func (k *Kubelet) loop(ctx context.Context) {
	for ctx.Err() == nil {
		k.sync(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(PollInterval):
		}
	}
}

// sync starts the pods not seen before and finishes the deletion of
// those being deleted.
func (k *Kubelet) sync(ctx context.Context) {
	pods, err := k.cfg.Client.CoreV1().Pods(k.cfg.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if k.cfg.Node != "" && p.Spec.NodeName != k.cfg.Node {
			continue
		}
		k.mu.Lock()
		stop, seen := k.pods[p.Name]
		if p.DeletionTimestamp != nil {
			k.mu.Unlock()
			if seen {
				stop()
			}
			zero := int64(0)
			err := k.cfg.Client.CoreV1().Pods(k.cfg.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
			if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
				k.t.Logf("kubelet: delete pod %s: %v", p.Name, err)
			}
			continue
		}
		if seen {
			k.mu.Unlock()
			continue
		}
		pctx, cancel := context.WithCancel(ctx)
		k.pods[p.Name] = cancel
		k.wg.Add(1)
		k.mu.Unlock()
		go func() {
			defer k.wg.Done()
			defer cancel()
			k.run(pctx, p.DeepCopy())
		}()
	}
}

// setStatus changes pod name's status with f (again on a conflict). A
// pod gone or a kubelet stopped is no error.
func (k *Kubelet) setStatus(ctx context.Context, name string, f func(*corev1.PodStatus)) {
	pods := k.cfg.Client.CoreV1().Pods(k.cfg.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		f(&p.Status)
		_, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		return err
	})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		k.t.Errorf("kubelet: status of pod %s: %v", name, err)
	}
}

// run runs pod p's init containers, then its main container.
func (k *Kubelet) run(ctx context.Context, p *corev1.Pod) {
	vols := map[string]string{}
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir == nil {
			k.t.Errorf("kubelet: pod %s: volume %s is not an emptyDir", p.Name, v.Name)
			return
		}
		vols[v.Name] = filepath.Join(k.dir, p.Name, v.Name)
		if err := os.MkdirAll(vols[v.Name], 0o777); err != nil {
			k.t.Error(err)
			return
		}
	}
	now := metav1.Now()
	for _, c := range p.Spec.InitContainers {
		if code, out := k.container(ctx, p, c, vols, ""); code != 0 {
			if ctx.Err() == nil {
				k.t.Errorf("kubelet: pod %s: init container %s: exit %d\n%s", p.Name, c.Name, code, out)
			}
			return
		}
	}
	main := p.Spec.Containers[0]
	k.setStatus(ctx, p.Name, func(s *corev1.PodStatus) {
		s.Phase, s.StartTime = corev1.PodRunning, &now
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: main.Name, Image: main.Image, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
	})
	term, termIn := "", ""
	if dir, ok := vols[launcherVolume(p)]; ok {
		term, termIn = filepath.Join(dir, "termination-log"), kube.LauncherDir+"/termination-log"
	}
	code, out := k.container(ctx, p, main, vols, termIn)
	if ctx.Err() != nil {
		return // deleted, or the test ends
	}
	k.t.Logf("kubelet: pod %s: exit %d\n%s", p.Name, code, out)
	var msg []byte
	if term != "" {
		msg, _ = os.ReadFile(term)
	}
	end := metav1.Now()
	k.setStatus(ctx, p.Name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodSucceeded
		if code != 0 {
			s.Phase = corev1.PodFailed
		}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: main.Name, Image: main.Image, Started: ptr(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: int32(code), Message: string(msg), StartedAt: now, FinishedAt: end}}}}
	})
}

// launcherVolume is the name of the volume mounted at kube.LauncherDir in
// p's main container ("" when none).
func launcherVolume(p *corev1.Pod) string {
	for _, m := range p.Spec.Containers[0].VolumeMounts {
		if m.MountPath == kube.LauncherDir {
			return m.Name
		}
	}
	return ""
}

// container runs c as `docker run` with the pod's mounts, working dir,
// command and environment; its exit code and output. term, when set, is
// the launcher's termination file inside the container.
func (k *Kubelet) container(ctx context.Context, p *corev1.Pod, c corev1.Container, vols map[string]string, term string) (int, string) {
	name := "skiff-kubelet-" + p.Name + "-" + c.Name
	args := []string{"run", "--rm", "--name", name, "--network", "host", "--pull", "never"}
	for _, m := range c.VolumeMounts {
		args = append(args, "-v", vols[m.Name]+":"+m.MountPath)
	}
	if c.WorkingDir != "" {
		args = append(args, "-w", c.WorkingDir)
	}
	for _, e := range c.Env {
		args = append(args, "-e", e.Name+"="+e.Value)
	}
	if term != "" {
		args = append(args, "-e", launch.EnvTermination+"="+term)
	}
	if len(c.Command) > 0 {
		args = append(args, "--entrypoint", c.Command[0], c.Image)
		args = append(args, c.Command[1:]...)
	} else {
		args = append(args, c.Image)
	}
	args = append(args, c.Args...)
	cmd := exec.CommandContext(ctx, "docker", args...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		// The docker command was killed, not its container.
		_ = exec.Command("docker", "rm", "-f", name).Run()
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		return -1, err.Error() + "\n" + string(out)
	}
	return 0, string(out)
}

func ptr[T any](v T) *T { return &v }

// LauncherImage builds the Skiff image as `make image` does (a static
// skiff at /bin/skiff, and busybox's sh, cat, tr, wc and printf, in a
// docker-imported root) and returns its name; the test's cleanup removes
// it. It skips the test as Start does.
func LauncherImage(t testing.TB) string {
	t.Helper()
	dockertest.Client(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker command")
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, "bin", "skiff"), "github.com/skiffml/skiff/cmd/skiff")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build skiff: %v\n%s", err, out)
	}
	bb, err := os.ReadFile(dockertest.BusyboxPath)
	if err != nil {
		t.Skipf("busybox: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "cat", "tr", "wc", "printf"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	img := fmt.Sprintf("skiff-test/launcher:%d", time.Now().UnixNano())
	tar := exec.Command("tar", "-C", root, "--numeric-owner", "--owner=0", "--group=0", "-cf", "-", ".")
	imp := exec.Command("docker", "import", "--change", "ENV PATH=/bin", "-", img)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if out, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, strings.TrimSpace(string(out)))
	}
	_ = tar.Wait()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", img).Run() })
	return img
}
