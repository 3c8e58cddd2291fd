package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
)

// Cluster is n real servers' cores in one process: each a store with its
// raft log, on its own cluster port on loopback (cluster.Mux, raft's TCP
// transport), formed with --bootstrap-expect n. As in a server, the engine
// runs on the leader only: a new one is built on each leader, which waits
// until it has applied every committed entry and resumes every unfinished
// run. Executions use the sim executor.
type Cluster struct {
	nodes  []*clusterNode
	noSync bool
	rec    *recorder
	log    io.Writer

	mu      sync.Mutex
	term    int               // engines started so far
	cur     *engine.Engine    // nil while no engine runs
	curNode int               // the node cur runs on
	changed chan struct{}     // closed and replaced when cur changes
	starts  map[string]int    // executions started, per run and task
	onFirst func(term int)    // told of each term's first committed decision
	firstOf map[int]struct{}  // terms whose first decision was told
	began   map[int]time.Time // when each term's node became leader
}

type clusterNode struct {
	id, dir, addr string
	mux           *cluster.Mux
	st            *store.Store
	member        *cluster.Node
	stopWatch     func()
	// engine of this node's current term, if it leads
	stopEngine func()
}

// OpenCluster starts n nodes in dirs under dir and waits until they have
// formed a cluster and the leader's engine runs.
func OpenCluster(ctx context.Context, dir string, n int, opts Options, progress io.Writer) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("bench: --cluster %d: want at least 1 node", n)
	}
	if progress == nil {
		progress = io.Discard
	}
	c := &Cluster{noSync: opts.NoSync, rec: &recorder{}, log: progress, changed: make(chan struct{}), starts: map[string]int{}, firstOf: map[int]struct{}{}, began: map[int]time.Time{}}
	var addrs []string
	for i := range n {
		nd := &clusterNode{id: fmt.Sprintf("bench-%d", i), dir: filepath.Join(dir, fmt.Sprintf("node%d", i))}
		m, err := cluster.Listen("127.0.0.1:0", "")
		if err != nil {
			c.Close()
			return nil, err
		}
		nd.mux, nd.addr = m, m.Addr()
		c.nodes = append(c.nodes, nd)
		addrs = append(addrs, nd.addr)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range c.nodes {
		if err := c.open(ctx, i, n, addrs); err != nil {
			c.Close()
			return nil, err
		}
	}
	fctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i, nd := range c.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = nd.member.Form(fctx) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Close()
		return nil, fmt.Errorf("bench: forming the cluster: %w", err)
	}
	if _, _, err := c.engine(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// open opens node i's store on its cluster port (listening again on its
// address when the port was closed) and follows its leadership.
func (c *Cluster) open(ctx context.Context, i, expect int, join []string) error {
	nd := c.nodes[i]
	if nd.mux == nil {
		m, err := cluster.Listen(nd.addr, "")
		if err != nil {
			return err
		}
		nd.mux = m
	}
	scfg := store.DefaultConfig(filepath.Join(nd.dir, "store"))
	scfg.NoSync = c.noSync
	scfg.Raft = store.DefaultRaftConfig()
	scfg.Raft.NodeID = nd.id
	scfg.Raft.Transport = nd.mux.Transport(nil)
	st, err := store.Open(ctx, scfg)
	if err != nil {
		nd.mux.Close()
		nd.mux = nil
		return fmt.Errorf("bench: open %s: %w", nd.id, err)
	}
	ncfg := cluster.DefaultConfig("http://" + nd.id + ".invalid")
	ncfg.BootstrapExpect, ncfg.Join = expect, join
	ncfg.RetryInterval = 50 * time.Millisecond
	member, err := cluster.New(ncfg, st, nd.mux)
	if err != nil {
		st.Close()
		return err
	}
	member.Serve()
	nd.st, nd.member = st, member
	nd.stopWatch = st.WatchLeadership(func(leader bool) {
		if leader {
			c.startEngine(i)
		} else {
			c.stopEngine(i)
		}
	})
	return nil
}

// startEngine runs an engine on node i, which has just become leader.
func (c *Cluster) startEngine(i int) {
	nd := c.nodes[i]
	c.mu.Lock()
	c.term++
	term := c.term
	c.began[term] = time.Now()
	c.mu.Unlock()
	ecfg := engine.DefaultConfig(nd.st, &countingExecutor{&timedExecutor{sim.New(sim.Config{}), c.rec}, c})
	ecfg.OnUpdate = func(us []engine.Update) { c.rec.onUpdate(us); c.decided(term) }
	e, err := engine.New(ecfg)
	if err != nil {
		fmt.Fprintf(c.log, "bench: %s: engine: %v\n", nd.id, err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = e.Run(ctx) }()
	stop := func() { cancel(); <-done }
	// The catch-up barrier is tried again while this node still leads: a
	// leader without an engine would hold every run.
	for {
		bctx, bcancel := context.WithTimeout(ctx, 10*time.Second)
		err = nd.st.VerifyLeader(bctx)
		bcancel()
		if err == nil {
			_, err = e.Resume(ctx)
		}
		if err == nil {
			break
		}
		if !nd.st.IsLeader() {
			stop()
			return
		}
		fmt.Fprintf(c.log, "bench: %s leads but cannot start its engine yet: %v\n", nd.id, err)
		time.Sleep(100 * time.Millisecond) // then try the barrier again
	}
	c.mu.Lock()
	nd.stopEngine = stop
	c.cur, c.curNode = e, i
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
}

func (c *Cluster) stopEngine(i int) {
	c.mu.Lock()
	nd := c.nodes[i]
	stop := nd.stopEngine
	nd.stopEngine = nil
	if c.curNode == i && c.cur != nil {
		c.cur = nil
		close(c.changed)
		c.changed = make(chan struct{})
	}
	c.mu.Unlock()
	if stop != nil {
		// Not waited for: an engine whose commit is still pending in raft
		// after the step-down can take a while to return, and the next
		// leader's engine must not wait for it (it ends by itself, or when
		// its store closes).
		go stop()
	}
}

// decided is called after each committed batch of term's engine.
func (c *Cluster) decided(term int) {
	c.mu.Lock()
	_, seen := c.firstOf[term]
	c.firstOf[term] = struct{}{}
	fn := c.onFirst
	c.mu.Unlock()
	if !seen && fn != nil {
		fn(term)
	}
}

// engine waits for the leader's engine and returns it with its node.
func (c *Cluster) engine(ctx context.Context) (*engine.Engine, int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		c.mu.Lock()
		e, i, ch := c.cur, c.curNode, c.changed
		c.mu.Unlock()
		if e != nil {
			return e, i, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, -1, fmt.Errorf("bench: no leader engine (%s): %w", c.states(), ctx.Err())
		}
	}
}

// Run measures one run of w as Node.Run does, on whichever node leads:
// a submission refused by a node that has just lost leadership is tried
// again on the next leader, and the wait follows the run across leaders.
// LeaderChanges in the result counts the terms that began meanwhile.
func (c *Cluster) Run(ctx context.Context, w Workload) (Result, int, error) {
	p, err := w.Plan()
	if err != nil {
		return Result{}, 0, err
	}
	if w.Warmup() {
		if _, _, err := c.run(ctx, w, p); err != nil {
			return Result{}, 0, fmt.Errorf("warm-up: %w", err)
		}
	}
	return c.run(ctx, w, p)
}

func (c *Cluster) run(ctx context.Context, w Workload, p *spec.Plan) (Result, int, error) {
	runtime.GC()
	heap := newHeapSampler()
	c.rec.reset(w.Tasks(p))
	c.mu.Lock()
	term0 := c.term
	c.mu.Unlock()
	_, i, err := c.engine(ctx)
	if err != nil {
		heap.stop()
		return Result{}, 0, err
	}
	before := c.nodes[i].st.AppliedIndex()
	start := time.Now()
	var id string
	for try := 0; ; try++ {
		e, _, err := c.engine(ctx)
		if err == nil {
			// The request id makes a retried submission create one run.
			id, err = e.Submit(ctx, p, map[string]json.RawMessage{}, engine.SubmitOptions{RequestID: fmt.Sprintf("bench-%d-%s", start.UnixNano(), w.Name())})
		}
		if err == nil {
			break
		}
		if try == 20 || ctx.Err() != nil {
			heap.stop()
			return Result{}, 0, err
		}
		time.Sleep(50 * time.Millisecond) // leadership is moving
	}
	c.rec.submitted.Store(time.Now().UnixNano())
	r, err := c.wait(ctx, id)
	wall := time.Since(start)
	peak := heap.stop()
	if err != nil {
		return Result{}, 0, err
	}
	if r.State != spec.RunSucceeded {
		return Result{}, 0, fmt.Errorf("%s: run %s ended %s: %s", w.Name(), id, r.State, r.Error)
	}
	c.mu.Lock()
	changes := c.term - term0
	c.mu.Unlock()
	_, i, err = c.engine(ctx)
	if err != nil {
		return Result{}, 0, err
	}
	return Result{
		Workload: w.Name(), Tasks: w.Tasks(p), Wall: wall,
		Entries: c.nodes[i].st.AppliedIndex() - before, Cached: int(c.rec.cached.Load()),
		Latency: c.rec.latency(p), FirstDispatch: c.rec.firstDispatch(),
		HeapBase: heap.base, HeapPeak: peak, LiveBase: heap.liveBase, LivePeak: heap.livePeak.Load(),
	}, changes, nil
}

// kill stops node i abruptly: its engine, its raft (without handing over
// leadership) and its cluster port, as a crash would.
func (c *Cluster) kill(i int) {
	nd := c.nodes[i]
	if nd.st == nil {
		return
	}
	nd.member.Close()
	nd.stopWatch() // stops its engine if it leads
	_ = nd.st.Close()
	_ = nd.mux.Close()
	nd.st, nd.mux, nd.member = nil, nil, nil
}

// states describes each node's raft state, for errors.
func (c *Cluster) states() string {
	var out []string
	for _, nd := range c.nodes {
		if nd.st == nil {
			out = append(out, nd.id+": down")
			continue
		}
		st := nd.st.Status()
		out = append(out, fmt.Sprintf("%s: %s term %d leader %q applied %d", nd.id, st.State, st.Term, st.LeaderID, st.AppliedIndex))
	}
	return strings.Join(out, "; ")
}

// Close stops every node.
func (c *Cluster) Close() error {
	for i := range c.nodes {
		c.kill(i)
	}
	return nil
}

// countingExecutor counts the executions started per run and task.
type countingExecutor struct {
	executors.Executor
	c *Cluster
}

func (x *countingExecutor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	x.c.mu.Lock()
	x.c.starts[fmt.Sprintf("%s/%d/%s", s.RunID, s.TaskIndex, s.Task)]++
	x.c.mu.Unlock()
	return x.Executor.Start(ctx, s, report)
}

// startedTwice is the number of executions started again for a task
// already started (every start after a task's first).
func (c *Cluster) startedTwice() (twice, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.starts {
		total += n
		twice += n - 1
	}
	return twice, total
}

// ClusterResult is a workload's figures on the cluster, beside the single
// node's.
type ClusterResult struct {
	Nodes          int     `json:"nodes"`
	Tasks          int     `json:"tasks,omitempty"`
	WallS          float64 `json:"wall_s,omitempty"`
	TasksPerSec    float64 `json:"tasks_per_sec,omitempty"`
	LatencyP50Ms   float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms   float64 `json:"latency_p99_ms,omitempty"`
	EntriesPerTask float64 `json:"entries_per_task,omitempty"`
	// OfSingle is the cluster's tasks/s over the single node's.
	OfSingle float64 `json:"of_single,omitempty"`
	// LeaderChanges: leaders elected while the workload ran (on a loaded
	// machine heartbeats can time out); the run carried on through them.
	LeaderChanges int    `json:"leader_changes,omitempty"`
	Skipped       string `json:"skipped,omitempty"`
	Error         string `json:"error,omitempty"`
}

// runCluster measures every workload on a fresh cluster of cfg.Cluster
// nodes, then the failover when asked.
func runCluster(ctx context.Context, cfg Config, ws []Workload, runs int, dir string, rep *Report, progress io.Writer) error {
	fmt.Fprintf(progress, "starting a cluster of %d on loopback ...\n", cfg.Cluster)
	c, err := OpenCluster(ctx, filepath.Join(dir, "cluster"), cfg.Cluster, Options{NoSync: cfg.NoSync}, progress)
	if err != nil {
		return err
	}
	defer c.Close()
	rep.ClusterNodes = cfg.Cluster
	for i, w := range ws {
		res := &rep.Results[i]
		cr := ClusterResult{Nodes: cfg.Cluster}
		if w.Executor != "sim" {
			cr.Skipped = "the cluster bench runs sim workloads only"
			res.Cluster = &cr
			continue
		}
		fmt.Fprintf(progress, "cluster-%d %s ...\n", cfg.Cluster, w.Name())
		var rs []Result
		for range runs {
			r, changes, err := c.Run(ctx, w)
			if err != nil {
				cr.Error = err.Error()
				break
			}
			rs = append(rs, r)
			cr.LeaderChanges += changes
		}
		if cr.Error == "" {
			m := NewResult(rs)
			cr.Tasks, cr.WallS, cr.TasksPerSec = m.Tasks, m.WallS, m.TasksPerSec
			cr.LatencyP50Ms, cr.LatencyP99Ms, cr.EntriesPerTask = m.LatencyP50Ms, m.LatencyP99Ms, m.EntriesPerTask
			if res.TasksPerSec > 0 {
				cr.OfSingle = cr.TasksPerSec / res.TasksPerSec
			}
		}
		res.Cluster = &cr
	}
	if cfg.Failover > 0 {
		fmt.Fprintf(progress, "cluster-%d failover: killing the leader %d times during fan-outs ...\n", cfg.Cluster, cfg.Failover)
		f := c.RunFailover(ctx, cfg.Failover, 0)
		rep.Failover = &f
	}
	return nil
}
