package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/kube"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// kubeStartTimeout bounds how long startup waits for the API server.
const kubeStartTimeout = 30 * time.Second

// defaultKubeQPS is the kube executor's client-side rate limit, in
// requests a second (each step makes at least two: create and delete
// its pod); its burst is twice that.
const defaultKubeQPS = 50

// kubeFlags configure the kube executor (skiff run, skiff server). Each has
// an environment variable, so that commands that resume runs (skiff runs
// resume) find the same cluster.
func kubeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"SKIFF_KUBECONFIG"},
			Usage: "kubeconfig `FILE` of the cluster the kube executor creates pods in; without it there is no kube executor"},
		&cli.StringFlag{Name: "kube-namespace", EnvVars: []string{"SKIFF_KUBE_NAMESPACE"},
			Usage: "Kubernetes `NAMESPACE` of the pods (default: the kubeconfig context's, else default)"},
		&cli.StringFlag{Name: "kube-instance", EnvVars: []string{"SKIFF_KUBE_INSTANCE"}, Value: kube.DefaultInstance,
			Usage: "`NAME` telling apart the pods of several Skiff installations in one namespace (the skiff.io/instance label)"},
		&cli.StringFlag{Name: "kube-gpu-resource", EnvVars: []string{"SKIFF_KUBE_GPU_RESOURCE"}, Value: kube.DefaultGPUResource,
			Usage: "extended `RESOURCE` a step's GPUs are asked as (amd.com/gpu, ...)"},
		&cli.StringFlag{Name: "kube-service-account", EnvVars: []string{"SKIFF_KUBE_SERVICE_ACCOUNT"},
			Usage: "service `ACCOUNT` the pods run as (default: none, and no API token in the pod)"},
		&cli.StringFlag{Name: "kube-default-image", EnvVars: []string{"SKIFF_KUBE_DEFAULT_IMAGE"},
			Usage: "`IMAGE` of steps that name none"},
		&cli.StringFlag{Name: "kube-launcher-image", EnvVars: []string{"SKIFF_KUBE_LAUNCHER_IMAGE"},
			Usage: "Skiff `IMAGE` (make image) whose /bin/skiff an init container copies into pods of steps that move artifacts; the launcher in the pod talks to this process's API (a server: --kube-launcher-api; skiff run: --kube-launcher-listen). Without it such steps are refused"},
		&cli.StringFlag{Name: "kube-launcher-listen", EnvVars: []string{"SKIFF_KUBE_LAUNCHER_LISTEN"},
			Usage: "not for skiff server: `HOST:PORT` this process serves the launchers on, with their routes only (/apis/skiff/v1/launch/...; they take per-execution tokens, no user's); required with --kube-launcher-image"},
		&cli.StringFlag{Name: "kube-launcher-api", EnvVars: []string{"SKIFF_KUBE_LAUNCHER_API"},
			Usage: "`URL` pods reach this process's API at: a server's (required with --kube-launcher-image), or --kube-launcher-listen's (default http://HOST:PORT of it; required when it listens on every address, 0.0.0.0 or ::)"},
		&cli.StringFlag{Name: "kube-qps", EnvVars: []string{"SKIFF_KUBE_QPS"}, Value: fmt.Sprint(defaultKubeQPS),
			Usage: "`N` requests a second the kube executor may make to the API server (bursts of twice that); client-go's own default of 5 throttles a chain of steps to about 400 ms a step"},
		&cli.StringFlag{Name: "kube-launcher-key-file", EnvVars: []string{"SKIFF_KUBE_LAUNCHER_KEY_FILE"},
			Usage: "`FILE` of at least 32 bytes: the key of the launchers' per-execution tokens; every server of a cluster needs the same (default: a key of this process's own, so pods started before a restart or failover fail their report)"},
	}
}

// kubeLauncher is the launcher of a server's kube executor (nil when no
// launcher image is set), with the keys of its tokens. The server's API
// serves the launcher routes.
func kubeLauncher(c *cli.Context, blobs *blob.Store) (*kube.Launcher, *launch.Keys, error) {
	if kubeOpt(c, "kube-launcher-listen") != "" {
		return nil, nil, usageError("--kube-launcher-listen is for skiff run: a server serves the launchers on its API (--listen); give --kube-launcher-api, the URL pods reach it at")
	}
	img := kubeOpt(c, "kube-launcher-image")
	if img == "" {
		return nil, nil, nil
	}
	url := kubeOpt(c, "kube-launcher-api")
	if url == "" {
		return nil, nil, fmt.Errorf("--kube-launcher-image needs --kube-launcher-api: the URL pods reach this server's API at")
	}
	keys, err := launcherKeys(c)
	if err != nil {
		return nil, nil, err
	}
	return &kube.Launcher{Image: img, API: url, Keys: keys, Blobs: blobs}, keys, nil
}

// launcherKeys are the keys of the launchers' tokens: those of
// --kube-launcher-key-file, else a key of this process's own.
func launcherKeys(c *cli.Context) (*launch.Keys, error) {
	f := kubeOpt(c, "kube-launcher-key-file")
	if f == "" {
		return launch.RandomKeys(), nil
	}
	data, err := os.ReadFile(f)
	if err != nil {
		return nil, fmt.Errorf("--kube-launcher-key-file: %w", err)
	}
	keys, err := launch.NewKeys(data)
	if err != nil {
		return nil, fmt.Errorf("--kube-launcher-key-file %s: %w", f, err)
	}
	return keys, nil
}

// nodeLauncher is the launcher of a workstation node's kube executor
// (skiff run; skiff runs resume and the like read the SKIFF_KUBE_*
// variables), whose API is this process's: the launcher routes alone on
// --kube-launcher-listen. It returns nil when no launcher image is set,
// and also when there is no kubeconfig (no kube executor: the flags are
// checked, but no port is opened). ln listens already (a taken port fails
// here, before any step starts); serveLaunchers serves it.
func nodeLauncher(c *cli.Context, blobs *blob.Store) (l *kube.Launcher, ln net.Listener, err error) {
	img, listen, apiURL := kubeOpt(c, "kube-launcher-image"), kubeOpt(c, "kube-launcher-listen"), kubeOpt(c, "kube-launcher-api")
	if img == "" {
		if listen != "" {
			return nil, nil, usageError("--kube-launcher-listen needs --kube-launcher-image: the Skiff image the pods' launcher comes from")
		}
		return nil, nil, nil
	}
	if listen == "" {
		return nil, nil, usageError("--kube-launcher-image needs --kube-launcher-listen HOST:PORT: the address this process serves the pods' launchers on (e.g. 10.0.0.5:8090, with --kube-launcher-api if pods reach it by another name)")
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, nil, usageError("--kube-launcher-listen %q: want HOST:PORT (%v)", listen, err)
	}
	if apiURL != "" {
		if u, err := url.Parse(apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, nil, usageError("--kube-launcher-api %q: want the http(s) URL pods reach this process at (http://HOST:PORT)", apiURL)
		}
	} else if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return nil, nil, usageError("--kube-launcher-listen %s listens on every address: give --kube-launcher-api, the URL pods reach this machine at (http://HOST:PORT)", listen)
	}
	keys, err := launcherKeys(c)
	if err != nil {
		return nil, nil, err
	}
	if kubeOpt(c, "kubeconfig") == "" {
		return nil, nil, nil
	}
	if ln, err = net.Listen("tcp", listen); err != nil {
		return nil, nil, fmt.Errorf("--kube-launcher-listen %s: %w", listen, err)
	}
	if apiURL == "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String()) // the port chosen for port 0
		apiURL = "http://" + net.JoinHostPort(host, port)
	}
	return &kube.Launcher{Image: img, API: apiURL, Keys: keys, Blobs: blobs}, ln, nil
}

// serveLaunchers serves the launcher routes of an API over n's store,
// engine and artifacts on ln, checking tokens with l's keys, and nothing
// else (api.Server.LaunchHandler); the returned func stops it. The API
// has no NoAuth (those routes take launcher tokens only); the Host it
// accepts is l.API's (the one pods send), and loopback names.
func serveLaunchers(n *node, ln net.Listener, l *kube.Launcher) (func(), error) {
	u, err := url.Parse(l.API)
	if err != nil {
		return nil, fmt.Errorf("--kube-launcher-api %q: %w", l.API, err)
	}
	srv, err := api.New(api.Config{Store: n.store, Engine: n.engine, Blobs: n.blobs, LaunchKeys: l.Keys,
		AllowedHosts: []string{u.Hostname()}, Logger: n.log, Version: serverVersion}, nil)
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: srv.LaunchHandler(), ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(n.log.Handler(), slog.LevelDebug)}
	go func() { _ = hs.Serve(ln) }()
	return func() { _ = hs.Close() }, nil
}

// openKube makes the kube executor when a kubeconfig is given (nil, nil
// otherwise).
func openKube(c *cli.Context, log *slog.Logger, l *kube.Launcher, st *store.Store) (*kube.Executor, error) {
	path := kubeOpt(c, "kubeconfig")
	if path == "" {
		return nil, nil
	}
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	rest, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
	}
	ns := kubeOpt(c, "kube-namespace")
	if ns == "" {
		if ns, _, err = cc.Namespace(); err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: namespace: %w", path, err)
		}
	}
	qps := float64(defaultKubeQPS)
	if v := kubeOpt(c, "kube-qps"); v != "" {
		if qps, err = strconv.ParseFloat(v, 32); err != nil || qps <= 0 {
			return nil, fmt.Errorf("--kube-qps %q: want a number above 0", v)
		}
	}
	rest.QPS, rest.Burst = float32(qps), int(2*qps)
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
	}
	cfg := kube.DefaultConfig(client)
	cfg.Namespace, cfg.Logger = ns, log
	cfg.Instance = kubeOpt(c, "kube-instance")
	cfg.GPUResource = kubeOpt(c, "kube-gpu-resource")
	cfg.ServiceAccount = kubeOpt(c, "kube-service-account")
	cfg.DefaultImage = kubeOpt(c, "kube-default-image")
	cfg.Launcher = l
	if st != nil {
		cfg.Targets = policyTargets{st}
	}
	ctx, cancel := context.WithTimeout(c.Context, kubeStartTimeout)
	defer cancel()
	x, err := kube.New(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", path, err)
	}
	return x, nil
}

// kubeOpt is flag name's value; a command without the kube flags (skiff
// runs resume) reads its environment variable (SKIFF_KUBECONFIG...).
func kubeOpt(c *cli.Context, name string) string {
	if c.Command == nil {
		return os.Getenv("SKIFF_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	}
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), name) {
			return c.String(name)
		}
	}
	v := os.Getenv("SKIFF_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")))
	if v == "" && name == "kube-instance" {
		v = kube.DefaultInstance
	}
	if v == "" && name == "kube-gpu-resource" {
		v = kube.DefaultGPUResource
	}
	return v
}

// policyTargets maps Skiff namespaces to Kubernetes namespaces by the
// namespace policies of st (kube_namespace; skiff server policy
// --kube-namespace).
type policyTargets struct{ st *store.Store }

func (p policyTargets) Target(ns string) (string, error) {
	pol, err := p.st.GetNamespacePolicy(ns)
	return pol.KubeNamespace, err
}

func (p policyTargets) All() ([]string, error) {
	pols, err := p.st.NamespacePolicies()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, pol := range pols {
		if pol.KubeNamespace != "" {
			out = append(out, pol.KubeNamespace)
		}
	}
	return out, nil
}

// addKube appends the kube executor to execs when one is configured, with
// launcher l (nil: steps that move artifacts are refused); the returned
// func closes it (call it before the store closes).
func addKube(c *cli.Context, log *slog.Logger, execs []executors.Executor, l *kube.Launcher, st *store.Store) ([]executors.Executor, func(), error) {
	x, err := openKube(c, log, l, st)
	if err != nil || x == nil {
		return execs, func() {}, err
	}
	return append(execs, x), x.Close, nil
}
