package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/executors/docker/dockertest"
	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// The launcher end to end without a control plane. kwok runs no
// containers, so this test plays the kubelet with Docker: the kube
// executor creates its pods in client-go's fake clientset (the one fake:
// it stands for the API server), and a loop here runs each pod's init
// container and main container as real Docker containers of locally built
// images, sharing the pod's two emptyDirs as host directories, on the host
// network so that the launcher reaches the real Skiff API this test
// serves on loopback, with the pod's own command and environment. It then
// writes the containers' end into the pod's status as a kubelet does
// (exit code, termination message). Docker has no termination-log file:
// the loop adds SKIFF_LAUNCH_TERMINATION, a file in the launcher's
// emptyDir, and copies it into the status.

const launcherPipeline = `name: hello
parameters:
  who: {type: string, default: world}
tasks:
  - name: greet
    command: [/bin/sh, -c, 'printf "hello, %s\n" "$1" > "$2"', greet]
    args: ["{{inputs.who}}", "{{outputs.greeting}}"]
    inputs:
      who: {type: string, param: who}
    outputs:
      greeting: Artifact
  - name: shout
    command: [/bin/sh, -c, 'tr "a-z" "A-Z" < "$1" > "$2" && wc -c < "$1" | tr -d " " > "$3"', shout]
    args: ["{{inputs.text}}", "{{outputs.loud}}", "{{outputs.chars}}"]
    inputs:
      text: {type: Artifact, from: greet.greeting}
    outputs:
      loud: Artifact
      chars: int
outputs:
  loud: shout.loud
  chars: shout.chars
`

// launcherImage builds the Skiff image as `make image` does (a static
// skiff and busybox in a docker-imported root) and returns its name.
func launcherImage(t *testing.T) string {
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
	build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, "bin", "skiff"), "../../cmd/skiff")
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
		t.Fatalf("docker import: %v\n%s", err, out)
	}
	_ = tar.Wait()
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", img).Run() })
	return img
}

// dockerKubelet runs the pods of cli's namespace as Docker containers.
type dockerKubelet struct {
	t    *testing.T
	cli  *fake.Clientset
	ns   string
	dir  string
	mu   sync.Mutex
	seen map[string]bool
	wg   sync.WaitGroup
}

func (k *dockerKubelet) loop(ctx context.Context) {
	for ctx.Err() == nil {
		pods, err := k.cli.CoreV1().Pods(k.ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for i := range pods.Items {
				p := pods.Items[i]
				k.mu.Lock()
				isNew := !k.seen[p.Name]
				k.seen[p.Name] = true
				k.mu.Unlock()
				if isNew {
					k.wg.Add(1)
					go func() { defer k.wg.Done(); k.run(ctx, &p) }()
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (k *dockerKubelet) setStatus(ctx context.Context, name string, f func(*corev1.PodStatus)) {
	p, err := k.cli.CoreV1().Pods(k.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		k.t.Errorf("kubelet: get %s: %v", name, err)
		return
	}
	f(&p.Status)
	if _, err := k.cli.CoreV1().Pods(k.ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		k.t.Errorf("kubelet: status %s: %v", name, err)
	}
}

// run runs pod p's init containers, then its main container.
func (k *dockerKubelet) run(ctx context.Context, p *corev1.Pod) {
	vols := map[string]string{}
	for _, v := range p.Spec.Volumes {
		if v.EmptyDir == nil {
			k.t.Errorf("pod %s: volume %s is not an emptyDir", p.Name, v.Name)
			return
		}
		vols[v.Name] = filepath.Join(k.dir, p.Name, v.Name)
		if err := os.MkdirAll(vols[v.Name], 0o777); err != nil {
			k.t.Error(err)
			return
		}
	}
	term := filepath.Join(vols["skiff-launcher"], "termination-log")
	for _, c := range p.Spec.InitContainers {
		if code, out := k.container(ctx, p, c, vols, ""); code != 0 {
			k.t.Errorf("pod %s: init container %s: exit %d\n%s", p.Name, c.Name, code, out)
			return
		}
	}
	k.setStatus(ctx, p.Name, func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning })
	main := p.Spec.Containers[0]
	code, out := k.container(ctx, p, main, vols, "/skiff-launcher/termination-log")
	k.t.Logf("pod %s: exit %d\n%s", p.Name, code, out)
	msg, _ := os.ReadFile(term)
	k.setStatus(ctx, p.Name, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodSucceeded
		if code != 0 {
			s.Phase = corev1.PodFailed
		}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: main.Name, State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: int32(code), Message: string(msg)}}}}
	})
}

// container runs c as `docker run` with the pod's mounts, working dir,
// command and environment; its exit code and output.
func (k *dockerKubelet) container(ctx context.Context, p *corev1.Pod, c corev1.Container, vols map[string]string, term string) (int, string) {
	args := []string{"run", "--rm", "--network", "host", "--pull", "never"}
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
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		return -1, err.Error() + "\n" + string(out)
	}
	return 0, string(out)
}

type node struct {
	st    *store.Store
	blobs *blob.Store
	eng   *engine.Engine
	url   string
}

// startNode serves the API on a loopback port, with an engine over execs
// (built by mk once the URL is known).
func startNode(t *testing.T, keys *launch.Keys, mk func(url string, blobs *blob.Store) executors.Executor) *node {
	t.Helper()
	dir := t.TempDir()
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = true
	st, err := store.Open(context.Background(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	x := mk(url, blobs)
	ecfg := engine.DefaultConfig(st, x)
	ecfg.DefaultExecutor = x.Name()
	eng, err := engine.New(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Run(ctx); close(done) }()
	srv, err := api.New(api.Config{Store: st, Engine: eng, Blobs: blobs, NoAuth: true, LaunchKeys: keys}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetReady(true)
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		_ = hs.Close()
		cancel()
		<-done
		_ = st.Close()
	})
	return &node{st: st, blobs: blobs, eng: eng, url: url}
}

// runHello submits the pipeline with every task on image and waits for
// its end; it returns the run and its tasks.
func (n *node) runHello(t *testing.T, image string) (store.Run, []store.Task) {
	t.Helper()
	text := regexp.MustCompile(`(?m)^(  - name: \S+)$`).ReplaceAllString(launcherPipeline, "$1\n    image: "+image)
	plan, err := spec.ParseSkiff([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	id, err := n.eng.Submit(context.Background(), plan, map[string]json.RawMessage{"who": json.RawMessage(`"kube"`)}, engine.SubmitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		r, err := n.st.GetRun(id)
		if err == nil && r.State.Final() {
			ts, _ := n.st.Tasks(id)
			return r, ts
		}
		if time.Now().After(deadline) {
			ts, _ := n.st.Tasks(id)
			t.Fatalf("run %s did not finish: %+v", id, ts)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestLauncher_DockerEndToEnd(t *testing.T) {
	img := launcherImage(t)
	keys := launch.RandomKeys()
	cli := fake.NewSimpleClientset()
	kl := &dockerKubelet{t: t, cli: cli, ns: "skiff", dir: t.TempDir(), seen: map[string]bool{}}
	n := startNode(t, keys, func(url string, blobs *blob.Store) executors.Executor {
		cfg := kube.DefaultConfig(cli)
		cfg.Namespace = "skiff"
		cfg.Launcher = &kube.Launcher{Image: img, API: url, Keys: keys, Blobs: blobs}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		x, err := kube.New(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(x.Close)
		return x
	})
	ctx, cancel := context.WithCancel(context.Background())
	go kl.loop(ctx)
	t.Cleanup(func() { cancel(); kl.wg.Wait() })

	run, tasks := n.runHello(t, dockertest.Image)
	if run.State != spec.RunSucceeded {
		t.Fatalf("run %s: %+v", run.State, tasks)
	}
	// The outputs, through the API.
	res, err := http.Get(n.url + "/apis/skiff/v1/runs/" + run.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var sum struct {
		Outputs map[string]json.RawMessage `json:"outputs"`
	}
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, &sum); err != nil || string(sum.Outputs["chars"]) != "12" {
		t.Fatalf("run summary outputs %s (%v): want chars 12 (\"hello, kube\\n\")", body, err)
	}
	var loud spec.ArtifactRef
	for _, tk := range tasks {
		if v, ok := tk.Outputs["loud"]; ok && v.Artifact != nil {
			loud = *v.Artifact
		}
	}
	a, err := http.Get(n.url + "/apis/skiff/v1/artifacts/" + loud.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Body.Close()
	if b, _ := io.ReadAll(a.Body); a.StatusCode != 200 || string(b) != "HELLO, KUBE\n" {
		t.Fatalf("artifact loud: %d %q", a.StatusCode, b)
	}
	for _, tk := range tasks {
		if len(tk.Attempts) == 0 || tk.Attempts[0].Logs == nil {
			t.Errorf("task %s: no stored log", tk.Name)
		}
		t.Logf("kube+launcher task %s: %s", tk.Name, tk.FinishedAt.Sub(tk.StartedAt).Round(time.Millisecond))
	}
	t.Logf("kube+launcher run: %s", runWall(tasks))

	// The same steps on the docker executor, for the launcher's overhead.
	dn := startNode(t, nil, func(_ string, blobs *blob.Store) executors.Executor {
		cfg := docker.DefaultConfig(t.TempDir(), blobs)
		cfg.PullPolicy = docker.PullNever
		x, err := docker.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return x
	})
	drun, dtasks := dn.runHello(t, dockertest.Image)
	if drun.State != spec.RunSucceeded {
		t.Fatalf("docker run %s: %+v", drun.State, dtasks)
	}
	for _, tk := range dtasks {
		t.Logf("docker task %s: %s", tk.Name, tk.FinishedAt.Sub(tk.StartedAt).Round(time.Millisecond))
	}
	t.Logf("docker run: %s", runWall(dtasks))
}

func runWall(ts []store.Task) time.Duration {
	var first, last time.Time
	for _, tk := range ts {
		if first.IsZero() || tk.StartedAt.Before(first) {
			first = tk.StartedAt
		}
		if tk.FinishedAt.After(last) {
			last = tk.FinishedAt
		}
	}
	return last.Sub(first).Round(time.Millisecond)
}

// The engine deletes the kube executor's orphans after a resume.
var _ engine.OrphanDeleter = (*kube.Executor)(nil)
