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
	"sync/atomic"
	"time"

	"github.com/skiffml/skiff/cluster"
	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/leader"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/worker"
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

	mu         sync.Mutex
	term       int               // engines started so far
	cur        *engine.Engine    // nil while no engine runs
	curNode    int               // the node cur runs on
	changed    chan struct{}     // closed and replaced when cur changes
	starts     map[string]int    // starts per execution id
	taskStarts map[string]int    // starts per run and task
	onFirst    func(term int)    // told of each term's first committed decision
	firstOf    map[int]struct{}  // terms whose first decision was told
	began      map[int]time.Time // when each term's node became leader
}

type clusterNode struct {
	id, dir, addr string
	mux           *cluster.Mux
	st            *store.Store
	member        *cluster.Node
	stopWatch     func()
	stopWorker    func()
	stopLeader    func()       // stops following leadership and the engine
	term          atomic.Int64 // the bench's term of this node's latest election
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
	c := &Cluster{noSync: opts.NoSync, rec: &recorder{}, log: progress, changed: make(chan struct{}), starts: map[string]int{}, taskStarts: map[string]int{}, firstOf: map[int]struct{}{}, began: map[int]time.Time{}}
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
// address when the port was closed), and runs what a server runs beside
// it: a worker offering the sim executor, and a leader.Leader that runs
// the engine, with its dispatcher, while the node leads.
func (c *Cluster) open(ctx context.Context, i, expect int, join []string) error {
	nd := c.nodes[i]
	if nd.mux == nil {
		m, err := cluster.Listen(nd.addr, "")
		if err != nil {
			return err
		}
		nd.mux = m
	}
	rc := store.DefaultRaftConfig()
	scfg := store.DefaultConfig(filepath.Join(nd.dir, "store"))
	scfg.NoSync = c.noSync
	scfg.Raft = rc
	scfg.Raft.NodeID = nd.id
	scfg.Raft.Transport = nd.mux.Transport(nil)
	st, err := store.Open(ctx, scfg)
	if err != nil {
		nd.mux.Close()
		nd.mux = nil
		return fmt.Errorf("bench: open %s: %w", nd.id, err)
	}
	fail := func(err error) error {
		st.Close()
		nd.mux.Close()
		nd.mux = nil
		return err
	}
	ncfg := cluster.DefaultConfig("http://" + nd.id + ".invalid")
	ncfg.BootstrapExpect, ncfg.Join = expect, join
	ncfg.RetryInterval = 50 * time.Millisecond
	member, err := cluster.New(ncfg, st, nd.mux)
	if err != nil {
		return fail(err)
	}
	d, err := worker.NewDispatcher(worker.DispatchConfig{Store: st, Kinds: []string{"sim"}, NodeTTL: rc.NodeTTL, Interval: rc.WorkerHeartbeat})
	if err != nil {
		return fail(err)
	}
	ecfg := engine.DefaultConfig(st, d.Executors()...)
	ecfg.OnUpdate = func(us []engine.Update) {
		c.rec.onUpdate(us)
		c.decided(int(nd.term.Load()))
	}
	ld, err := leader.New(leader.Config{Engine: ecfg, Store: st, Dispatch: d,
		OnElected: func() { c.elected(i) },
		OnChange:  func(e *engine.Engine) { c.engineChanged(i, e) }})
	if err != nil {
		return fail(err)
	}
	member.Serve()
	sim := &countingExecutor{&timedExecutor{sim.New(sim.Config{}), c.rec}, c}
	w, err := worker.New(worker.Config{NodeID: nd.id, Executors: []executors.Executor{sim},
		Proposer: workerProposer{member}, State: st, Heartbeat: rc.WorkerHeartbeat})
	if err != nil {
		member.Close()
		return fail(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	wdone := make(chan struct{})
	go func() { defer close(wdone); _ = w.Run(wctx) }()
	nd.st, nd.member = st, member
	nd.stopWorker = func() { wcancel(); <-wdone }
	nd.stopLeader = ld.Follow()
	return nil
}

// workerProposer sends a worker's commands through the leader, as a
// server's does.
type workerProposer struct{ m *cluster.Node }

func (p workerProposer) Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error) {
	return p.m.ProposeWorker(ctx, cmds...)
}

// elected starts a term: node i has just become leader.
func (c *Cluster) elected(i int) {
	c.mu.Lock()
	c.term++
	c.began[c.term] = time.Now()
	c.nodes[i].term.Store(int64(c.term))
	c.mu.Unlock()
}

// engineChanged records node i's engine: running (e) or stopped (nil).
func (c *Cluster) engineChanged(i int, e *engine.Engine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case e != nil:
		c.cur, c.curNode = e, i
	case c.curNode == i && c.cur != nil:
		c.cur = nil
	default:
		return
	}
	close(c.changed)
	c.changed = make(chan struct{})
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
	cpu0 := processCPU()
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
	cpu := processCPU().since(cpu0).total()
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
		Workload: w.Name(), Tasks: w.Tasks(p), Wall: wall, Sched: wall, CPU: cpu,
		Entries: c.nodes[i].st.AppliedIndex() - before, Cached: int(c.rec.cached.Load()),
		Latency: c.rec.latency(p), FirstDispatch: c.rec.firstDispatch(),
		HeapBase: heap.base, HeapPeak: peak, LiveBase: heap.liveBase, LivePeak: heap.livePeak.Load(),
	}, changes, nil
}

// kill stops node i abruptly: its raft (without handing over
// leadership), its cluster port, its worker and its engine, as a crash
// would. Raft and the port go first, so that nothing the dying node does
// afterwards reaches the others.
func (c *Cluster) kill(i int) {
	nd := c.nodes[i]
	if nd.st == nil {
		return
	}
	nd.member.Close()
	_ = nd.mux.Close()
	nd.stopWorker()
	_ = nd.st.Close()
	nd.stopLeader()
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

// countingExecutor counts the executions workers start, per execution
// (run, task, attempt) and per task.
type countingExecutor struct {
	executors.Executor
	c *Cluster
}

func (x *countingExecutor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	x.c.mu.Lock()
	x.c.starts[s.ID]++
	x.c.taskStarts[fmt.Sprintf("%s/%d", s.RunID, s.TaskIndex)]++
	x.c.mu.Unlock()
	return x.Executor.Start(ctx, s, report)
}

// startedTwice is the number of starts of an execution already started
// (the same attempt twice: what fencing must prevent), the number of
// tasks started again under a new attempt (their worker died with the
// leader), and all starts.
func (c *Cluster) startedTwice() (twice, rerun, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.starts {
		total += n
		twice += n - 1
	}
	for _, n := range c.taskStarts {
		if n > 1 {
			rerun++
		}
	}
	return twice, rerun, total
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
	// OfSingle is the cluster's tasks/s over the single node's, both from
	// submission (the single node's sched time: the cluster's wall has no parse).
	OfSingle float64 `json:"of_single,omitempty"`
	// CPUS is the process's CPU time over the cluster's run, every node's
	// work together (in the median run); CPUOfSingle sets it against
	// the single node's CPU over its sched time.
	CPUS        float64 `json:"cpu_s,omitempty"`
	CPUOfSingle float64 `json:"cpu_of_single,omitempty"`
	// CPUBoundOfSingle is the highest OfSingle this machine's Cores (the
	// Go scheduler's, GOMAXPROCS) allow the cluster's CPU time: the
	// single node's sched time over CPUS / Cores, the cluster's wall if
	// its work kept every core busy from start to end.
	CPUBoundOfSingle float64 `json:"cpu_bound_of_single,omitempty"`
	Cores            int     `json:"cores,omitempty"`
	// LeaderChanges: leaders elected while the workload ran (on a loaded
	// machine heartbeats can time out); the run carried on through them.
	LeaderChanges int    `json:"leader_changes,omitempty"`
	Skipped       string `json:"skipped,omitempty"`
	Error         string `json:"error,omitempty"`
}

// against sets the cluster's figures against the single node's, on a
// machine of cores cores. The cluster's wall runs from submission (no
// parse): it is set against the single node's sched time.
func (cr *ClusterResult) against(single *WorkloadResult, cores int) {
	if single.SchedS > 0 && cr.WallS > 0 {
		cr.OfSingle = single.SchedS / cr.WallS
	}
	if single.CPUS > 0 && cr.CPUS > 0 && cores > 0 {
		cr.Cores = cores
		cr.CPUOfSingle = cr.CPUS / single.CPUS
		cr.CPUBoundOfSingle = single.SchedS / (cr.CPUS / float64(cores))
	}
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
	for _, w := range ws {
		res := rep.result(w.Name())
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
			cr.CPUS = m.CPUS
			cr.against(res, runtime.GOMAXPROCS(0))
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
