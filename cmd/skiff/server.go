package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/leader"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/ui"
	"github.com/skiffml/skiff/worker"
)

func serverCommand() *cli.Command {
	return &cli.Command{
		Name:  "server",
		Usage: "serve the KFP-compatible REST API over the node in --data-dir",
		Description: `Serves Kubeflow Pipelines' v2beta1 REST API (so kfp.Client() works by
changing the host) plus Skiff's extras (logs, artifacts, an event stream,
/metrics, /healthz, /readyz) and the web UI at / (see docs/ui.md) over the
single node in --data-dir. Runs left
unfinished by a previous server are resumed at start.

Every request needs a bearer token ('skiff token create', while the server
is stopped, or through the API with an admin token), unless --no-auth,
which only binds to a loopback address. With or without auth, requests
whose Host header is not one of the server's names (--allowed-host), whose
Origin is another site's, or whose body is not JSON (multipart on uploads)
are refused, so that a web page cannot drive the server through a
browser. The local process executor runs
commands on this host, so it is off for every namespace until an admin
enables it: 'skiff server policy --namespace N --allow-executor local'.

With --raft the server is one member of a raft cluster (docs/cluster.md):
any member answers, writes go to the leader, and the engine runs on the
leader only (resuming unfinished runs when it becomes leader). Every server
runs a worker: the leader assigns each step to a live worker that fits it,
and a worker silent for --node-ttl is declared down (its steps run again
elsewhere).

SIGINT/SIGTERM stop accepting requests, finish those in flight and stop the
engine; unfinished runs continue at the next start.

Examples:
  skiff token create --namespace team-a --role editor
  skiff server --listen :8888 --tls-cert cert.pem --tls-key key.pem
  skiff server --no-auth
  skiff server --listen 10.0.0.1:8888 --raft 10.0.0.1:8300 --bootstrap-expect 3 \
    --join 10.0.0.1:8300,10.0.0.2:8300,10.0.0.3:8300`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8888", Usage: "`ADDR` to listen on", EnvVars: []string{"SKIFF_LISTEN"}},
			&cli.StringFlag{Name: "tls-cert", Usage: "TLS certificate `FILE` (PEM); with --tls-key serves HTTPS"},
			&cli.StringFlag{Name: "tls-key", Usage: "TLS private key `FILE` (PEM)"},
			&cli.BoolFlag{Name: "no-auth", Usage: "accept requests without a token (binds to loopback addresses only)"},
			&cli.StringSliceFlag{Name: "allowed-host", EnvVars: []string{"SKIFF_ALLOWED_HOSTS"},
				Usage: "`NAME` clients may reach the server by, in the Host header (repeatable; '*' = any, needs auth); default: loopback names and the --listen address (all of this host's addresses and its hostname when that is unspecified)"},
			&cli.StringFlag{Name: "default-executor", Value: "local", Usage: "executor for tasks that name none: local, docker, kube (needs --kubeconfig) or sim"},
			&cli.BoolFlag{Name: "keep-work-dirs", Usage: "keep each execution's work dir and log after its outputs are stored (for debugging; by default they are removed)"},
			&cli.DurationFlag{Name: "sim-duration", Hidden: true, Usage: "how long each sim execution runs (tests and demos)"},
			&cli.DurationFlag{Name: "shutdown-grace", Value: 10 * time.Second, Usage: "how long to let in-flight requests finish on shutdown"},
		}, append(append(clusterFlags(), serverGCFlags()...), kubeFlags()...)...),
		Action: serverAction,
		Subcommands: []*cli.Command{
			{
				Name:  "policy",
				Usage: "show or change a namespace's policy (which extra executors it may use, where its kube pods go)",
				Description: `With the server stopped, edits the data dir directly; with --server, asks
the server (an admin token is needed; changing --kube-namespace needs an admin
of every namespace). --allow-executor replaces the list; --allow-executor ""
clears it. --kube-namespace sets the Kubernetes namespace the kube executor
creates the namespace's pods in; --kube-namespace "" goes back to the
executor's own (--kube-namespace of skiff server).`,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "namespace", Required: true, Usage: "the `NAMESPACE`"},
					&cli.StringSliceFlag{Name: "allow-executor", Usage: "executor `NAME` to enable (repeatable)"},
					&cli.StringFlag{Name: "kube-namespace", Usage: "Kubernetes `NAMESPACE` of the namespace's pods (\"\" = the kube executor's own)"},
				},
				Action: policyAction,
			},
		},
	}
}

// checkListen refuses a non-loopback address without authentication.
func checkListen(addr string, noAuth bool) error {
	if !noAuth {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError("--listen %q: %v", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return usageError("--no-auth binds to loopback addresses only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT), not %q: create tokens with 'skiff token create' to serve other hosts", addr)
	}
	return nil
}

// allowedHosts are the names clients may give in the Host header besides
// loopback ones: those given (--allowed-host), else the --listen host, or
// every address of this host and its hostname when that is unspecified.
func allowedHosts(listen string, given []string, noAuth bool) ([]string, error) {
	given = nonEmpty(given)
	if slices.Contains(given, api.AnyHost) && noAuth {
		return nil, usageError("--allowed-host %s needs authentication: without it any web page could drive the server", api.AnyHost)
	}
	if len(given) > 0 {
		return given, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, usageError("--listen %q: %v", listen, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return []string{host}, nil
	}
	var hosts []string
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("--allowed-host: list this host's addresses: %w", err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			hosts = append(hosts, ipn.IP.String())
		}
	}
	return hosts, nil
}

// openServerNode opens the node a server runs: openNode's parts with
// metrics on reg, the store a member of the cluster cs describes, and an
// engine that runs while this node leads (updates fed to onUpdate).
func openServerNode(c *cli.Context, dir string, cs *clusterSetup, reg prometheus.Registerer, onUpdate func([]engine.Update)) (*node, *leader.Leader, error) {
	log := serverLogger(c)
	n := &node{dir: dir, log: log}
	scfg, err := storeConfig(c, dir)
	if err != nil {
		return nil, nil, err
	}
	scfg.Logger, scfg.Registerer, scfg.Raft = log, reg, cs.raft
	if cs.mux != nil {
		scfg.Raft.Transport = cs.mux.Transport(nil)
	}
	if n.store, err = store.Open(c.Context, scfg); err != nil {
		if errors.Is(err, store.ErrLocked) {
			return nil, nil, fmt.Errorf("data dir %s is in use by another skiff process: %w", dir, err)
		}
		return nil, nil, fmt.Errorf("open store: %w", err)
	}
	fail := func(err error) (*node, *leader.Leader, error) { n.store.Close(); return nil, nil, err }
	if n.blobs, err = openBlobs(c, dir); err != nil {
		return fail(fmt.Errorf("open blob store: %w", err))
	}
	lcfg := local.DefaultConfig(filepath.Join(dir, "work"), n.blobs)
	lcfg.Logger = log
	lcfg.KeepWorkDirs = c.Bool("keep-work-dirs")
	if lcfg.GPUs, err = configuredGPUs(); err != nil {
		return fail(err)
	}
	if n.local, err = local.New(lcfg); err != nil {
		return fail(fmt.Errorf("local executor: %w", err))
	}
	execs := []executors.Executor{n.local, sim.New(sim.Config{Default: sim.Behavior{Duration: c.Duration("sim-duration")}})}
	if n.docker, err = openDocker(c.Context, dir, n.blobs, log, c.Bool("keep-work-dirs")); err == nil {
		execs = append(execs, n.docker)
	} else {
		log.Info("docker executor not available", "err", err)
	}
	// The engine runs on the leader and places executions on the workers
	// (every server runs one: serverAction): its executors are the
	// dispatcher's, one per kind this node offers.
	launcher, keys, err := kubeLauncher(c, n.blobs)
	if err != nil {
		return fail(err)
	}
	n.launchKeys = keys
	execs, closeKube, err := addKube(c, log, execs, launcher, n.store)
	if err != nil {
		return fail(err)
	}
	n.closers = append(n.closers, closeKube)
	kinds := make([]string, len(execs))
	for i, x := range execs {
		kinds[i] = x.Name()
	}
	d, err := worker.NewDispatcher(worker.DispatchConfig{Store: n.store, Kinds: kinds, NodeTTL: cs.raft.NodeTTL,
		Interval: cs.raft.WorkerHeartbeat, Logger: log})
	if err != nil {
		return fail(err)
	}
	n.execs = execs
	ecfg := engine.DefaultConfig(n.store, d.Executors()...)
	ecfg.DefaultExecutor = c.String("default-executor")
	ecfg.Logger, ecfg.Registerer, ecfg.OnUpdate = log, reg, onUpdate
	le, err := leader.New(leader.Config{Engine: ecfg, Store: n.store, Dispatch: d, Local: execs, Logger: log})
	if err != nil {
		if errors.Is(err, engine.ErrUnknownExecutor) {
			return fail(usageError("--default-executor: %v", err))
		}
		return fail(err)
	}
	return n, le, nil
}

// serverVersion is what healthz reports as tag_name.
const serverVersion = "dev"

func serverLogger(c *cli.Context) *slog.Logger {
	if c.Bool("debug") {
		return logger(c)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func serverAction(c *cli.Context) error {
	addr := c.String("listen")
	if err := checkListen(addr, c.Bool("no-auth")); err != nil {
		return err
	}
	cert, key := c.String("tls-cert"), c.String("tls-key")
	if (cert == "") != (key == "") {
		return usageError("--tls-cert and --tls-key go together")
	}
	scheme := "http"
	if cert != "" {
		scheme = "https"
	}
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	self, err := apiURL(c, scheme)
	if err != nil {
		return err
	}
	cs, err := setupCluster(c, dir, self)
	if err != nil {
		return err
	}
	if cs.mux != nil {
		defer cs.mux.Close()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	events := api.NewEvents()
	n, le, err := openServerNode(c, dir, cs, reg, events.Publish)
	if err != nil {
		return err
	}
	defer n.close()
	hosts, err := allowedHosts(addr, c.StringSlice("allowed-host"), c.Bool("no-auth"))
	if err != nil {
		return err
	}
	cs.cfg.Logger = n.log
	member, err := cluster.New(cs.cfg, n.store, cs.mux)
	if err != nil {
		return err
	}
	defer member.Close()
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	repl, err := startBlobReplication(ctx, c, n, member, cs, reg)
	if err != nil {
		return err
	}
	acfg := api.Config{
		Store: n.store, Engine: le, Blobs: n.blobs, Cluster: member, OnLeave: stop,
		DefaultExecutor: c.String("default-executor"), DisabledExecutors: []string{"local"},
		NoAuth: c.Bool("no-auth"), AllowedHosts: hosts, Registerer: reg, Gatherer: reg, Logger: n.log, Version: serverVersion,
		LaunchKeys:   n.launchKeys,
		WorkspaceDir: filepath.Join(n.dir, "workspaces"),
		// Steps run through workers, on any node: they unpack a run's
		// files from the store (runWorker).
		StoreWorkspaces: true,
	}
	if repl != nil {
		acfg.Replicator = repl // an agent's outputs reach a majority before its upload is answered
	}
	srv, err := api.New(acfg, events)
	if err != nil {
		return err
	}
	sock, err := serveServerSocket(n, le, member, c.String("default-executor"), events)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The engine runs while this node leads: unfinished runs are resumed
	// when it becomes leader; recurring runs fire from the leader only.
	le.SetOnTerm(func(ctx context.Context) { srv.RunScheduler(ctx, time.Second) })
	le.SetOnReady(func(resumed int) {
		fmt.Fprintf(os.Stderr, "skiff server: leading (node %s); %d unfinished run(s) resumed\n", n.store.ID(), resumed)
	})
	stopFollow := le.Follow()
	defer stopFollow()
	member.Serve()
	stopGC, err := startServerGC(ctx, c, n, repl)
	if err != nil {
		return err
	}
	defer stopGC()
	stopWorker, err := runWorker(n, member, self, cs, repl)
	if err != nil {
		return err
	}
	defer stopWorker()
	go func() {
		if err := member.Form(ctx); err != nil {
			n.log.Error("cluster: not formed", "err", err)
			if errors.Is(err, cluster.ErrInvalidConfig) {
				fmt.Fprintln(os.Stderr, "skiff server:", err)
				stop()
			}
			return
		}
		srv.SetReady(true)
		sock.SetReady(true)
	}()

	ucfg := ui.DefaultConfig(n.store, n.blobs, srv)
	ucfg.Logger = n.log
	web, err := ui.New(ucfg)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: ui.Mount(srv, web), ReadHeaderTimeout: 10 * time.Second} // the web UI at /, the API's routes unchanged
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return usageError("TLS: %v", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
		ln = tls.NewListener(ln, hs.TLSConfig)
	}
	where := "a cluster of one"
	if cs.mux != nil {
		where = fmt.Sprintf("node %s, cluster port %s", n.store.ID(), cs.mux.Addr())
	}
	fmt.Fprintf(os.Stderr, "skiff server: listening on %s://%s (data dir %s; %s)\n", scheme, ln.Addr(), n.dir, where)
	if c.Bool("no-auth") {
		fmt.Fprintln(os.Stderr, "skiff server: --no-auth: every request is an admin of every namespace")
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "skiff server: shutting down (unfinished runs continue at the next start, or on the next leader)")
		sctx, cancel := context.WithTimeout(context.Background(), c.Duration("shutdown-grace"))
		err = hs.Shutdown(sctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			_ = hs.Close()
			err = nil
		}
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	stopWorker()
	stopFollow()
	return err
}

// runWorker runs this server's worker until the returned stop is called:
// it registers the node with its executors and capacity, heartbeats, and
// runs what the leader assigns to it.
func runWorker(n *node, member *cluster.Node, apiURL string, rc *clusterSetup, repl *cluster.Blobs) (stop func(), err error) {
	wcfg := worker.Config{NodeID: n.store.ID(), APIURL: apiURL, Capacity: n.local.Capacity(), Labels: rc.labels,
		Executors: n.execs, Proposer: workerProposer{member}, State: n.store, Heartbeat: rc.raft.WorkerHeartbeat, Logger: n.log,
		WorkspaceDir: filepath.Join(n.dir, "workspaces"), UnpackWorkspace: api.ExtractBundle, DiskCheck: diskCheck(rc.minFreeDisk, n.dir, filepath.Join(n.dir, "blobs"))}
	if repl != nil {
		wcfg.Replicator, wcfg.ReplicateTimeout = repl, replicateTimeout
	}
	w, err := worker.New(wcfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := w.Run(ctx); err != nil {
			n.log.Error("worker stopped", "err", err)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}

// replicateTimeout bounds the replication of one execution's outputs
// (a transfer that stalls ends sooner, after BlobsConfig.IdleTimeout).
const replicateTimeout = 30 * time.Minute

// startBlobReplication starts the replicated blob store of a cluster
// server whose artifacts are kept on the nodes' disks (not in S3, which
// every node reaches already): nil for a cluster of one or an S3 store.
func startBlobReplication(ctx context.Context, c *cli.Context, n *node, member *cluster.Node, cs *clusterSetup, reg prometheus.Registerer) (*cluster.Blobs, error) {
	if cs.mux == nil {
		return nil, nil
	}
	if _, shared := n.blobs.Backend().(blob.WholeObjects); shared {
		return nil, nil
	}
	bcfg := cluster.DefaultBlobsConfig()
	bcfg.RepairInterval, bcfg.Registerer, bcfg.Logger = c.Duration("blob-repair-interval"), reg, n.log
	if err := bcfg.Validate(); err != nil {
		return nil, usageError("--blob-repair-interval: %v", err)
	}
	b, err := cluster.NewBlobs(bcfg, member, n.blobs)
	if err != nil {
		return nil, err
	}
	b.Serve(ctx)
	return b, nil
}

// workerProposer sends the worker's commands through the leader.
type workerProposer struct{ m *cluster.Node }

func (p workerProposer) Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error) {
	return p.m.ProposeWorker(ctx, cmds...)
}

func policyAction(c *cli.Context) error {
	ns := c.String("namespace")
	if cl, err := newClientFrom(c); err != nil {
		return err
	} else if cl != nil {
		pol, err := cl.NamespacePolicy(c.Context, ns)
		if err != nil {
			return err
		}
		if c.IsSet("allow-executor") || c.IsSet("kube-namespace") {
			if c.IsSet("allow-executor") {
				pol.AllowedExecutors = nonEmpty(c.StringSlice("allow-executor"))
			}
			pol.KubeNamespace = nil
			if c.IsSet("kube-namespace") {
				k := c.String("kube-namespace")
				pol.KubeNamespace = &k
			}
			if pol, err = cl.PutNamespacePolicy(c.Context, ns, pol); err != nil {
				return err
			}
		}
		k := ""
		if pol.KubeNamespace != nil {
			k = *pol.KubeNamespace
		}
		fmt.Printf("namespace %s: extra executors allowed: %s; kube namespace: %s\n", ns, listOrNone(pol.AllowedExecutors), kubeNamespaceOrDefault(k))
		return nil
	}
	st, dir, err := openStoreOnly(c)
	if err != nil {
		return err
	}
	defer st.Close()
	pol, err := st.GetNamespacePolicy(ns)
	if err != nil {
		return err
	}
	if c.IsSet("allow-executor") {
		pol.AllowedExecutors = nonEmpty(c.StringSlice("allow-executor"))
		for _, x := range pol.AllowedExecutors {
			if x != "local" && x != "docker" && x != sim.Name {
				return usageError("--allow-executor %q: unknown executor (local, docker, sim)", x)
			}
		}
	}
	if c.IsSet("kube-namespace") {
		pol.KubeNamespace = c.String("kube-namespace")
		if pol.KubeNamespace != "" && !store.ValidKubeNamespace(pol.KubeNamespace) {
			return usageError("--kube-namespace %q: use lowercase letters, digits and '-' (at most 63)", pol.KubeNamespace)
		}
	}
	if c.IsSet("allow-executor") || c.IsSet("kube-namespace") {
		res, err := st.Apply(c.Context, store.SetNamespacePolicy{Policy: pol})
		if err != nil {
			return err
		}
		if len(res.Rejected) > 0 {
			return usageError("%s", res.Rejected[0].Reason)
		}
	}
	fmt.Printf("namespace %s (data dir %s): extra executors allowed: %s; kube namespace: %s\n", ns, dir, listOrNone(pol.AllowedExecutors), kubeNamespaceOrDefault(pol.KubeNamespace))
	return nil
}

// kubeNamespaceOrDefault says where a namespace's kube pods go.
func kubeNamespaceOrDefault(k string) string {
	if k == "" {
		return "the kube executor's own"
	}
	return k
}

func nonEmpty(xs []string) []string {
	var out []string
	for _, x := range xs {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

func listOrNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// openStoreOnly opens the data dir's store (the server must be stopped).
func openStoreOnly(c *cli.Context) (*store.Store, string, error) {
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return nil, "", err
	}
	scfg, err := storeConfig(c, dir)
	if err != nil {
		return nil, dir, err
	}
	scfg.Logger = logger(c)
	scfg.LockTimeout = 2 * time.Second
	st, err := store.Open(c.Context, scfg)
	if errors.Is(err, store.ErrLocked) {
		return nil, dir, usageError("data dir %s is in use (is 'skiff server' running?): stop it, or use --server URL with an admin token", dir)
	}
	if err != nil {
		return nil, dir, fmt.Errorf("open store: %w", err)
	}
	return st, dir, nil
}
