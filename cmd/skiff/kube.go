package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

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
			Usage: "Skiff `IMAGE` (make image) whose /bin/skiff an init container copies into pods of steps that move artifacts; skiff server only (without it such steps are refused)"},
		&cli.StringFlag{Name: "kube-launcher-api", EnvVars: []string{"SKIFF_KUBE_LAUNCHER_API"},
			Usage: "`URL` of this server's API as pods reach it (required with --kube-launcher-image)"},
		&cli.StringFlag{Name: "kube-qps", EnvVars: []string{"SKIFF_KUBE_QPS"}, Value: fmt.Sprint(defaultKubeQPS),
			Usage: "`N` requests a second the kube executor may make to the API server (bursts of twice that); client-go's own default of 5 throttles a chain of steps to about 400 ms a step"},
		&cli.StringFlag{Name: "kube-launcher-key-file", EnvVars: []string{"SKIFF_KUBE_LAUNCHER_KEY_FILE"},
			Usage: "`FILE` of at least 32 bytes: the key of the launchers' per-execution tokens; every server of a cluster needs the same (default: a key of this process's own, so pods started before a restart or failover fail their report)"},
	}
}

// kubeLauncher is the launcher of a server's kube executor (nil when no
// launcher image is set), with the keys of its tokens.
func kubeLauncher(c *cli.Context, blobs *blob.Store) (*kube.Launcher, *launch.Keys, error) {
	img := kubeOpt(c, "kube-launcher-image")
	if img == "" {
		return nil, nil, nil
	}
	url := kubeOpt(c, "kube-launcher-api")
	if url == "" {
		return nil, nil, fmt.Errorf("--kube-launcher-image needs --kube-launcher-api: the URL pods reach this server's API at")
	}
	keys := launch.RandomKeys()
	if f := kubeOpt(c, "kube-launcher-key-file"); f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("--kube-launcher-key-file: %w", err)
		}
		if keys, err = launch.NewKeys(data); err != nil {
			return nil, nil, fmt.Errorf("--kube-launcher-key-file %s: %w", f, err)
		}
	}
	return &kube.Launcher{Image: img, API: url, Keys: keys, Blobs: blobs}, keys, nil
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
