package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/worker"
)

// leaderEngine runs an engine on this node only while it is the raft
// leader: on gaining leadership it builds a fresh engine, waits until the
// store has applied every committed entry, and resumes every unfinished
// run from the store (what 'skiff runs resume' does); on losing it, it
// stops that engine (executions keep running, and the next leader adopts
// or replaces them). It is the api.Engine of a server.
type leaderEngine struct {
	cfg   engine.Config // Registerer: a per-term wrapper is made from it
	st    *store.Store
	log   *slog.Logger
	execs map[string]executors.Executor
	// onTerm is started with each term's context (the recurring-run
	// scheduler); it must return when the context ends.
	onTerm func(ctx context.Context)
	// onReady is called once the first engine has resumed its runs.
	onReady func(resumed int)
	// dispatch places the engine's executions on the workers (its
	// executors are the engine's); nil = the engine runs them here.
	dispatch *worker.Dispatcher

	mu      sync.Mutex
	cur     *engine.Engine // nil while not leading
	changed chan struct{}  // closed and replaced whenever cur changes
	stop    func()         // ends the current term
}

// newLeaderEngine returns the leader engine of a server: cfg's executors
// are d's (the engine places executions on workers); local are this
// process's own, which Executor answers with (logs of what runs here).
func newLeaderEngine(cfg engine.Config, st *store.Store, log *slog.Logger, d *worker.Dispatcher, local []executors.Executor) (*leaderEngine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	le := &leaderEngine{cfg: cfg, st: st, log: log, execs: map[string]executors.Executor{}, changed: make(chan struct{}), dispatch: d}
	for _, x := range local {
		le.execs[x.Name()] = x
	}
	return le, nil
}

// follow tracks raft leadership until the returned stop is called (it then
// stops the current term's engine and waits for it).
func (le *leaderEngine) follow() (stop func()) {
	return le.st.WatchLeadership(func(leader bool) {
		if leader {
			le.startTerm()
		} else {
			le.endTerm()
		}
	})
}

// termRegisterer registers a term's metrics and unregisters them when the
// term ends, so that the next term's engine can register its own.
type termRegisterer struct {
	reg prometheus.Registerer
	mu  sync.Mutex
	cs  []prometheus.Collector
}

func (t *termRegisterer) Register(c prometheus.Collector) error {
	if err := t.reg.Register(c); err != nil {
		return err
	}
	t.mu.Lock()
	t.cs = append(t.cs, c)
	t.mu.Unlock()
	return nil
}

func (t *termRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *termRegisterer) Unregister(c prometheus.Collector) bool { return t.reg.Unregister(c) }

func (t *termRegisterer) unregisterAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range t.cs {
		t.reg.Unregister(c)
	}
	t.cs = nil
}

// termStartTimeout bounds the catch-up barrier of a new leader.
const termStartTimeout = 30 * time.Second

func (le *leaderEngine) startTerm() {
	cfg := le.cfg
	var reg *termRegisterer
	if cfg.Registerer != nil {
		reg = &termRegisterer{reg: cfg.Registerer}
		cfg.Registerer = reg
	}
	e, err := engine.New(cfg)
	if err != nil {
		le.log.Error("cluster: leader engine not started", "err", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	waitDispatch := func() {}
	if le.dispatch != nil {
		// Before the engine resumes: adoption reads the assignments, and
		// nothing applied from now on is missed.
		waitDispatch = le.dispatch.Start(ctx)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.Run(ctx); err != nil {
			le.log.Error("engine stopped", "err", err)
		}
	}()
	// Every entry committed by earlier leaders is applied before the
	// engine reads the store.
	bctx, bcancel := context.WithTimeout(ctx, termStartTimeout)
	err = le.st.VerifyLeader(bctx)
	bcancel()
	var resumed []string
	if err == nil {
		resumed, err = e.Resume(ctx)
	}
	if err != nil {
		le.log.Error("cluster: new leader could not resume runs; stepping down from scheduling", "err", err)
		cancel()
		wg.Wait()
		waitDispatch()
		if reg != nil {
			reg.unregisterAll()
		}
		return
	}
	le.log.Info("cluster: leading; engine started", "node", le.st.ID(), "resumed_runs", len(resumed))
	if le.onTerm != nil {
		wg.Add(1)
		go func() { defer wg.Done(); le.onTerm(ctx) }()
	}
	le.mu.Lock()
	le.cur = e
	le.stop = func() {
		cancel()
		wg.Wait()
		waitDispatch()
		if reg != nil {
			reg.unregisterAll()
		}
	}
	close(le.changed)
	le.changed = make(chan struct{})
	ready := le.onReady
	le.onReady = nil
	le.mu.Unlock()
	if ready != nil {
		ready(len(resumed))
	}
}

func (le *leaderEngine) endTerm() {
	le.mu.Lock()
	stop := le.stop
	le.cur, le.stop = nil, nil
	close(le.changed)
	le.changed = make(chan struct{})
	le.mu.Unlock()
	if stop != nil {
		le.log.Info("cluster: no longer leading; engine stopped", "node", le.st.ID())
		stop()
	}
}

// engineWait bounds how long a request waits for this node's engine after
// it became leader.
const engineWait = 5 * time.Second

// current returns the running engine, waiting briefly while this node is
// leader but its engine is still starting.
func (le *leaderEngine) current(ctx context.Context) (*engine.Engine, error) {
	deadline := time.NewTimer(engineWait)
	defer deadline.Stop()
	for {
		le.mu.Lock()
		e, ch := le.cur, le.changed
		le.mu.Unlock()
		if e != nil {
			return e, nil
		}
		if !le.st.IsLeader() {
			return nil, fmt.Errorf("engine: node %s: %w", le.st.ID(), store.ErrNotLeader)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("engine: node %s leads but its engine is not running: %w", le.st.ID(), engine.ErrStopped)
		}
	}
}

func (le *leaderEngine) Submit(ctx context.Context, plan *spec.Plan, params map[string]json.RawMessage, opts engine.SubmitOptions) (string, error) {
	e, err := le.current(ctx)
	if err != nil {
		return "", err
	}
	return e.Submit(ctx, plan, params, opts)
}

func (le *leaderEngine) Cancel(ctx context.Context, runID string) error {
	e, err := le.current(ctx)
	if err != nil {
		return err
	}
	return e.Cancel(ctx, runID)
}

func (le *leaderEngine) Retry(ctx context.Context, runID string) error {
	e, err := le.current(ctx)
	if err != nil {
		return err
	}
	return e.Retry(ctx, runID)
}

// Executor is answered on every node: the executors are this process's.
func (le *leaderEngine) Executor(name string) (executors.Executor, bool) {
	x, ok := le.execs[name]
	return x, ok
}
