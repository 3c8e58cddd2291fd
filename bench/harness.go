package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/executors/local"
	"github.com/skiffml/skiff/executors/sim"
	"github.com/skiffml/skiff/store"
	"github.com/skiffml/skiff/store/blob"
)

// FsyncsPerEntry is the estimated number of fsyncs one store entry costs
// with syncs on when the raft log is raft-boltdb (the WAL's are counted:
// store.LogSyncs). Each entry is one raft-boltdb transaction (the raft log),
// and a bbolt commit calls fdatasync twice: once for the data pages, once
// for the meta page. The state.db transaction applying it is not synced
// (the log is what makes the entry durable; see store's fsm). The engine
// proposes one entry at a time and waits for it, so raft seldom batches
// entries into one log write; snapshots (every 4096 entries) and file
// growth add a few more. The figure is therefore entries × 2.
const FsyncsPerEntry = 2

// Node is a real embedded node (store with its Raft log, blobs, local and
// sim executors, engine) over a data dir, for benchmarks.
type Node struct {
	Store  *store.Store
	Engine *engine.Engine
	// Progress, when set, receives a line every second while a run lasts
	// longer than a second.
	Progress io.Writer

	rec  *recorder
	reg  *prometheus.Registry // the engine's metrics: commit time
	stop context.CancelFunc
	done chan error
}

// Options tune a benchmark node.
type Options struct {
	NoSync bool // skip fsyncs (never for reported figures)
	// LogStore is the raft log's backend (store.LogStoreWAL or
	// store.LogStoreBolt); "" = the store's default.
	LogStore string
	// SnapshotThreshold is the store's (log entries between snapshots);
	// 0 = the store's default.
	SnapshotThreshold uint64
}

// OpenNode opens a node in dir and starts its engine loop.
func OpenNode(ctx context.Context, dir string, opts Options) (*Node, error) {
	scfg := store.DefaultConfig(filepath.Join(dir, "store"))
	scfg.NoSync = opts.NoSync
	if opts.LogStore != "" {
		scfg.LogStore = opts.LogStore
	}
	if opts.SnapshotThreshold != 0 {
		scfg.SnapshotThreshold = opts.SnapshotThreshold
	}
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
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	ecfg := engine.DefaultConfig(st, &timedExecutor{sim.New(sim.Config{}), rec}, &timedExecutor{lx, rec})
	ecfg.OnUpdate = rec.onUpdate
	ecfg.Registerer = reg
	eng, err := engine.New(ecfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	n := &Node{Store: st, Engine: eng, rec: rec, reg: reg, stop: stop, done: make(chan error, 1)}
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
	// Wall runs from the pipeline's YAML text to the run's final state
	// durable: parse and plan (Parse), then submission to the final
	// state (Sched).
	Wall  time.Duration
	Parse time.Duration // YAML text to finalized plan
	Sched time.Duration // submission to the run's final state durable
	// CPU is the process's CPU time over Sched, its steps' processes
	// included (processCPU): above Sched, the run kept more than one core
	// busy. Breakdown splits it per task.
	CPU time.Duration
	// Breakdown splits the run's time by where it went (see Breakdown).
	Breakdown Breakdown
	Entries   uint64 // store entries committed for the run
	// LogStore is the raft log's backend; LogSyncs the fsyncs it made
	// during the run when SyncsCounted (the WAL), else 0.
	LogStore     string
	LogSyncs     uint64
	SyncsCounted bool
	Cached       int // tasks that SUCCEEDED from the cache
	// Latency is the scheduling latency from ready to dispatched, over
	// every task (see recorder).
	Latency Latency
	// FirstDispatch is the time from submission to the first execution
	// started.
	FirstDispatch time.Duration
	// HeapBase is the heap in use before the run; HeapPeak the highest
	// sampled while it ran.
	HeapBase, HeapPeak uint64
	// LiveBase and LivePeak: the same for the live heap (as of each GC).
	LiveBase, LivePeak uint64
}

// Latency summarises per-task scheduling latencies.
type Latency struct {
	P50, P99, Max time.Duration
}

// TasksPerSec is the throughput of the run.
func (r Result) TasksPerSec() float64 { return float64(r.Tasks) / r.Wall.Seconds() }

// EntriesPerTask is the store entries committed per task.
func (r Result) EntriesPerTask() float64 { return float64(r.Entries) / float64(r.Tasks) }

// FsyncsPerTask is the log's fsyncs per task: counted when SyncsCounted,
// else estimated (see FsyncsPerEntry).
func (r Result) FsyncsPerTask() float64 {
	if r.SyncsCounted {
		return float64(r.LogSyncs) / float64(r.Tasks)
	}
	return r.EntriesPerTask() * FsyncsPerEntry
}

// LiveBytesPerTask is the live heap the run added at its peak, per task:
// the memory the engine holds for it, without uncollected garbage.
func (r Result) LiveBytesPerTask() float64 {
	if r.LivePeak < r.LiveBase {
		return 0
	}
	return float64(r.LivePeak-r.LiveBase) / float64(r.Tasks)
}

// HeapBytesPerTask is the heap the run added at its peak, per task.
func (r Result) HeapBytesPerTask() float64 {
	if r.HeapPeak < r.HeapBase {
		return 0
	}
	return float64(r.HeapPeak-r.HeapBase) / float64(r.Tasks)
}

// Run compiles the workload's pipeline text (Workload.YAML), submits the
// plan and waits for its end; wall time runs from the text to the run's
// final state being durable, and Sched from submission to that. A
// workload with a warm-up (cached-N) is run once first, unmeasured.
func (n *Node) Run(ctx context.Context, w Workload) (Result, error) {
	if w.Warmup() {
		p, err := w.Plan()
		if err != nil {
			return Result{}, err
		}
		if _, err := n.run(ctx, w, nil, p, false); err != nil {
			return Result{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	return n.run(ctx, w, w.YAML(), nil, true)
}

// logSyncsSince is the log's counted fsyncs since it counted before.
func logSyncsSince(st *store.Store, before uint64) uint64 {
	now, _ := st.LogSyncs()
	return now - before
}

// run runs plan p, or, when text is set, the plan compiled from it, timed.
func (n *Node) run(ctx context.Context, w Workload, text []byte, p *spec.Plan, measured bool) (Result, error) {
	runtime.GC()
	heap := newHeapSampler()
	before := n.Store.AppliedIndex()
	syncsBefore, counted := n.Store.LogSyncs()
	commitBefore := n.commitSeconds()
	start := time.Now()
	if text != nil {
		var err error
		if p, err = spec.ParseSkiff(text); err != nil {
			heap.stop()
			return Result{}, fmt.Errorf("%s: parse its pipeline text: %w", w.Name(), err)
		}
	}
	parsed := time.Now()
	n.rec.reset(w.Tasks(p))
	stopProgress := n.progress(w.Name(), w.Tasks(p), start, measured)
	defer stopProgress()
	cpu0 := processCPU()
	id, err := n.Engine.Submit(ctx, p, map[string]json.RawMessage{}, engine.SubmitOptions{})
	if err != nil {
		heap.stop()
		return Result{}, err
	}
	n.rec.submitted.Store(time.Now().UnixNano())
	r, err := n.Engine.Wait(ctx, id)
	wall := time.Since(start)
	cpu := processCPU().since(cpu0)
	peak := heap.stop()
	if err != nil {
		return Result{}, err
	}
	if r.State != spec.RunSucceeded {
		return Result{}, fmt.Errorf("%s: run %s ended %s: %s", w.Name(), id, r.State, r.Error)
	}
	res := Result{
		Workload:      w.Name(),
		Tasks:         w.Tasks(p),
		Wall:          wall,
		Parse:         parsed.Sub(start),
		Sched:         wall - parsed.Sub(start),
		CPU:           cpu.total(),
		Breakdown:     n.rec.breakdown(w.Tasks(p), n.commitSeconds().minus(commitBefore)),
		Entries:       n.Store.AppliedIndex() - before,
		LogStore:      n.Store.LogStore(),
		LogSyncs:      logSyncsSince(n.Store, syncsBefore),
		SyncsCounted:  counted,
		Cached:        int(n.rec.cached.Load()),
		Latency:       n.rec.latency(p),
		FirstDispatch: n.rec.firstDispatch(),
		HeapBase:      heap.base,
		HeapPeak:      peak,
		LiveBase:      heap.liveBase,
		LivePeak:      heap.livePeak.Load(),
	}
	if t := float64(res.Tasks); t > 0 {
		res.Breakdown.SkiffCPUMsPerTask = ms(cpu.self) / t
		res.Breakdown.StepsCPUMsPerTask = ms(cpu.children) / t
	}
	if w.Shape == ShapeChain {
		b := &res.Breakdown
		b.EngineMsPerTask = max(0, ms(res.Sched)/float64(res.Tasks)-b.ExecMsPerTask-b.CommitMsPerTask)
	}
	return res, nil
}

// progress prints a line to n.Progress every second until the returned
// func is called.
func (n *Node) progress(name string, total int, start time.Time, measured bool) func() {
	if n.Progress == nil {
		return func() {}
	}
	label := name
	if !measured {
		label += " (warm-up)"
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintf(n.Progress, "  %s: %d/%d tasks done, %.0fs\n", label, n.rec.finished.Load(), total, time.Since(start).Seconds())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// recorder timestamps each task of the current run, by the wall clock of
// this process, to measure the scheduling latency from ready to
// dispatched:
//
//   - a task is done when its executor reports it exited, or, for a task
//     that never reaches an executor (a cache hit), when the engine
//     reports its SUCCEEDED update (after the commit);
//   - a task is ready when the last of its dependencies is done; a task
//     without dependencies is ready when Submit returns (the run durable);
//   - a task is dispatched when the engine calls its executor's Start,
//     after the entry that records it RUNNING is durable, or, for a cache
//     hit, when its SUCCEEDED update is reported.
//
// The latency thus covers the engine's own path: the event reaching the
// loop, the scheduler's decision, the store entry with its fsyncs, and
// the call to the executor. (The engine's OnUpdate times alone would not
// do: a dependency's SUCCEEDED and its dependants' RUNNING are committed
// in the same entry, so they always carry the same time.)
type recorder struct {
	submitted atomic.Int64
	finished  atomic.Int64 // tasks in a final state
	cached    atomic.Int64
	// firstUpdate and firstStart: when the engine first reported a
	// committed change, and first called an executor's Start, since the
	// node opened (never reset).
	firstUpdate, firstStart atomic.Int64
	// startNanos sums the time spent inside executors' Start calls;
	// execNanos the time from each Start call to its exit report; execs
	// counts the executions.
	startNanos, execNanos, execs atomic.Int64
	mu                           sync.RWMutex // guards the slices' identity, not their slots
	done                         []atomic.Int64
	disp                         []atomic.Int64
}

func (r *recorder) reset(tasks int) {
	r.mu.Lock()
	r.done = make([]atomic.Int64, tasks)
	r.disp = make([]atomic.Int64, tasks)
	r.mu.Unlock()
	r.submitted.Store(0)
	r.finished.Store(0)
	r.cached.Store(0)
	r.startNanos.Store(0)
	r.execNanos.Store(0)
	r.execs.Store(0)
}

// mark sets slot i of s to now unless it is set already.
func (r *recorder) mark(s func() []atomic.Int64, i int) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if sl := s(); i >= 0 && i < len(sl) {
		sl[i].CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (r *recorder) dispatched(task int) { r.mark(func() []atomic.Int64 { return r.disp }, task) }
func (r *recorder) exited(task int)     { r.mark(func() []atomic.Int64 { return r.done }, task) }

func (r *recorder) onUpdate(us []engine.Update) {
	r.firstUpdate.CompareAndSwap(0, time.Now().UnixNano())
	for _, u := range us {
		if u.Task < 0 || !u.TaskState.Final() {
			continue
		}
		r.finished.Add(1)
		if u.Cached {
			r.cached.Add(1)
			r.dispatched(u.Task)
			r.exited(u.Task)
		}
	}
}

func (r *recorder) latency(p *spec.Plan) Latency {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sub := r.submitted.Load()
	lat := make([]time.Duration, 0, len(r.disp))
	for i := range r.disp {
		ready := sub
		if i < len(p.Tasks) {
			for _, d := range p.Tasks[i].Deps {
				ready = max(ready, r.done[d].Load())
			}
		} // else a loop iteration's task: ready when its loop is, at submission
		disp := r.disp[i].Load()
		if disp == 0 {
			continue // never dispatched (cannot happen in a run that succeeded)
		}
		// A root may be dispatched before Submit returns: latency 0.
		lat = append(lat, time.Duration(max(0, disp-ready)))
	}
	if len(lat) == 0 {
		return Latency{}
	}
	slices.Sort(lat)
	return Latency{P50: quantile(lat, 0.50), P99: quantile(lat, 0.99), Max: lat[len(lat)-1]}
}

// firstDispatch is the time from submission to the first execution start.
func (r *recorder) firstDispatch() time.Duration {
	r.mu.RLock()
	defer r.mu.RUnlock()
	sub, first := r.submitted.Load(), int64(0)
	for i := range r.disp {
		if d := r.disp[i].Load(); d != 0 && (first == 0 || d < first) {
			first = d
		}
	}
	if first == 0 {
		return 0
	}
	return time.Duration(max(0, first-sub))
}

// quantile returns the nearest-rank q-quantile of sorted.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// timedExecutor tells the recorder when the engine starts an execution
// and when the executor reports its exit.
type timedExecutor struct {
	executors.Executor
	rec *recorder
}

func (x *timedExecutor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	x.rec.firstStart.CompareAndSwap(0, time.Now().UnixNano())
	x.rec.dispatched(s.TaskIndex)
	task := s.TaskIndex
	start := time.Now()
	x.rec.execs.Add(1)
	err := x.Executor.Start(ctx, s, func(ev executors.Event) {
		if ev.Kind == executors.EventExited {
			x.rec.execNanos.Add(int64(time.Since(start)))
			x.rec.exited(task)
		}
		report(ev)
	})
	x.rec.startNanos.Add(int64(time.Since(start)))
	return err
}

// heapSampler samples the heap in use (runtime.MemStats.HeapInuse, read
// through runtime/metrics, which does not stop the world) every 5 ms.
type heapSampler struct {
	base uint64
	peak atomic.Uint64
	// liveBase and livePeak: the live heap as of the last GC cycle
	// (/gc/heap/live:bytes), without the garbage HeapInuse also counts.
	liveBase uint64
	livePeak atomic.Uint64
	done     chan struct{}
	wg       sync.WaitGroup
}

func newHeapSampler() *heapSampler {
	h := &heapSampler{done: make(chan struct{})}
	h.base = heapInuse()
	h.peak.Store(h.base)
	h.liveBase = heapLive()
	h.livePeak.Store(h.liveBase)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case <-t.C:
				h.sample()
			}
		}
	}()
	return h
}

func (h *heapSampler) sample() {
	raise(&h.peak, heapInuse())
	raise(&h.livePeak, heapLive())
}

func raise(x *atomic.Uint64, v uint64) {
	for {
		p := x.Load()
		if v <= p || x.CompareAndSwap(p, v) {
			return
		}
	}
}

// heapLive is the heap found live by the last GC cycle.
func heapLive() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		return s[0].Value.Uint64()
	}
	return 0
}

// stop ends sampling and returns the peak.
func (h *heapSampler) stop() uint64 {
	close(h.done)
	h.wg.Wait()
	h.sample()
	return h.peak.Load()
}

var heapMetrics = []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/unused:bytes"}

// heapInuse is MemStats.HeapInuse: live and dead objects plus the unused
// space of in-use spans.
func heapInuse() uint64 {
	s := make([]metrics.Sample, len(heapMetrics))
	for i, name := range heapMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	var sum uint64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			sum += x.Value.Uint64()
		}
	}
	return sum
}

// Breakdown splits a run's time per task by where it went, from counters
// the harness and the engine keep anyway (cheap: two clock reads per
// execution, one metrics gather per run):
//
//   - Start: inside the executor's Start call (for the local executor, the
//     work dir and the fork/exec of the step's process);
//   - Exec: from that call to the executor's exit report (the process's
//     start, its run, its wait, the executor's output handling): with
//     /bin/true this is process start; where tasks run at once it also
//     holds the wait for a slot of the local executor (its CPU count);
//   - Commit: the engine's commits (skiff_engine_commit_seconds: the store
//     entry through Raft, the log's fsync and the state machine's apply);
//   - Engine: the rest of the wall time per task (event delivery, the
//     scheduler's decisions, bookkeeping). Only for a chain do the three
//     add up to the wall time; where tasks run at once their executions
//     overlap each other and the commits, and Engine is then left out (0).
type Breakdown struct {
	Executions      int     `json:"executions"`
	StartMsPerTask  float64 `json:"executor_start_ms_per_task"`
	ExecMsPerTask   float64 `json:"process_ms_per_task"`
	Commits         int     `json:"commits"`
	CommitMsPerTask float64 `json:"commit_ms_per_task"`
	EngineMsPerTask float64 `json:"engine_ms_per_task,omitempty"`
	// SkiffCPUMsPerTask and StepsCPUMsPerTask split the run's CPU time
	// per task: Skiff's process (every goroutine, the garbage collector's
	// too) and the steps' processes (from the time a step is waited for).
	SkiffCPUMsPerTask float64 `json:"skiff_cpu_ms_per_task"`
	StepsCPUMsPerTask float64 `json:"steps_cpu_ms_per_task"`
}

type histSum struct {
	sum   float64
	count uint64
}

// commitSeconds reads the engine's commit-time histogram.
func (n *Node) commitSeconds() histSum {
	mfs, err := n.reg.Gather()
	if err != nil {
		return histSum{}
	}
	for _, mf := range mfs {
		if mf.GetName() != "skiff_engine_commit_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				return histSum{h.GetSampleSum(), h.GetSampleCount()}
			}
		}
	}
	return histSum{}
}

func (h histSum) minus(o histSum) histSum { return histSum{h.sum - o.sum, h.count - o.count} }

// breakdown is the run's Breakdown so far; commit is the engine's commit
// time during the run.
func (r *recorder) breakdown(tasks int, commit histSum) Breakdown {
	per := func(ns int64) float64 { return float64(ns) / 1e6 / float64(max(tasks, 1)) }
	return Breakdown{
		Executions:      int(r.execs.Load()),
		StartMsPerTask:  per(r.startNanos.Load()),
		ExecMsPerTask:   per(r.execNanos.Load()),
		Commits:         int(commit.count),
		CommitMsPerTask: commit.sum * 1e3 / float64(max(tasks, 1)),
	}
}
