package kube_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/executors/docker/dockertest"
	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/kube/kubelettest"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// The launcher end to end without a control plane. kwok runs no
// containers, so this test plays the kubelet with Docker
// (kubelettest): the kube executor creates its pods in client-go's fake
// clientset (the one fake: it stands for the API server), and the
// kubelet runs each pod's init container and main container as real
// Docker containers of locally built images, sharing the pod's two
// emptyDirs as host directories, on the host network so that the
// launcher reaches the real Skiff API this test serves on loopback, with
// the pod's own command and environment, and writes their end into the
// pod's status (exit code, termination message).

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
	img := kubelettest.LauncherImage(t)
	keys := launch.RandomKeys()
	cli := fake.NewSimpleClientset()
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
	kubelettest.Start(t, kubelettest.Config{Client: cli, Namespace: "skiff"})

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
