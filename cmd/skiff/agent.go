package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
	"github.com/skiffml/skiff/worker"
	"github.com/skiffml/skiff/worker/agentclient"
)

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run a worker alone, for a cluster it joins through the API (a GPU box that is not a raft voter)",
		Description: `Runs a worker on this machine for the cluster whose servers' API URLs
--join lists, with a worker token an admin made for this node:

  skiff --server URL --token ADMIN token create --role worker --node-id gpu-1

The agent registers its node (capacity, GPUs, executors, --node-label
labels), heartbeats every --worker-heartbeat, runs the steps the leader
assigns to it, and reports them. Inputs are downloaded from the servers
before a step starts; its outputs and log are uploaded after it ends, and
a success is reported only once a majority of the cluster's servers hold
them. The agent is not a raft voter and serves no API: 'skiff cluster
members' lists it among the workers. A worker token can do nothing else:
it cannot submit runs, read any namespace, or act as another node.

When a call to one server fails the agent goes on to the next of --join;
a server that is not the leader passes the agent's writes to the leader.
An agent silent for the cluster's --node-ttl is declared down: its steps
end lost and run again on another live worker that fits them; one that no
worker fits waits up to --node-ttl for one, then fails (its retry policy
applies). An agent started again stops what it ran before and registers
anew.

State (the agent's blobs and the steps' work dirs) is kept under
--data-dir/agent. The local process executor runs steps as this user on
this machine: give the agent its own user.

Examples:
  skiff agent --join http://10.0.0.1:8888,http://10.0.0.2:8888 --token "$WORKER_TOKEN" \
    --node-label gpu=true --gpus 0,1`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "join", EnvVars: []string{"SKIFF_AGENT_JOIN"}, Usage: "API `URL[,URL...]` of the cluster's servers (repeatable; required)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"SKIFF_AGENT_TOKEN"}, Usage: "the worker `TOKEN`, required (skiff token create --role worker --node-id ID)"},
			&cli.StringFlag{Name: "node-id", Usage: "the node `ID` the token acts as (checked; default: the token's)"},
			&cli.StringSliceFlag{Name: "executor", Usage: "executor `NAME` to offer: local, docker or sim (repeatable; default: local, and docker when a Docker engine answers)"},
			&cli.StringSliceFlag{Name: "node-label", Aliases: []string{"label"}, Usage: "a label `KEY=VALUE` of this worker (repeatable); a step with nodeSelector runs only on workers whose labels include every pair of it"},
			&cli.StringFlag{Name: "cpus", Usage: "CPU capacity offered, in cores (4, 0.5) or millicores (500m) (default: this machine's CPUs)"},
			&cli.StringFlag{Name: "memory", Usage: "memory capacity offered: bytes or a size like 16Gi (default: this machine's memory)"},
			&cli.StringFlag{Name: "gpus", Usage: "GPU `IDS` steps may be given, comma-separated as CUDA_VISIBLE_DEVICES takes them, or none (default: SKIFF_GPUS, else detected with nvidia-smi)"},
			&cli.DurationFlag{Name: "worker-heartbeat", Value: store.DefaultRaftConfig().WorkerHeartbeat, Usage: "how often the agent renews its lease (keep it under half the servers' --node-ttl)"},
			&cli.BoolFlag{Name: "keep-work-dirs", Usage: "keep each execution's work dir and log after its outputs are uploaded"},
			&cli.DurationFlag{Name: "sim-duration", Hidden: true, Usage: "how long each sim execution runs (tests)"},
		},
		Action: agentAction,
	}
}

// agentSetup is what the agent's flags give.
type agentSetup struct {
	servers   []string
	labels    map[string]string
	executors []string // as given; nil = the defaults
	local     local.Config
}

// agentFlags reads and checks the agent's flags; dir is its state dir.
func agentFlags(c *cli.Context, dir string) (*agentSetup, error) {
	a := &agentSetup{}
	for _, j := range c.StringSlice("join") {
		for _, u := range nonEmpty(strings.Split(j, ",")) {
			p, err := url.Parse(u)
			if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
				return nil, usageError("--join %q: want a server's API URL, http(s)://HOST:PORT", u)
			}
			a.servers = append(a.servers, strings.TrimRight(u, "/"))
		}
	}
	if len(a.servers) == 0 {
		return nil, usageError("--join: give at least one server's API URL")
	}
	if c.String("token") == "" {
		return nil, usageError("--token: required: the worker token (skiff token create --role worker --node-id ID)")
	}
	if id := c.String("node-id"); id != "" && !validNodeID.MatchString(id) {
		return nil, usageError("--node-id %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", id)
	}
	var err error
	if a.labels, err = nodeLabels(c); err != nil {
		return nil, err
	}
	for _, x := range c.StringSlice("executor") {
		for _, name := range nonEmpty(strings.Split(x, ",")) {
			if name != "local" && name != "docker" && name != sim.Name {
				return nil, usageError("--executor %q: an agent offers local, docker or sim", name)
			}
			if !slices.Contains(a.executors, name) {
				a.executors = append(a.executors, name)
			}
		}
	}
	if hb := c.Duration("worker-heartbeat"); hb <= 0 {
		return nil, usageError("--worker-heartbeat %s: must be positive", hb)
	}
	a.local = local.DefaultConfig(filepath.Join(dir, "work"), nil)
	a.local.KeepWorkDirs = c.Bool("keep-work-dirs")
	if v := c.String("cpus"); v != "" {
		if a.local.MilliCPU, err = spec.ParseCPU(v); err != nil || a.local.MilliCPU <= 0 {
			return nil, usageError("--cpus %q: want a positive number of cores (4, 0.5) or millicores (500m)", v)
		}
	}
	if v := c.String("memory"); v != "" {
		if a.local.MemoryBytes, err = spec.ParseMemory(v); err != nil || a.local.MemoryBytes <= 0 {
			return nil, usageError("--memory %q: want a positive size like 16Gi", v)
		}
	}
	if c.IsSet("gpus") {
		v := strings.TrimSpace(c.String("gpus"))
		a.local.GPUs = []string{}
		if v != "" && v != "none" {
			for _, id := range strings.Split(v, ",") {
				if id = strings.TrimSpace(id); id == "" || slices.Contains(a.local.GPUs, id) {
					return nil, usageError("--gpus %q: want distinct GPU ids, comma-separated (0,1), or none", v)
				}
				a.local.GPUs = append(a.local.GPUs, id)
			}
		}
	} else if a.local.GPUs, err = configuredGPUs(); err != nil {
		return nil, usageError("%v", err)
	}
	return a, nil
}

func agentAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError("agent takes no arguments, got %q", c.Args().First())
	}
	root, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return err
	}
	dir := filepath.Join(root, "agent")
	setup, err := agentFlags(c, dir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	unlock, err := lockAgentDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	log := serverLogger(c)
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return fmt.Errorf("open blob store: %w", err)
	}
	ccfg := agentclient.DefaultConfig(setup.servers, c.String("token"), blobs)
	ccfg.Logger = log
	cl, err := agentclient.New(ccfg)
	if err != nil {
		return usageError("%v", err)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cl.Sync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("--join: %w", err)
	}
	if want := c.String("node-id"); want != "" && want != cl.NodeID() {
		return usageError("--node-id %q: the token acts as node %q", want, cl.NodeID())
	}
	execs, err := agentExecutors(c, setup, blobs, dir, log)
	if err != nil {
		return err
	}
	var capacity spec.Resources
	for _, x := range execs {
		if lx, ok := x.(*local.Executor); ok {
			capacity = lx.Capacity()
		}
	}
	w, err := worker.New(worker.Config{NodeID: cl.NodeID(), Labels: setup.labels, Capacity: capacity,
		Executors: execs, Proposer: cl, State: cl, Replicator: cl, ReplicateTimeout: replicateTimeout,
		Heartbeat: c.Duration("worker-heartbeat"), Logger: log,
		WorkspaceDir: filepath.Join(dir, "workspaces"), UnpackWorkspace: api.ExtractBundle})
	if err != nil {
		return err
	}
	names := make([]string, len(execs))
	for i, x := range execs {
		names[i] = x.Name()
	}
	fmt.Fprintf(os.Stderr, "skiff agent: node %s (executors %s; capacity %d mCPU, %d bytes, %d GPUs) joining %s\n",
		cl.NodeID(), strings.Join(names, ", "), capacity.MilliCPU, capacity.MemoryBytes, capacity.GPU, strings.Join(setup.servers, ", "))
	watched := make(chan struct{})
	go func() { defer close(watched); cl.Watch(ctx) }()
	err = w.Run(ctx)
	stop()
	<-watched
	fmt.Fprintln(os.Stderr, "skiff agent: stopped (what it ran ends lost once its lease lapses, and runs again elsewhere)")
	return err
}

// agentExecutors opens the executors the agent offers.
func agentExecutors(c *cli.Context, setup *agentSetup, blobs *blob.Store, dir string, log *slog.Logger) ([]executors.Executor, error) {
	want := setup.executors
	explicit := want != nil
	if !explicit {
		want = []string{"local", "docker"}
	}
	var out []executors.Executor
	for _, name := range want {
		switch name {
		case "local":
			cfg := setup.local
			cfg.Blobs, cfg.Logger = blobs, log
			x, err := local.New(cfg)
			if err != nil {
				return nil, fmt.Errorf("local executor: %w", err)
			}
			out = append(out, x)
		case "docker":
			x, err := openDocker(c.Context, dir, blobs, log, c.Bool("keep-work-dirs"))
			if err != nil {
				if explicit {
					return nil, fmt.Errorf("--executor docker: %w", err)
				}
				log.Info("docker executor not available", "err", err)
				continue
			}
			out = append(out, x)
		case sim.Name:
			out = append(out, sim.New(sim.Config{Default: sim.Behavior{Duration: c.Duration("sim-duration")}}))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no executor to offer")
	}
	return out, nil
}

// lockAgentDir takes the agent dir's lock: two agents on one dir would
// share work dirs and fight over the node's epoch.
func lockAgentDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, usageError("data dir %s is in use by another skiff agent: give each agent its own --data-dir", dir)
		}
		time.Sleep(100 * time.Millisecond) // waiting for a lock a stopping agent holds
	}
}
