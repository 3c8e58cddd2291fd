package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// Node is a real embedded node (store with its Raft log, blobs, local and
// sim executors, engine) over a data dir, for benchmarks.
type Node struct {
	Store  *store.Store
	Engine *engine.Engine
	stop   context.CancelFunc
	done   chan error
}

// Options tune a benchmark node.
type Options struct {
	NoSync bool // skip fsyncs (never for reported figures)
}

// OpenNode opens a node in dir and starts its engine loop.
func OpenNode(ctx context.Context, dir string, opts Options) (*Node, error) {
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = opts.NoSync
	st, err := store.Open(ctx, scfg)
	if err != nil {
		return nil, err
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		st.Close()
		return nil, err
	}
	lcfg := local.DefaultConfig(filepath.Join(dir, "work"), blobs)
	lcfg.GPUs = []string{}
	lx, err := local.New(lcfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	eng, err := engine.New(engine.DefaultConfig(st, sim.New(sim.Config{}), lx))
	if err != nil {
		st.Close()
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	n := &Node{Store: st, Engine: eng, stop: stop, done: make(chan error, 1)}
	go func() { n.done <- eng.Run(runCtx) }()
	return n, nil
}

// Close stops the engine and closes the store.
func (n *Node) Close() error {
	n.stop()
	err := <-n.done
	if cerr := n.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// Result is one measured run of a workload.
type Result struct {
	Workload string
	Tasks    int
	Wall     time.Duration
	Entries  uint64 // store entries committed for the run
}

// TasksPerSec is the throughput of the run.
func (r Result) TasksPerSec() float64 { return float64(r.Tasks) / r.Wall.Seconds() }

// Run submits the workload and waits for its end; wall time runs from
// submission to the run's final state being durable.
func (n *Node) Run(ctx context.Context, w Workload) (Result, error) {
	p, err := w.Plan()
	if err != nil {
		return Result{}, err
	}
	runtime.GC()
	before := n.Store.AppliedIndex()
	start := time.Now()
	id, err := n.Engine.Submit(ctx, p, map[string]json.RawMessage{}, engine.SubmitOptions{})
	if err != nil {
		return Result{}, err
	}
	r, err := n.Engine.Wait(ctx, id)
	if err != nil {
		return Result{}, err
	}
	wall := time.Since(start)
	if r.State != spec.RunSucceeded {
		return Result{}, fmt.Errorf("%s: run %s ended %s: %s", w.Name(), id, r.State, r.Error)
	}
	return Result{Workload: w.Name(), Tasks: len(p.Tasks), Wall: wall, Entries: n.Store.AppliedIndex() - before}, nil
}
