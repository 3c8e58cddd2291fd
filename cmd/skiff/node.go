package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/skiffml/skiff/api"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/docker"
	"github.com/skiffml/skiff/executors/launch"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

func defaultDataDir() string {
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, ".skiff")
	}
	return ".skiff"
}

// node is the embedded single node: store, blobs, executors and engine.
type node struct {
	dir    string
	store  *store.Store
	blobs  *blob.Store
	local  *local.Executor
	docker *docker.Executor // nil when no Docker engine answered
	// execs are this process's executors (a server's worker runs them).
	execs  []executors.Executor
	engine *engine.Engine
	log    *slog.Logger
	// events carries the engine's updates to the API's event stream (the
	// web UI's live pages) on the data dir's socket.
	events *api.Events
	// launchKeys check the kube launchers' tokens on a server's API (a
	// server with a launcher image); nil otherwise (a workstation serves
	// its launchers on a port of their own: serveLaunchers).
	launchKeys *launch.Keys
	// closers run (last first) before the store closes.
	closers []func()
	// unserve stops serving the data dir's socket; leftover holds the runs
	// unfinished when it began (see socket.go).
	unserve  func()
	leftover map[string]bool
	closed   bool
}

type nodeOptions struct {
	defaultExecutor string
	onUpdate        func([]engine.Update)
	// wait is how long to wait for another skiff holding the data dir.
	wait time.Duration
	// noSocket: do not serve the data dir to other skiff processes (a
	// command that does not run the engine).
	noSocket bool
}

func logger(c *cli.Context) *slog.Logger {
	if c.Bool("debug") {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// storeConfig is the store's config for the data dir dir, with the raft
// log backend --raft-log-store names.
func storeConfig(c *cli.Context, dir string) (store.Config, error) {
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.LogStore = c.String("raft-log-store")
	if !slices.Contains(store.LogStores, scfg.LogStore) {
		return scfg, usageError("--raft-log-store %q: want one of %s", scfg.LogStore, strings.Join(store.LogStores, ", "))
	}
	return scfg, nil
}

// openNode opens the data dir. When another skiff process holds it, it
// says so on standard error and waits up to opts.wait.
func openNode(c *cli.Context, opts nodeOptions) (*node, error) {
	dir, err := filepath.Abs(c.String("data-dir"))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	log := logger(c)
	n := &node{dir: dir, log: log, events: api.NewEvents()}

	scfg, err := storeConfig(c, dir)
	if err != nil {
		return nil, err
	}
	scfg.Logger = log
	st, err := store.Open(c.Context, scfg)
	if errors.Is(err, store.ErrLocked) && opts.wait > 0 {
		notice("skiff: data dir %s is in use by another skiff process; waiting up to %s for it (use --data-dir for a separate one)\n", dir, opts.wait)
		scfg.LockTimeout = opts.wait
		st, err = store.Open(c.Context, scfg)
	}
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	n.store = st
	if n.blobs, err = openBlobs(c, dir); err != nil {
		st.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	lcfg := local.DefaultConfig(filepath.Join(dir, "work"), n.blobs)
	lcfg.Logger = log
	lcfg.KeepWorkDirs = c.Bool("keep-work-dirs")
	if lcfg.GPUs, err = configuredGPUs(); err != nil {
		st.Close()
		return nil, err
	}
	if n.local, err = local.New(lcfg); err != nil {
		st.Close()
		return nil, fmt.Errorf("local executor: %w", err)
	}
	// The last steps' work dirs are removed just after their reports:
	// wait for that before the process ends.
	n.closers = append(n.closers, n.local.Wait)
	execs := []executors.Executor{n.local, sim.New(sim.Config{})}
	if n.docker, err = openDocker(c.Context, dir, n.blobs, log, c.Bool("keep-work-dirs")); err == nil {
		execs = append(execs, n.docker)
	} else if opts.defaultExecutor == "docker" {
		st.Close()
		return nil, fmt.Errorf("--executor docker: %w", err)
	} else {
		log.Debug("docker executor not available", "err", err)
	}
	// The kube executor's launchers talk to this process on a port of
	// their own, listening before any step starts (served once the
	// engine exists, before it runs).
	launcher, launchLn, err := nodeLauncher(c, n.blobs)
	if err != nil {
		st.Close()
		return nil, err
	}
	fail := func(err error) (*node, error) {
		if launchLn != nil {
			launchLn.Close()
		}
		for i := len(n.closers) - 1; i >= 0; i-- {
			n.closers[i]()
		}
		st.Close()
		return nil, err
	}
	execs, closeKube, err := addKube(c, log, execs, launcher, st)
	if err != nil {
		return fail(err)
	}
	n.closers = append(n.closers, closeKube)
	ecfg := engine.DefaultConfig(st, execs...)
	ecfg.DefaultExecutor = opts.defaultExecutor
	ecfg.Logger = log
	ecfg.OnUpdate = n.events.Publish
	if opts.onUpdate != nil {
		ecfg.OnUpdate = func(us []engine.Update) { opts.onUpdate(us); n.events.Publish(us) }
	}
	if n.engine, err = engine.New(ecfg); err != nil {
		return fail(err)
	}
	if launchLn != nil {
		stop, err := serveLaunchers(n, launchLn, launcher)
		if err != nil {
			return fail(err)
		}
		n.closers = append(n.closers, stop)
	}
	if !opts.noSocket {
		n.serveSocket()
	}
	return n, nil
}

// dockerPingTimeout bounds how long startup waits for a Docker engine.
const dockerPingTimeout = time.Second

// openDocker makes the docker executor when a Docker engine answers within
// dockerPingTimeout. SKIFF_DOCKER_PULL_POLICY (IfNotPresent, Always,
// Never) sets its pull policy; keepWorkDirs, Config.KeepWorkDirs.
func openDocker(ctx context.Context, dir string, blobs *blob.Store, log *slog.Logger, keepWorkDirs bool) (*docker.Executor, error) {
	cfg := docker.DefaultConfig(filepath.Join(dir, "docker"), blobs)
	cfg.Logger, cfg.KeepWorkDirs = log, keepWorkDirs
	if p := os.Getenv("SKIFF_DOCKER_PULL_POLICY"); p != "" {
		pp, err := docker.ParsePullPolicy(p)
		if err != nil {
			return nil, fmt.Errorf("SKIFF_DOCKER_PULL_POLICY: %w", err)
		}
		cfg.PullPolicy = pp
	}
	ctx, cancel := context.WithTimeout(ctx, dockerPingTimeout)
	defer cancel()
	return docker.New(ctx, cfg)
}

// start runs the engine loop until ctx ends; the returned func waits for it.
func (n *node) start(ctx context.Context) func() error {
	done := make(chan error, 1)
	go func() { done <- n.engine.Run(ctx) }()
	return func() error { return <-done }
}

// withEngine runs the engine loop while fn runs, then stops it; it returns
// fn's error joined with the loop's.
func (n *node) withEngine(ctx context.Context, fn func() error) error {
	ctx, stop := context.WithCancel(ctx)
	wait := n.start(ctx)
	err := fn()
	stop()
	return errors.Join(err, wait())
}

func (n *node) close() error {
	if n.closed {
		return nil
	}
	n.closed = true
	for i := len(n.closers) - 1; i >= 0; i-- {
		n.closers[i]()
	}
	return n.store.Close()
}
