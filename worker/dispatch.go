package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// DispatchStore is what the dispatcher needs of the leader's store.
type DispatchStore interface {
	Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error)
	Nodes() ([]store.Node, error)
	Assignment(execID string) (store.Assignment, error)
	Assignments(nodeID string) ([]store.Assignment, error)
	Subscribe(limit int) *store.Subscription
	// ID is this node's id: between equally loaded nodes the dispatcher
	// prefers its own worker (no forwarded reports, no wait for a
	// follower to learn of a commit).
	ID() string
}

// DispatchConfig configures a Dispatcher.
type DispatchConfig struct {
	Store DispatchStore
	// Kinds are the executor names the engine may dispatch ("local",
	// "docker", "sim").
	Kinds []string
	// NodeTTL: a node whose last heartbeat is older is declared down.
	NodeTTL time.Duration
	// Interval is how often leases are checked and waiting executions
	// placed again (Raft.WorkerHeartbeat).
	Interval time.Duration
	// MaxBatch caps the assignments committed in one entry.
	MaxBatch int
	Logger   *slog.Logger
	Now      func() time.Time // nil = time.Now
}

// Validate reports the first invalid field.
func (c DispatchConfig) Validate() error {
	switch {
	case c.Store == nil:
		return fmt.Errorf("%w: Store: required", ErrInvalidConfig)
	case len(c.Kinds) == 0:
		return fmt.Errorf("%w: Kinds: at least one", ErrInvalidConfig)
	case c.NodeTTL <= 0:
		return fmt.Errorf("%w: NodeTTL: must be positive", ErrInvalidConfig)
	case c.Interval <= 0:
		return fmt.Errorf("%w: Interval: must be positive", ErrInvalidConfig)
	case c.MaxBatch < 0:
		return fmt.Errorf("%w: MaxBatch: must not be negative", ErrInvalidConfig)
	}
	return nil
}

// Dispatcher places executions on workers for the leader's engine. Run it
// for each term the node leads, with the engine of that term.
type Dispatcher struct {
	cfg   DispatchConfig
	log   *slog.Logger
	now   func() time.Time
	kinds map[string]*Remote
	wake  chan struct{}

	mu       sync.Mutex
	followed map[string]*followed // by execution id: the engine waits for its events
	waiting  []*waitingStart      // not assigned yet, in Start order
	load     map[string]placed    // live assignments, by execution id
	// readUpTo: no read of an assignment the dispatcher acted on saw
	// past this index (see latestAssignments).
	readUpTo  uint64
	termStart time.Time
}

type followed struct {
	report        func(executors.Event)
	started, done bool
	waiting       string // the last waiting reason delivered
	cancel        bool   // Cancel came while its assignment was being committed
	// placing: Place made its assignment, which the engine is committing
	// with its attempt (Placed says how that went).
	placing *waitingStart
	// missed: while placing, a read or change found no assignment (a
	// rescan before the commit, or an end after it): Placed reads it
	// again. Otherwise the placement's own change settles its load.
	missed bool
}

type waitingStart struct {
	s     *executors.Spec
	kind  string
	since time.Time
}

type placed struct {
	node string
	res  spec.Resources
}

// NewDispatcher returns a dispatcher; Executor gives the engine its
// executors.
func NewDispatcher(cfg DispatchConfig) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 1024
	}
	d := &Dispatcher{cfg: cfg, log: cfg.Logger, now: cfg.Now, kinds: map[string]*Remote{}, wake: make(chan struct{}, 1),
		followed: map[string]*followed{}, load: map[string]placed{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	for _, k := range cfg.Kinds {
		d.kinds[k] = &Remote{d: d, kind: k}
	}
	return d, nil
}

// Executors returns the engine's executors: one per kind, each placing
// its executions on workers that offer it.
func (d *Dispatcher) Executors() []executors.Executor {
	out := make([]executors.Executor, 0, len(d.cfg.Kinds))
	for _, k := range d.cfg.Kinds {
		out = append(out, d.kinds[k])
	}
	return out
}

// Start begins a term: it subscribes to the feed and reads the live
// assignments (so that nothing applied from now on is missed), then runs
// the dispatch loop until ctx ends. wait returns once the loop ended.
func (d *Dispatcher) Start(ctx context.Context) (wait func()) {
	sub := d.cfg.Store.Subscribe(0)
	d.mu.Lock()
	d.termStart = d.now()
	clear(d.followed) // the previous term's engine is gone
	d.waiting = nil
	d.mu.Unlock()
	d.rescan()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sub.Close()
		d.loop(ctx, sub)
	}()
	return func() { <-done }
}

func (d *Dispatcher) loop(ctx context.Context, sub *store.Subscription) {
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub.Ready():
			changes, lagged := sub.Next()
			if lagged {
				d.rescan()
			}
			if d.onChanges(changes) {
				d.place(ctx)
			}
		case <-d.wake:
			d.place(ctx)
		case <-tick.C:
			d.checkLeases(ctx)
			d.place(ctx)
		}
	}
}

// onChanges acts on a batch of the feed's changes; true if a node
// changed (the placements may then be made anew).
func (d *Dispatcher) onChanges(changes []store.Change) (nodes bool) {
	for _, ch := range changes {
		nodes = nodes || len(ch.Nodes) > 0
	}
	for _, u := range latestAssignments(changes, nil) {
		if u.known {
			d.onAssignmentState(u.id, u.a, u.at)
		} else {
			d.onAssignment(u.id)
		}
	}
	return nodes
}

// rescan rebuilds the load from the store and delivers what the followed
// executions' assignments say.
func (d *Dispatcher) rescan() {
	as, err := d.cfg.Store.Assignments("")
	if err != nil {
		d.log.Error("dispatch: read assignments", "err", err)
		return
	}
	load := map[string]placed{}
	for _, a := range as {
		if a.Live() {
			load[a.ExecutionID] = placed{node: a.NodeID, res: a.Resources}
		}
	}
	d.mu.Lock()
	for id, f := range d.followed {
		if p, ok := d.load[id]; ok && f.placing != nil {
			load[id] = p // being committed with its attempt: not in the store yet
		}
	}
	d.load = load
	ids := make([]string, 0, len(d.followed))
	for id := range d.followed {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		d.readAssignment(id, false)
	}
	// Nothing acts on changes meanwhile (this is the loop's goroutine;
	// an adoption raises readUpTo itself): once, after every read.
	idx := readIndex(d.cfg.Store)
	d.mu.Lock()
	d.readUpTo = max(d.readUpTo, idx)
	d.mu.Unlock()
}

// onAssignment updates the load and tells the engine what became of a
// followed execution.
func (d *Dispatcher) onAssignment(id string) { d.readAssignment(id, true) }

// readAssignment reads the assignment of execution id and acts on it;
// with raise, it raises readUpTo past the read (a caller that reads many
// raises it once, after them).
func (d *Dispatcher) readAssignment(id string, raise bool) {
	a, err := d.cfg.Store.Assignment(id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		d.log.Error("dispatch: read assignment", "execution", id, "err", err)
		return
	}
	var at uint64
	if raise {
		at = readIndex(d.cfg.Store)
	}
	d.update(id, a, err == nil, at, true)
}

// onAssignmentState is onAssignment with the assignment as the change at
// index at left it (nil: dropped); read again when a read acted on may
// be as new (see latestAssignments).
func (d *Dispatcher) onAssignmentState(id string, a *store.Assignment, at uint64) {
	if a == nil {
		d.update(id, store.Assignment{}, false, at, false)
		return
	}
	d.update(id, *a, true, at, false)
}

// update is onAssignment's work on assignment a of execution id (found:
// there is one), read from the store (read: seen at no index past at) or
// carried by the change at index at.
func (d *Dispatcher) update(id string, a store.Assignment, found bool, at uint64, read bool) {
	d.mu.Lock()
	if read {
		d.readUpTo = max(d.readUpTo, at)
	} else if at <= d.readUpTo {
		d.mu.Unlock()
		d.onAssignment(id)
		return
	}
	f := d.followed[id]
	switch {
	case found && a.Live():
		d.load[id] = placed{node: a.NodeID, res: a.Resources}
	case !found && f != nil && f.placing != nil:
		// Placed, and being committed with its attempt: it counts.
		f.missed = true
	default:
		delete(d.load, id)
	}
	var evs []executors.Event
	if f != nil && found {
		if !f.started && a.Exit == nil && a.StartedAt.IsZero() && a.Waiting != "" && a.Waiting != f.waiting {
			f.waiting = a.Waiting
			evs = append(evs, executors.Event{ID: id, Kind: executors.EventWaiting, Reason: a.Waiting, Time: d.now()})
		}
		if !f.started && (!a.StartedAt.IsZero() || a.Exit != nil) {
			f.started = true
			evs = append(evs, executors.Event{ID: id, Kind: executors.EventStarted, Time: a.StartedAt})
		}
		if !f.done && a.Exit != nil {
			f.done = true
			evs = append(evs, exitEvent(id, a.Exit))
			delete(d.followed, id)
		}
	}
	d.mu.Unlock()
	for _, ev := range evs {
		f.report(ev)
	}
	if len(evs) > 0 || !found {
		d.poke() // capacity freed
	}
}

func exitEvent(id string, x *store.Exit) executors.Event {
	ev := executors.Event{ID: id, Kind: executors.EventExited, Time: x.Time, ExitCode: x.ExitCode, Reason: x.Reason, Outputs: x.Outputs, Logs: x.Logs}
	switch x.Outcome {
	case store.OutcomeSucceeded:
		ev.State = spec.TaskSucceeded
	case store.OutcomeCanceled:
		ev.State = spec.TaskCanceled
	default: // failed, lost
		ev.State = spec.TaskFailed
		ev.Lost = x.Outcome == store.OutcomeLost
	}
	return ev
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// alive reports whether node n holds a valid lease at now: up, and heard
// from within NodeTTL (a new leader counts from its term's start).
func (d *Dispatcher) alive(n store.Node, now time.Time) bool {
	if n.State != store.NodeUp {
		return false
	}
	d.mu.Lock()
	last := n.LastHeartbeat
	if d.termStart.After(last) {
		last = d.termStart
	}
	d.mu.Unlock()
	return now.Sub(last) <= d.cfg.NodeTTL
}

// checkLeases declares down the nodes whose heartbeat lapsed.
func (d *Dispatcher) checkLeases(ctx context.Context) {
	nodes, err := d.cfg.Store.Nodes()
	if err != nil {
		d.log.Error("dispatch: read nodes", "err", err)
		return
	}
	now := d.now()
	var cmds []store.Command
	for _, n := range nodes {
		if n.State == store.NodeUp && !d.alive(n, now) {
			cmds = append(cmds, store.MarkNodeDown{NodeID: n.ID, Epoch: n.Epoch, LastHeartbeat: n.LastHeartbeat, Time: now.UTC(),
				Reason: fmt.Sprintf("no heartbeat since %s (node TTL %s)", n.LastHeartbeat.Format(time.RFC3339Nano), d.cfg.NodeTTL)})
		}
	}
	if len(cmds) == 0 {
		return
	}
	res, err := d.cfg.Store.Apply(ctx, cmds...)
	if err != nil {
		d.log.Warn("dispatch: mark nodes down", "err", err)
		return
	}
	for i, c := range cmds {
		if !rejected(res, i) {
			d.log.Warn("dispatch: node down; its executions are lost", "node", c.(store.MarkNodeDown).NodeID)
		}
	}
}

func rejected(res store.ApplyResult, cmd int) bool {
	for _, rj := range res.Rejected {
		if rj.Cmd == cmd {
			return true
		}
	}
	return false
}

// place assigns the waiting executions to live nodes that fit them,
// least loaded first, and commits the assignments in batches.
func (d *Dispatcher) place(ctx context.Context) {
	d.mu.Lock()
	waiting := d.waiting
	d.waiting = nil
	d.mu.Unlock()
	if len(waiting) == 0 {
		return
	}
	now := d.now()
	live, err := d.liveNodes(now)
	if err != nil {
		d.log.Error("dispatch: read nodes", "err", err)
		d.requeue(waiting)
		return
	}
	d.mu.Lock()
	used := d.usage()
	d.mu.Unlock()
	var cmds []store.Command
	var starts, later []*waitingStart
	var fails []executors.Event
	var waits []string
	for _, w := range waiting {
		n, why := choose(live, used, w, d.cfg.Store.ID())
		switch {
		case n != nil:
			u := used[n.ID]
			u.add(w.s.Resources)
			used[n.ID] = u
			a, err := assignment(w, n, now)
			if err != nil {
				fails = append(fails, failed(w.s.ID, err.Error(), now))
				continue
			}
			cmds = append(cmds, store.AssignExecution{Assignment: a})
			starts = append(starts, w)
		case why != "" || now.Sub(w.since) > d.cfg.NodeTTL && !anyCandidate(live, w):
			if why == "" {
				why = fmt.Sprintf("%v: %s", ErrNoWorker, noCandidate(w))
			}
			fails = append(fails, failed(w.s.ID, why, now))
		default:
			later = append(later, w) // nodes are busy, or not registered yet
			waits = append(waits, waitReason(live, w))
		}
	}
	d.requeue(later)
	d.tellWaiting(later, waits, now)
	d.deliver(fails...)
	// The batches are proposed together: raft writes and replicates them
	// in one go rather than one round each.
	var wg sync.WaitGroup
	for i := 0; i < len(cmds); i += d.cfg.MaxBatch {
		j := min(i+d.cfg.MaxBatch, len(cmds))
		wg.Add(1)
		go func() { defer wg.Done(); d.commitAssignments(ctx, cmds[i:j], starts[i:j], now) }()
	}
	wg.Wait()
}

// liveNodes returns the nodes holding a valid lease at now.
func (d *Dispatcher) liveNodes(now time.Time) ([]store.Node, error) {
	nodes, err := d.cfg.Store.Nodes()
	if err != nil {
		return nil, err
	}
	var live []store.Node
	for _, n := range nodes {
		if d.alive(n, now) {
			live = append(live, n)
		}
	}
	return live, nil
}

// usage sums the load by node; d.mu held.
func (d *Dispatcher) usage() map[string]usage {
	used := map[string]usage{}
	for _, p := range d.load {
		u := used[p.node]
		u.add(p.res)
		used[p.node] = u
	}
	return used
}

type usage struct {
	spec.Resources
	n int
}

func (u *usage) add(r spec.Resources) {
	u.MilliCPU += r.MilliCPU
	u.MemoryBytes += r.MemoryBytes
	u.GPU += r.GPU
	u.n++
}

// choose picks the live node offering w's executor with room for it and
// the fewest live executions (then self, the leader's own node, then the
// lowest id); why says when no node could ever hold it.
func choose(live []store.Node, used map[string]usage, w *waitingStart, self string) (*store.Node, string) {
	var best *store.Node
	canEver := false
	r := w.s.Resources
	for i := range live {
		n := &live[i]
		if !candidate(n, w) {
			continue
		}
		if !fits(n.Capacity, spec.Resources{}, r) {
			continue
		}
		canEver = true
		if n.LowDisk != "" {
			continue // until its disk has room again
		}
		u := used[n.ID]
		if !fits(n.Capacity, u.Resources, r) {
			continue
		}
		if best == nil || u.n < used[best.ID].n || u.n == used[best.ID].n && better(n.ID, best.ID, self) {
			best = n
		}
	}
	if best == nil && !canEver && anyCandidate(live, w) {
		return nil, fmt.Sprintf("no live node offering %q has room for %d mCPU, %d bytes, %d GPUs", w.kind, r.MilliCPU, r.MemoryBytes, r.GPU)
	}
	return best, ""
}

// better breaks a tie between two equally loaded nodes: self first, then
// the lower id.
func better(a, b, self string) bool {
	if a == self || b == self {
		return a == self
	}
	return a < b
}

// fits reports whether r fits in capacity c with used taken; a zero
// capacity dimension is not accounted (the node's executor queues).
func fits(c, used, r spec.Resources) bool {
	return (c.MilliCPU == 0 || used.MilliCPU+r.MilliCPU <= c.MilliCPU) &&
		(c.MemoryBytes == 0 || used.MemoryBytes+r.MemoryBytes <= c.MemoryBytes) &&
		(r.GPU == 0 || used.GPU+r.GPU <= c.GPU)
}

// waitReason says why w, which no node took this round, waits.
func waitReason(live []store.Node, w *waitingStart) string {
	if !anyCandidate(live, w) {
		return "waiting for a worker: " + noCandidate(w)
	}
	r := w.s.Resources
	var low []string
	all := true
	for i := range live {
		if n := &live[i]; candidate(n, w) && fits(n.Capacity, spec.Resources{}, r) {
			if n.LowDisk == "" {
				all = false
			} else {
				low = append(low, n.ID+": "+n.LowDisk)
			}
		}
	}
	if all && len(low) > 0 {
		return fmt.Sprintf("waiting for disk space: every live worker offering %q is nearly full (%s)", w.kind, strings.Join(low, "; "))
	}
	return fmt.Sprintf("waiting for capacity: every live worker offering %q is full (this step asks %d mCPU, %d bytes, %d GPUs)", w.kind, r.MilliCPU, r.MemoryBytes, r.GPU)
}

// tellWaiting delivers to the engine why each of ws still waits, once per
// change of reason.
func (d *Dispatcher) tellWaiting(ws []*waitingStart, reasons []string, now time.Time) {
	var evs []executors.Event
	var to []func(executors.Event)
	d.mu.Lock()
	for i, w := range ws {
		f := d.followed[w.s.ID]
		if f == nil || f.started || f.waiting == reasons[i] {
			continue
		}
		f.waiting = reasons[i]
		evs = append(evs, executors.Event{ID: w.s.ID, Kind: executors.EventWaiting, Reason: reasons[i], Time: now})
		to = append(to, f.report)
	}
	d.mu.Unlock()
	for i, ev := range evs {
		to[i](ev)
	}
}

// candidate reports whether node n could run w: it offers w's executor
// and carries the labels w's node selector asks for.
func candidate(n *store.Node, w *waitingStart) bool {
	return n.Offers(w.kind) && n.Matches(w.s.NodeSelector)
}

func anyCandidate(nodes []store.Node, w *waitingStart) bool {
	return slices.ContainsFunc(nodes, func(n store.Node) bool { return candidate(&n, w) })
}

// noCandidate says why no live node can take w (without ErrNoWorker's
// words, which a failure adds).
func noCandidate(w *waitingStart) string {
	if len(w.s.NodeSelector) == 0 {
		return fmt.Sprintf("%q (no live node offers it)", w.kind)
	}
	keys := slices.Sorted(maps.Keys(w.s.NodeSelector))
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = k + "=" + w.s.NodeSelector[k]
	}
	return fmt.Sprintf("%q with labels %s (no live node offering it has them; see skiff server --node-label)", w.kind, strings.Join(pairs, ","))
}

func assignment(w *waitingStart, n *store.Node, now time.Time) (store.Assignment, error) {
	raw, err := json.Marshal(w.s)
	if err != nil {
		return store.Assignment{}, fmt.Errorf("encode the execution spec: %w", err)
	}
	return store.Assignment{ExecutionID: w.s.ID, RunID: w.s.RunID, Task: w.s.TaskIndex, Attempt: w.s.Attempt,
		NodeID: n.ID, Epoch: n.Epoch, Executor: w.kind, Resources: w.s.Resources, Spec: raw, AssignedAt: now.UTC()}, nil
}

func failed(id, reason string, now time.Time) executors.Event {
	return executors.Event{ID: id, Kind: executors.EventExited, Time: now, State: spec.TaskFailed, ExitCode: -1, Reason: reason}
}

// commitAssignments commits one batch; a refused assignment to a node
// that lost its lease meanwhile waits for another node, one refused
// because its run was cancelled ends CANCELED, any other ends FAILED.
func (d *Dispatcher) commitAssignments(ctx context.Context, cmds []store.Command, starts []*waitingStart, now time.Time) {
	res, err := d.cfg.Store.Apply(ctx, cmds...)
	if err != nil {
		d.log.Warn("dispatch: assignments not committed; trying again", "n", len(cmds), "err", err)
		d.requeue(starts)
		return
	}
	why := map[int]string{}
	for _, rj := range res.Rejected {
		why[rj.Cmd] = rj.Reason
	}
	var evs []executors.Event
	var again []*waitingStart
	var cancels []store.Command
	for i, w := range starts {
		reason, refused := why[i]
		if refused {
			if ev, end := refusedEnd(w.s.ID, reason, now); end {
				evs = append(evs, ev)
			} else {
				again = append(again, w)
			}
			continue
		}
		d.mu.Lock()
		a := cmds[i].(store.AssignExecution).Assignment
		d.load[a.ExecutionID] = placed{node: a.NodeID, res: a.Resources}
		if f := d.followed[w.s.ID]; f != nil && f.cancel {
			cancels = append(cancels, store.CancelAssignment{ExecutionID: w.s.ID, Time: now.UTC()})
		}
		d.mu.Unlock()
		d.onAssignment(w.s.ID) // it may have ended already (its node went down)
	}
	d.requeue(again)
	d.deliver(evs...)
	if len(cancels) > 0 {
		if _, err := d.cfg.Store.Apply(ctx, cancels...); err != nil {
			d.log.Warn("dispatch: cancel assignments", "err", err)
		}
	}
}

// refusedEnd says what becomes of execution id whose assignment the store
// refused for reason: placed again (end false) when its node lost its
// lease or registered again meanwhile; else it ends, CANCELED when its
// run was cancelled, FAILED otherwise, with ev.
func refusedEnd(id, reason string, now time.Time) (ev executors.Event, end bool) {
	switch {
	case strings.Contains(reason, "stale epoch") || strings.Contains(reason, "is down") || strings.Contains(reason, "not registered"):
		return executors.Event{}, false
	case strings.Contains(reason, "cancelled or final"):
		return executors.Event{ID: id, Kind: executors.EventExited, Time: now, State: spec.TaskCanceled, ExitCode: -1,
			Reason: "canceled before it started"}, true
	}
	return failed(id, "not assigned: "+reason, now), true
}

func (d *Dispatcher) requeue(ws []*waitingStart) {
	if len(ws) == 0 {
		return
	}
	d.mu.Lock()
	kept := ws[:0]
	for _, w := range ws {
		if f := d.followed[w.s.ID]; f != nil && !f.cancel {
			kept = append(kept, w)
		}
	}
	d.waiting = append(kept, d.waiting...)
	d.mu.Unlock()
}

// deliver reports final events of followed executions (once each).
func (d *Dispatcher) deliver(evs ...executors.Event) {
	for _, ev := range evs {
		d.mu.Lock()
		f := d.followed[ev.ID]
		if f != nil {
			f.done = true
			delete(d.followed, ev.ID)
		}
		d.mu.Unlock()
		if f != nil {
			f.report(ev)
		}
	}
}

// Remote is the engine's executor for one kind: its executions run on
// workers.
type Remote struct {
	d    *Dispatcher
	kind string
}

var (
	_ executors.Executor = (*Remote)(nil)
	_ executors.Adopter  = (*Remote)(nil)
)

// Name is the executor kind.
func (r *Remote) Name() string { return r.kind }

// Root is RemoteRoot(id): the worker rebases it onto its executor's root.
func (r *Remote) Root(id string) string { return RemoteRoot(id) }

// Start queues s for placement on a worker and returns at once; events
// come back as the worker reports them.
func (r *Remote) Start(_ context.Context, s *executors.Spec, report func(executors.Event)) error {
	if s == nil || s.ID == "" || report == nil {
		return fmt.Errorf("%w: an execution needs a spec with an id and a report func", executors.ErrBadSpec)
	}
	d := r.d
	d.mu.Lock()
	if _, dup := d.followed[s.ID]; dup {
		d.mu.Unlock()
		return fmt.Errorf("%w: execution %s is already running", executors.ErrBadSpec, s.ID)
	}
	d.followed[s.ID] = &followed{report: report}
	d.waiting = append(d.waiting, &waitingStart{s: s, kind: r.kind, since: d.now()})
	d.mu.Unlock()
	d.poke()
	return nil
}

// Place places specs at once, on the nodes that have room now, for the
// engine to commit with their attempts (engine.Placer): nil for a spec it
// leaves to Start, and for all while executions wait for room (they go
// first). The placements count in the load from now on.
func (r *Remote) Place(specs []*executors.Spec, report func(executors.Event)) []store.Command {
	d := r.d
	d.mu.Lock()
	queued := len(d.waiting) > 0
	d.mu.Unlock()
	if queued || report == nil {
		return nil
	}
	now := d.now()
	live, err := d.liveNodes(now)
	if err != nil || len(live) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	used := d.usage()
	out := make([]store.Command, len(specs))
	for i, s := range specs {
		if s == nil || s.ID == "" {
			continue
		}
		if _, dup := d.followed[s.ID]; dup {
			continue // Start says so
		}
		w := &waitingStart{s: s, kind: r.kind, since: now}
		n, _ := choose(live, used, w, d.cfg.Store.ID())
		if n == nil {
			continue // Start queues it, and says why it waits
		}
		a, err := assignment(w, n, now)
		if err != nil {
			continue // Start fails it
		}
		u := used[n.ID]
		u.add(s.Resources)
		used[n.ID] = u
		d.load[s.ID] = placed{node: n.ID, res: s.Resources}
		d.followed[s.ID] = &followed{report: report, placing: w}
		out[i] = store.AssignExecution{Assignment: a}
	}
	return out
}

// Placed takes the outcome of a placement Place made (engine.Placer):
// committed, the execution is followed as any assigned one; refused
// because its node lost its lease meanwhile, it waits for another; its
// run cancelled, it ends CANCELED; otherwise FAILED; never committed
// (reason ""), it is forgotten.
func (r *Remote) Placed(id string, committed bool, reason string) {
	d := r.d
	d.mu.Lock()
	f := d.followed[id]
	var w *waitingStart
	if f != nil {
		w, f.placing = f.placing, nil
	}
	if f == nil || w == nil {
		d.mu.Unlock()
		return
	}
	now := d.now()
	switch {
	case committed:
		cancel, missed := f.cancel, f.missed
		f.missed = false
		d.mu.Unlock()
		if cancel {
			if _, err := d.cfg.Store.Apply(context.Background(), store.CancelAssignment{ExecutionID: id, Time: now.UTC()}); err != nil {
				d.log.Warn("dispatch: cancel assignment", "execution", id, "err", err)
			}
		}
		if missed {
			d.onAssignment(id) // it may have ended already
		}
		// Else its change is yet to come (or came, and counted it).
		return
	case reason == "":
		delete(d.followed, id)
		delete(d.load, id)
		d.mu.Unlock()
		return
	}
	delete(d.load, id)
	d.mu.Unlock()
	if ev, end := refusedEnd(id, reason, now); end {
		d.deliver(ev)
		return
	}
	d.requeue([]*waitingStart{w})
	d.poke()
}

// Cancel stops an execution: one still waiting for a node ends at once;
// an assigned one gets a committed cancel its worker acts on.
func (r *Remote) Cancel(ctx context.Context, id string) error {
	d := r.d
	d.mu.Lock()
	for i, w := range d.waiting {
		if w.s.ID == id {
			d.waiting = append(d.waiting[:i:i], d.waiting[i+1:]...)
			d.mu.Unlock()
			d.deliver(executors.Event{ID: id, Kind: executors.EventExited, Time: d.now(), State: spec.TaskCanceled, ExitCode: -1, Reason: "canceled before it was assigned"})
			return nil
		}
	}
	if f := d.followed[id]; f != nil {
		f.cancel = true
	}
	d.mu.Unlock()
	res, err := d.cfg.Store.Apply(ctx, store.CancelAssignment{ExecutionID: id, Time: d.now().UTC()})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		d.log.Debug("dispatch: cancel", "execution", id, "reason", res.Rejected[0].Reason)
	}
	return nil
}

// Logs of remote executions are in their node's blob store.
func (r *Remote) Logs(context.Context, string, bool) (io.ReadCloser, error) {
	return nil, fmt.Errorf("%w: read them once the execution ended (its logs artifact), on the node that ran it", ErrRemoteLogs)
}

// Running lists the live executions of this kind on nodes holding a
// valid lease.
func (r *Remote) Running(context.Context) ([]string, error) {
	nodes, err := r.d.cfg.Store.Nodes()
	if err != nil {
		return nil, err
	}
	now := r.d.now()
	up := map[string]uint64{}
	for _, n := range nodes {
		if r.d.alive(n, now) {
			up[n.ID] = n.Epoch
		}
	}
	as, err := r.d.cfg.Store.Assignments("")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range as {
		if e, ok := up[a.NodeID]; ok && e == a.Epoch && a.Live() && a.Executor == r.kind {
			out = append(out, a.ExecutionID)
		}
	}
	return out, nil
}

// Adopt re-attaches to an execution a previous leader assigned: its
// events come from its assignment from now on (an ended one at once).
// Without an assignment it returns false and the engine starts a new
// attempt.
func (r *Remote) Adopt(_ context.Context, s *executors.Spec, report func(executors.Event)) (bool, error) {
	d := r.d
	d.mu.Lock()
	d.followed[s.ID] = &followed{report: report}
	d.mu.Unlock()
	if _, err := d.cfg.Store.Assignment(s.ID); err != nil {
		d.mu.Lock()
		delete(d.followed, s.ID)
		d.mu.Unlock()
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return false, err
	}
	d.onAssignment(s.ID)
	return true, nil
}
