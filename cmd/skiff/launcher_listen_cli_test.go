package main

// Tests of the workstation's kube launcher port (skiff run
// --kube-launcher-listen) that need no control plane: a fake Kubernetes
// API server here lets the kube executor start and create pods that never
// run. TestCLI_KubeLauncherRunsArtifactPipeline (kube_launcher_cli_test.go)
// runs such a pipeline for real against make kube-up.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiffml/skiff/executors/launch"
)

// launcherStep is a Skiff pipeline of one step with an output: on kube it
// runs under the launcher.
const launcherStep = `name: launcher-step
tasks:
  - name: s0
    image: registry.example/step:1
    command: [sh, -c, 'echo hi > "$0"', "{{outputs.out}}"]
    outputs:
      out: Artifact
`

// envWithoutKube is this process's environment without the SKIFF_KUBE*
// variables (make test-kube sets SKIFF_KUBECONFIG).
func envWithoutKube() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SKIFF_KUBE") {
			env = append(env, kv)
		}
	}
	return env
}

// freePort is a loopback port nothing listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// fakeKubeAPI serves what the kube executor asks of an API server to
// start (list and watch pods) and to create pods, which it sends on the
// returned channel and never runs; it returns a kubeconfig for it.
func fakeKubeAPI(t *testing.T) (string, <-chan corev1.Pod) {
	t.Helper()
	created := make(chan corev1.Pod, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		isPods := strings.HasSuffix(r.URL.Path, "/pods")
		switch {
		case isPods && r.Method == http.MethodGet && r.URL.Query().Get("watch") != "":
			w.WriteHeader(http.StatusOK)
			if r.URL.Query().Get("sendInitialEvents") == "true" {
				fmt.Fprintln(w, `{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"1","annotations":{"k8s.io/initial-events-end":"true"}}}}`)
			}
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case isPods && r.Method == http.MethodGet:
			fmt.Fprint(w, `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"1"},"items":[]}`)
		case isPods && r.Method == http.MethodPost:
			// The body may be protobuf: the clientset's codecs read either.
			body, _ := io.ReadAll(r.Body)
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, nil)
			pp, ok := obj.(*corev1.Pod)
			if err != nil || !ok {
				t.Errorf("fake API server: create pod: %v (%s)", err, r.Header.Get("Content-Type"))
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			p := *pp
			p.Kind, p.APIVersion = "Pod", "v1"
			p.ResourceVersion, p.UID = "2", types.UID("uid-"+p.Name)
			select {
			case created <- p:
			default:
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(&p)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		}
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close() })
	kc := writeFile(t, t.TempDir(), "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q}}]
users: [{name: u, user: {}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: skiff}}]
current-context: x
`, srv.URL))
	return kc, created
}

// TestCLI_WorkstationLauncherPortServesOnlyLauncherRoutes: skiff run
// --kube-launcher-listen serves the launcher routes, and nothing else, on
// that port: no user route, no health check, and the launcher routes
// only with a launcher token of this process (the pod's works there).
func TestCLI_WorkstationLauncherPortServesOnlyLauncherRoutes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc, created := fakeKubeAPI(t)
	p := writeFile(t, dir, "p.yaml", launcherStep)
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	run := exec.Command(skiffBin, "--data-dir", filepath.Join(dir, "data"), "run", p, "--executor", "kube", "--progress", "plain",
		"--kubeconfig", kc, "--kube-launcher-image", "registry.example/skiff:1", "--kube-launcher-listen", fmt.Sprintf("127.0.0.1:%d", port))
	run.Env = envWithoutKube()
	var stderr syncBuffer
	run.Stderr, run.Stdout = &stderr, &stderr
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var runErr error
	go func() { runErr = run.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = run.Process.Kill()
		<-exited
	})

	// The step's pod: the launcher in it is told this port's URL.
	var pod corev1.Pod
	select {
	case pod = <-created:
	case <-exited:
		t.Fatalf("skiff run exited (%v) before creating the pod\n%s", runErr, stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("no pod created within a minute\n%s", stderr.String())
	}
	env := map[string]string{}
	for _, e := range pod.Spec.Containers[0].Env {
		env[e.Name] = e.Value
	}
	if env[launch.EnvAPI] != base {
		t.Fatalf("pod's %s = %q, want %q (from --kube-launcher-listen)", launch.EnvAPI, env[launch.EnvAPI], base)
	}

	do := func(method, path, host, token, ctype, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	digest := "sha256:" + strings.Repeat("0", 64)
	tok := env[launch.EnvToken]
	for _, c := range []struct {
		name, method, path, host, token, ctype, body string
		want                                         int
	}{
		{"user route", "GET", "/apis/skiff/v1/runs", "", "", "", "", 404},
		{"KFP route", "GET", "/apis/v2beta1/runs", "", "", "", "", 404},
		{"user route with the pod's token", "GET", "/apis/skiff/v1/runs", "", tok, "", "", 404},
		{"health check", "GET", "/healthz", "", "", "", "", 404},
		{"dot-dot out of the launcher routes", "GET", "/apis/skiff/v1/launch/../runs", "", "", "", "", 404},
		{"report without a token", "POST", launch.PathReport, "", "", "application/json", "{}", 401},
		{"blob without a token", "GET", launch.PathBlobs + "/" + digest, "", "", "", "", 401},
		{"blob with a forged token", "GET", launch.PathBlobs + "/" + digest, "", launch.TokenPrefix + "e30.AAAA", "", "", 401},
		{"a foreign Host", "GET", launch.PathBlobs + "/" + digest, "rebound.example", tok, "", "", 403},
		{"blob not an input of the pod's execution", "GET", launch.PathBlobs + "/" + digest, "", tok, "", "", 403},
		{"upload with the pod's token", "POST", launch.PathBlobs, "", tok, "application/octet-stream", "hi\n", 200},
	} {
		if code, body := do(c.method, c.path, c.host, c.token, c.ctype, c.body); code != c.want {
			t.Errorf("%s: %s %s: HTTP %d, want %d: %s", c.name, c.method, c.path, code, c.want, body)
		}
	}
	if t.Failed() {
		t.Logf("skiff run's stderr:\n%s", stderr.String())
	}
}

// TestCLI_WorkstationLauncherFlagErrors: the launcher flags of skiff run
// (and of skiff runs resume, through SKIFF_KUBE_* variables) are checked
// before any step starts, and each error names its flag.
func TestCLI_WorkstationLauncherFlagErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kc := writeFile(t, dir, "kubeconfig", unreachableKubeconfig)
	p := writeFile(t, dir, "p.yaml", launcherStep)
	short := writeFile(t, dir, "short.key", "too short")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	run := []string{"run", p, "--executor", "kube", "--progress", "none", "--kubeconfig", kc}
	img := []string{"--kube-launcher-image", "registry.example/skiff:1"}
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, c := range []struct {
		name     string
		env      []string
		args     []string
		code     int
		want     []string
		wantNone string
	}{
		{name: "image without listen", args: cat(run, img), code: 2, want: []string{"--kube-launcher-listen"}},
		{name: "image without listen, no kubeconfig", args: cat([]string{"run", p, "--progress", "none"}, img), code: 2, want: []string{"--kube-launcher-listen"}},
		{name: "listen without image", args: cat(run, []string{"--kube-launcher-listen", "127.0.0.1:0"}), code: 2, want: []string{"--kube-launcher-image"}},
		{name: "listen not host:port", args: cat(run, img, []string{"--kube-launcher-listen", "8090"}), code: 2, want: []string{"--kube-launcher-listen", `"8090"`}},
		{name: "every address without an API URL", args: cat(run, img, []string{"--kube-launcher-listen", "0.0.0.0:0"}), code: 2, want: []string{"--kube-launcher-api", "0.0.0.0:0"}},
		{name: "no host without an API URL", args: cat(run, img, []string{"--kube-launcher-listen", ":0"}), code: 2, want: []string{"--kube-launcher-api"}},
		{name: "API URL not http", args: cat(run, img, []string{"--kube-launcher-listen", "0.0.0.0:0", "--kube-launcher-api", "ftp://10.0.0.5:8090"}), code: 2, want: []string{"--kube-launcher-api", "ftp://"}},
		{name: "key file too short", args: cat(run, img, []string{"--kube-launcher-listen", "127.0.0.1:0", "--kube-launcher-key-file", short}), code: 1, want: []string{"--kube-launcher-key-file"}},
		{name: "port in use", args: cat(run, img, []string{"--kube-launcher-listen", taken.Addr().String()}), code: 1,
			want: []string{"--kube-launcher-listen " + taken.Addr().String(), "address already in use"}, wantNone: "--kubeconfig"},
		{name: "runs resume: image without listen from the environment", args: []string{"runs", "resume", "no-such-run"},
			env: []string{"SKIFF_KUBECONFIG=" + kc, "SKIFF_KUBE_LAUNCHER_IMAGE=registry.example/skiff:1"}, code: 2, want: []string{"--kube-launcher-listen"}},
		{name: "server", args: []string{"server", "--no-auth", "--listen", "127.0.0.1:0", "--kube-launcher-listen", "127.0.0.1:0"}, code: 2, want: []string{"--kube-launcher-listen", "--kube-launcher-api"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := skiffWithEnv(t, append(envWithoutKube(), c.env...), filepath.Join(t.TempDir(), "data"), c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if c.wantNone != "" && strings.Contains(r.stderr, c.wantNone) {
				t.Errorf("stderr names %q (the launcher's port is checked first):\n%s", c.wantNone, r.stderr)
			}
		})
	}
}

// TestCLI_RunHelpExplainsLauncherListen: skiff run --help tells what the
// workstation's launcher flags do.
func TestCLI_RunHelpExplainsLauncherListen(t *testing.T) {
	t.Parallel()
	r := skiff(t, filepath.Join(t.TempDir(), "data"), "run", "--help")
	for _, w := range []string{"--kube-launcher-listen HOST:PORT", "SKIFF_KUBE_LAUNCHER_LISTEN", "--kube-launcher-api URL"} {
		if !strings.Contains(r.stdout+r.stderr, w) {
			t.Errorf("skiff run --help lacks %q", w)
		}
	}
	if strings.Contains(r.stdout, "skiff server only") {
		t.Error(`skiff run --help still says "skiff server only"`)
	}
}
