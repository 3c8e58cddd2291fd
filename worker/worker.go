package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// Proposer commits commands through the cluster's leader (a server's
// cluster node forwards them; an agent goes through the API).
type Proposer interface {
	Apply(ctx context.Context, cmds ...store.Command) (store.ApplyResult, error)
}

// State is the node's replica of the store, which the worker reads.
type State interface {
	Node(id string) (store.Node, error)
	Assignment(execID string) (store.Assignment, error)
	AssignmentSpec(execID string) (json.RawMessage, error)
	Assignments(nodeID string) ([]store.Assignment, error)
	Subscribe(limit int) *store.Subscription
}

// WorkspaceState is the part of the node's replica that holds runs'
// pipeline files (store.PutWorkspace).
type WorkspaceState interface {
	Workspace(ns, digest string) ([]byte, error)
}

// Replicator makes blobs durable beyond this node: it returns once a
// majority of voters hold each digest and that is recorded (the
// replicated blob store, cluster.Blobs).
type Replicator interface {
	Replicate(ctx context.Context, digests []string) error
}

// ExecutionReplicator is a Replicator that is told which execution the
// blobs are of (an agent's: the server checks that the execution is its
// node's). The worker uses ReplicateExecution when its Replicator has it.
type ExecutionReplicator interface {
	ReplicateExecution(ctx context.Context, execID string, digests []string) error
}

// Config configures a Worker.
type Config struct {
	NodeID string
	// APIURL is the node's API, recorded for operators.
	APIURL    string
	Labels    map[string]string
	Capacity  spec.Resources
	GPUKinds  []string
	Executors []executors.Executor
	Proposer  Proposer
	State     State
	// Heartbeat is how often the lease is renewed (Raft.WorkerHeartbeat).
	Heartbeat time.Duration
	// Replicator, when set, gets an execution's outputs and log before
	// its exit is reported: a success is reported only once they are
	// replicated (invariant 2), and becomes a failure when they cannot be
	// within ReplicateTimeout. nil: outputs stay where the executor put
	// them (a single node, or an S3 store every node shares).
	Replicator Replicator
	// ReplicateTimeout bounds the replication of one execution's outputs.
	ReplicateTimeout time.Duration
	// WorkspaceDir is where the worker unpacks runs' pipeline files kept
	// in the store (a step whose spec has PipelineFiles), one directory
	// per namespace and bundle digest; UnpackWorkspace unpacks a bundle
	// into an empty directory (the API's checks: api.ExtractBundle), and
	// State must then also be a WorkspaceState. Unset: such steps fail,
	// saying so.
	WorkspaceDir    string
	UnpackWorkspace func(dst string, bundle []byte) error
	// DiskCheck, when set, is asked at each heartbeat whether this node's
	// disk is nearly full: a reason ("120 MiB free under /data, less than
	// 256 MiB"), or "". While it gives one the leader places no new
	// execution here (outputs written to a full disk fail the step).
	DiskCheck func() string
	Logger    *slog.Logger
	// Now is the clock (nil = time.Now).
	Now func() time.Time
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("%w: NodeID: required", ErrInvalidConfig)
	case len(c.Executors) == 0:
		return fmt.Errorf("%w: Executors: at least one", ErrInvalidConfig)
	case c.Proposer == nil:
		return fmt.Errorf("%w: Proposer: required", ErrInvalidConfig)
	case c.State == nil:
		return fmt.Errorf("%w: State: required", ErrInvalidConfig)
	case c.Heartbeat <= 0:
		return fmt.Errorf("%w: Heartbeat: must be positive", ErrInvalidConfig)
	case c.Replicator != nil && c.ReplicateTimeout <= 0:
		return fmt.Errorf("%w: ReplicateTimeout: must be positive with a Replicator", ErrInvalidConfig)
	}
	return nil
}

// RemoteRoot is the execution root the leader resolves placeholders with
// for a remote execution; the worker rebases it onto its executor's root.
func RemoteRoot(id string) string { return path.Join("/.skiff-remote", id) }

// Worker runs what the leader assigns to its node.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	execs map[string]executors.Executor

	mu      sync.Mutex
	epoch   uint64
	tried   uint64                // highest epoch proposed
	running map[string]*execution // by execution id, at the current epoch
	seen    map[string]bool       // execution ids taken at this epoch (never started twice)
	// readUpTo: no read of an assignment this worker acted on saw past
	// this index (see latestAssignments). Run's goroutine only.
	readUpTo uint64
	reports  []store.ReportExecution
	// inflight: the first inflight reports are being committed.
	inflight int
	wake     chan struct{}
	// lastLowDisk is DiskCheck's last word.
	lastLowDisk string
}

type execution struct {
	x       executors.Executor
	epoch   uint64
	waiting string // the last waiting reason reported
}

// New returns a worker; Run starts it.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Worker{cfg: cfg, log: cfg.Logger, now: cfg.Now, execs: map[string]executors.Executor{},
		running: map[string]*execution{}, seen: map[string]bool{}, wake: make(chan struct{}, 1)}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.now == nil {
		w.now = time.Now
	}
	for _, x := range cfg.Executors {
		w.execs[x.Name()] = x
	}
	return w, nil
}

// Epoch is the epoch the node is registered at (0 before).
func (w *Worker) Epoch() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.epoch
}

// Run registers the node and works until ctx ends. Executions keep
// running after it returns; the next start of the worker (a new epoch)
// kills them.
func (w *Worker) Run(ctx context.Context) error {
	sub := w.cfg.State.Subscribe(0)
	defer sub.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() { defer wg.Done(); w.sendReports(ctx) }()
	if err := w.register(ctx); err != nil {
		return err
	}
	w.rescan(ctx)
	tick := time.NewTicker(w.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			w.heartbeat(ctx)
		case <-sub.Ready():
			changes, lagged := sub.Next()
			if lagged {
				w.rescan(ctx)
				continue
			}
			w.onChanges(ctx, changes)
		}
	}
}

// onChanges acts on a batch of the feed's changes.
func (w *Worker) onChanges(ctx context.Context, changes []store.Change) {
	for _, ch := range changes {
		for _, id := range ch.Nodes {
			if id == w.cfg.NodeID {
				w.checkSelf(ctx)
			}
		}
	}
	for _, u := range latestAssignments(changes, func(id, node string) bool {
		return node != w.cfg.NodeID && !w.runs(id) // another node's, and nothing this node runs
	}) {
		if u.known {
			w.onAssignmentState(ctx, u.id, u.a, u.at)
		} else {
			w.onAssignment(ctx, u.id)
		}
	}
}

// register kills what this node may still run from an earlier epoch,
// then registers it at a new epoch, retrying until ctx ends.
func (w *Worker) register(ctx context.Context) error {
	w.killAll(ctx)
	backoff := 50 * time.Millisecond
	for {
		epoch := uint64(1)
		if n, err := w.cfg.State.Node(w.cfg.NodeID); err == nil {
			epoch = n.Epoch + 1
		}
		w.mu.Lock()
		epoch = max(epoch, w.tried+1)
		w.tried = epoch
		w.mu.Unlock()
		node := store.Node{ID: w.cfg.NodeID, Capacity: w.cfg.Capacity, GPUKinds: w.cfg.GPUKinds, Labels: w.cfg.Labels, APIURL: w.cfg.APIURL,
			LowDisk: w.lowDisk()}
		for name := range w.execs {
			node.Executors = append(node.Executors, name)
		}
		slices.Sort(node.Executors)
		res, err := w.cfg.Proposer.Apply(ctx, store.RegisterNode{Node: node, Epoch: epoch, Time: w.now().UTC()})
		if err == nil && len(res.Rejected) == 0 {
			w.mu.Lock()
			w.epoch = epoch
			clear(w.seen)
			w.mu.Unlock()
			w.log.Info("worker: registered", "node", w.cfg.NodeID, "epoch", epoch, "executors", node.Executors)
			return nil
		}
		if err == nil {
			err = errors.New(res.Rejected[0].Reason)
		}
		w.log.Debug("worker: register", "node", w.cfg.NodeID, "epoch", epoch, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, w.cfg.Heartbeat)
	}
}

// killAll stops every execution the node's executors run or may have left
// from an earlier epoch: what it ran before is no longer its to run.
func (w *Worker) killAll(ctx context.Context) {
	w.mu.Lock()
	ids := make(map[string]executors.Executor, len(w.running))
	for id, e := range w.running {
		ids[id] = e.x
	}
	clear(w.running)
	w.mu.Unlock()
	if as, err := w.cfg.State.Assignments(w.cfg.NodeID); err == nil {
		for _, a := range as {
			if x, ok := w.execs[a.Executor]; ok {
				ids[a.ExecutionID] = x
			}
		}
	}
	for _, x := range w.execs {
		if live, err := x.Running(ctx); err == nil {
			for _, id := range live {
				ids[id] = x
			}
		}
	}
	for id, x := range ids {
		w.kill(ctx, x, id)
	}
}

// leftoverKiller is implemented by executors that can stop what an
// earlier process left running.
type leftoverKiller interface{ KillLeftover(id string) error }

func (w *Worker) kill(ctx context.Context, x executors.Executor, id string) {
	if err := x.Cancel(ctx, id); err != nil {
		w.log.Warn("worker: stop execution", "execution", id, "err", err)
	}
	if k, ok := x.(leftoverKiller); ok {
		_ = k.KillLeftover(id)
	}
}

// lowDisk is DiskCheck's word, bounded, logged when it changes.
func (w *Worker) lowDisk() string {
	if w.cfg.DiskCheck == nil {
		return ""
	}
	why := truncate(w.cfg.DiskCheck(), store.MaxLowDiskReason)
	w.mu.Lock()
	changed := why != w.lastLowDisk
	w.lastLowDisk = why
	w.mu.Unlock()
	switch {
	case changed && why != "":
		w.log.Warn("worker: disk nearly full; the leader places nothing new here until it is freed", "node", w.cfg.NodeID, "reason", why)
	case changed:
		w.log.Info("worker: disk space back; taking new work", "node", w.cfg.NodeID)
	}
	return why
}

// heartbeat renews the lease; a refused one means the cluster ended it.
func (w *Worker) heartbeat(ctx context.Context) {
	epoch := w.Epoch()
	res, err := w.cfg.Proposer.Apply(ctx, store.Heartbeat{NodeID: w.cfg.NodeID, Epoch: epoch, Time: w.now().UTC(), LowDisk: w.lowDisk()})
	switch {
	case err != nil:
		w.log.Debug("worker: heartbeat not committed", "node", w.cfg.NodeID, "err", err)
	case len(res.Rejected) > 0:
		w.log.Warn("worker: lease lost; stopping what this node ran and registering again", "node", w.cfg.NodeID, "reason", res.Rejected[0].Reason)
		w.reregister(ctx)
	}
}

func (w *Worker) reregister(ctx context.Context) {
	if err := w.register(ctx); err == nil && ctx.Err() == nil {
		w.rescan(ctx)
	}
}

// checkSelf registers again when the cluster declared this node down at
// its epoch, or another registration of its id took a newer epoch.
func (w *Worker) checkSelf(ctx context.Context) {
	n, err := w.cfg.State.Node(w.cfg.NodeID)
	if err != nil {
		return
	}
	epoch := w.Epoch()
	if (n.Epoch == epoch && n.State != store.NodeUp) || n.Epoch > epoch {
		w.log.Warn("worker: node declared down or superseded; stopping what it ran and registering again",
			"node", w.cfg.NodeID, "epoch", epoch, "stored_epoch", n.Epoch, "reason", n.DownReason)
		w.reregister(ctx)
	}
}

// rescan looks at every assignment of the node again.
func (w *Worker) rescan(ctx context.Context) {
	w.checkSelf(ctx)
	as, err := w.cfg.State.Assignments(w.cfg.NodeID)
	if err != nil {
		w.log.Error("worker: read assignments", "err", err)
		return
	}
	live := map[string]bool{}
	for _, a := range as {
		live[a.ExecutionID] = true
		w.readAndAct(ctx, a.ExecutionID)
	}
	w.mu.Lock()
	var gone []string
	for id := range w.running {
		if !live[id] {
			gone = append(gone, id)
		}
	}
	w.mu.Unlock()
	for _, id := range gone {
		w.readAndAct(ctx, id)
	}
	// What was not listed is not this node's to run, up to this index.
	w.readUpTo = max(w.readUpTo, readIndex(w.cfg.State))
}

// onAssignment acts on the stored state of one assignment: start what is
// newly assigned to this node at its epoch, stop what it no longer holds
// or was asked to cancel.
// runs reports whether this node runs execution id.
func (w *Worker) runs(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.running[id]
	return ok
}

// onAssignment acts on the stored assignment of execution id.
func (w *Worker) onAssignment(ctx context.Context, id string) {
	w.readAndAct(ctx, id)
	w.readUpTo = max(w.readUpTo, readIndex(w.cfg.State))
}

// readAndAct is onAssignment without raising readUpTo (a caller that
// reads many raises it once, after them).
func (w *Worker) readAndAct(ctx context.Context, id string) {
	a, err := w.cfg.State.Assignment(id)
	w.act(ctx, id, a, err)
}

// onAssignmentState acts on the assignment of execution id as the change
// at index at left it (nil: dropped); read again when a read acted on
// may be as new (see latestAssignments).
func (w *Worker) onAssignmentState(ctx context.Context, id string, a *store.Assignment, at uint64) {
	if at <= w.readUpTo {
		w.onAssignment(ctx, id)
		return
	}
	if a == nil {
		w.act(ctx, id, store.Assignment{}, store.ErrNotFound)
		return
	}
	w.act(ctx, id, *a, nil)
}

// act starts, cancels or kills execution id by its assignment a (err:
// why it could not be had; store.ErrNotFound: there is none).
func (w *Worker) act(ctx context.Context, id string, a store.Assignment, err error) {
	w.mu.Lock()
	cur, runs := w.running[id]
	epoch := w.epoch
	if errors.Is(err, store.ErrNotFound) {
		delete(w.seen, id) // the attempt ended
	}
	w.mu.Unlock()
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && (a.NodeID != w.cfg.NodeID || a.Epoch != epoch || !a.Live()):
		if runs {
			w.forget(id)
			w.kill(ctx, cur.x, id) // not (or no longer) ours to run
		}
		return
	case err != nil:
		w.log.Error("worker: read assignment", "execution", id, "err", err)
		return
	case a.CancelRequested:
		if runs {
			if err := cur.x.Cancel(ctx, id); err != nil {
				w.log.Warn("worker: cancel execution", "execution", id, "err", err)
			}
			return
		}
		if w.take(id) {
			w.queueReport(store.ReportExecution{ExecutionID: id, NodeID: w.cfg.NodeID, Epoch: epoch, Time: w.now().UTC(),
				Exit: &store.Exit{Outcome: store.OutcomeCanceled, ExitCode: -1, Reason: "canceled before it started", Time: w.now().UTC()}})
		}
		return
	case !a.StartedAt.IsZero() && !runs:
		return // started by this epoch and over, or reported already
	}
	if !w.take(id) {
		return
	}
	w.start(ctx, a, epoch)
}

// take marks id as taken at this epoch; false if it was already.
func (w *Worker) take(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[id] {
		return false
	}
	w.seen[id] = true
	return true
}

func (w *Worker) forget(id string) {
	w.mu.Lock()
	delete(w.running, id)
	w.mu.Unlock()
}

// start runs an assignment with the local executor it names.
func (w *Worker) start(ctx context.Context, a store.Assignment, epoch uint64) {
	fail := func(reason string) {
		if ctx.Err() != nil {
			// The worker is stopping: that is no failure of the step's.
			// Its assignment ends lost once the node's lease lapses (or
			// at the node's next epoch), and runs again per its policy.
			w.log.Debug("worker: not started: stopping", "execution", a.ExecutionID, "reason", reason)
			return
		}
		w.queueReport(store.ReportExecution{ExecutionID: a.ExecutionID, NodeID: w.cfg.NodeID, Epoch: epoch, Time: w.now().UTC(),
			Exit: &store.Exit{Outcome: store.OutcomeFailed, ExitCode: -1, Reason: reason, Time: w.now().UTC()}})
	}
	x, ok := w.execs[a.Executor]
	if !ok {
		fail(fmt.Sprintf("node %s has no executor %q", w.cfg.NodeID, a.Executor))
		return
	}
	raw := a.Spec // set when the assignment comes from the change that made it
	if len(raw) == 0 {
		var err error
		if raw, err = w.cfg.State.AssignmentSpec(a.ExecutionID); err != nil {
			fail(fmt.Sprintf("read the execution spec: %v", err))
			return
		}
	}
	var s executors.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		fail(fmt.Sprintf("decode the execution spec: %v", err))
		return
	}
	if s.ID != a.ExecutionID {
		fail(fmt.Sprintf("the spec is for execution %q, not %q", s.ID, a.ExecutionID))
		return
	}
	rebase(&s, RemoteRoot(s.ID), x.Root(s.ID))
	if s.PipelineFiles != "" {
		dir, err := w.workspace(s.PipelineFiles)
		if err != nil {
			fail(fmt.Sprintf("pipeline files: %v", err))
			return
		}
		rebase(&s, s.PipelineFiles, dir)
		s.PipelineFiles = ""
	}
	w.mu.Lock()
	w.running[a.ExecutionID] = &execution{x: x, epoch: epoch}
	w.mu.Unlock()
	report := func(ev executors.Event) {
		r := store.ReportExecution{ExecutionID: ev.ID, NodeID: w.cfg.NodeID, Epoch: epoch, Time: ev.Time.UTC()}
		switch ev.Kind {
		case executors.EventWaiting:
			if ev.Reason == "" || !w.newWait(ev.ID, ev.Reason) {
				return
			}
			r.Waiting = truncate(ev.Reason, store.MaxWaitingReason)
		case executors.EventStarted:
			r.Started = true
		case executors.EventExited:
			r.Exit = exitOf(ev)
			w.mu.Lock()
			if e := w.running[ev.ID]; e != nil && e.epoch == epoch {
				delete(w.running, ev.ID)
			}
			w.mu.Unlock()
			if w.cfg.Replicator != nil {
				go w.replicateThenReport(ctx, r)
				return
			}
		default:
			return
		}
		w.queueReport(r)
	}
	if err := x.Start(ctx, &s, report); err != nil {
		w.forget(a.ExecutionID)
		fail(err.Error())
	}
}

// failedReplicateTimeout bounds the copying of the log of an execution
// that did not succeed (its report waits for it).
const failedReplicateTimeout = 30 * time.Second

// replicateThenReport replicates the blobs of exit report r, then queues
// it. A success whose outputs could not be replicated is reported failed:
// it must not be SUCCEEDED with its outputs on one node only.
func (w *Worker) replicateThenReport(ctx context.Context, r store.ReportExecution) {
	digests := exitDigests(r.Exit)
	if len(digests) > 0 {
		limit := w.cfg.ReplicateTimeout
		if r.Exit.Outcome != store.OutcomeSucceeded {
			// Only a success waits for its blobs; a failure's log is
			// copied if it can be soon.
			limit = min(limit, failedReplicateTimeout)
		}
		rctx, cancel := context.WithTimeout(ctx, limit)
		var err error
		if er, ok := w.cfg.Replicator.(ExecutionReplicator); ok {
			err = er.ReplicateExecution(rctx, r.ExecutionID, digests)
		} else {
			err = w.cfg.Replicator.Replicate(rctx, digests)
		}
		cancel()
		if err != nil && ctx.Err() != nil {
			return // the worker stops; its next epoch ends the execution lost
		}
		if err != nil {
			w.log.Warn("worker: outputs not replicated", "execution", r.ExecutionID, "err", err)
			if r.Exit.Outcome == store.OutcomeSucceeded {
				x := *r.Exit
				x.Outcome, x.Reason = store.OutcomeFailed, fmt.Sprintf("outputs not replicated to a majority of nodes: %v", err)
				if x.ExitCode == 0 {
					x.ExitCode = -1
				}
				r.Exit = &x
			}
		}
	}
	w.queueReport(r)
}

// exitDigests lists the blobs an exit refers to: its output artifacts and
// its log.
func exitDigests(x *store.Exit) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(x.Outputs)) {
		v := x.Outputs[name]
		if v.Artifact != nil {
			out = append(out, v.Artifact.Digest)
		}
		for _, a := range v.Artifacts {
			out = append(out, a.Digest)
		}
	}
	if x.Logs != nil {
		out = append(out, x.Logs.Digest)
	}
	return out
}

// newWait records reason as execution id's latest waiting reason; false
// if it was already.
func (w *Worker) newWait(id, reason string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.running[id]
	if e == nil || e.waiting == reason {
		return false
	}
	e.waiting = reason
	return true
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func exitOf(ev executors.Event) *store.Exit {
	out := store.OutcomeFailed
	switch ev.State {
	case spec.TaskSucceeded:
		out = store.OutcomeSucceeded
	case spec.TaskCanceled:
		out = store.OutcomeCanceled
	}
	return &store.Exit{Outcome: out, ExitCode: ev.ExitCode, Reason: ev.Reason, Outputs: ev.Outputs, Logs: ev.Logs, Time: ev.Time.UTC()}
}

// workspace returns this node's directory of the pipeline files under
// root (store.WorkspaceRoot), unpacking them from the store the first
// time: into a staging directory, renamed into place once complete, so
// a crash leaves no half-unpacked workspace that later steps would use.
func (w *Worker) workspace(root string) (string, error) {
	ns, digest, ok := store.ParseWorkspaceRoot(root)
	if !ok {
		return "", fmt.Errorf("%q is not a workspace", root)
	}
	st, ok := w.cfg.State.(WorkspaceState)
	if w.cfg.WorkspaceDir == "" || w.cfg.UnpackWorkspace == nil || !ok {
		return "", fmt.Errorf("worker %s keeps no workspaces: it cannot run steps that read {{pipeline.dir}} files sent with the run", w.cfg.NodeID)
	}
	nsDir := filepath.Join(w.cfg.WorkspaceDir, ns)
	final := filepath.Join(nsDir, digest)
	if fi, err := os.Stat(final); err == nil && fi.IsDir() {
		return final, nil
	}
	data, err := st.Workspace(ns, digest)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(nsDir, 0o700); err != nil {
		return "", err
	}
	stage, err := os.MkdirTemp(nsDir, ".unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(stage) // a no-op once renamed
	if err := w.cfg.UnpackWorkspace(stage, data); err != nil {
		return "", fmt.Errorf("unpack %s/%s: %w", ns, digest, err)
	}
	if err := os.Rename(stage, final); err != nil {
		if fi, serr := os.Stat(final); serr == nil && fi.IsDir() {
			return final, nil // unpacked meanwhile for another step
		}
		return "", err
	}
	return final, nil
}

// rebase moves a spec resolved under root from onto root to.
func rebase(s *executors.Spec, from, to string) {
	if from == to {
		return
	}
	re := func(v string) string { return strings.ReplaceAll(v, from, to) }
	for i := range s.Command {
		s.Command[i] = re(s.Command[i])
	}
	for i := range s.Args {
		s.Args[i] = re(s.Args[i])
	}
	for i := range s.Env {
		s.Env[i].Value = re(s.Env[i].Value)
	}
	s.WorkingDir = re(s.WorkingDir)
	for i := range s.Outputs {
		s.Outputs[i].StepRoot = re(s.Outputs[i].StepRoot)
	}
}

func (w *Worker) queueReport(r store.ReportExecution) {
	w.mu.Lock()
	if !merged(w.reports[w.inflight:], r) {
		w.reports = append(w.reports, r)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// merged folds exit report r into a queued, unsent start report of the
// same execution (a short step's start and exit then cost the FSM one
// command, not two); false if there is none.
func merged(queued []store.ReportExecution, r store.ReportExecution) bool {
	if r.Exit == nil {
		return false
	}
	for i := len(queued) - 1; i >= 0; i-- {
		q := &queued[i]
		if q.ExecutionID != r.ExecutionID {
			continue
		}
		if q.Exit != nil || q.Epoch != r.Epoch {
			return false
		}
		q.Exit = r.Exit // q.Time stays the start's time; the exit has its own
		return true
	}
	return false
}

// reportLinger is how long a batch of start reports waits for more (their
// exits, mostly) before it is committed.
const reportLinger = 3 * time.Millisecond

func onlyStarts(rs []store.ReportExecution) bool {
	for _, r := range rs {
		if r.Exit != nil {
			return false
		}
	}
	return true
}

// maxReportBackoff caps the pause between tries of a report that did not
// commit: while leadership moves (most failures) a new leader is there
// within a second, and reports are what its engine waits for.
const maxReportBackoff = 100 * time.Millisecond

// maxReports bounds the reports committed in one entry.
const maxReports = 512

// sendReports commits queued reports in batches, in order, retrying
// through leader changes; the FSM's rejections (fenced reports) are final.
func (w *Worker) sendReports(ctx context.Context) {
	backoff := 20 * time.Millisecond
	lingered := false
	for {
		w.mu.Lock()
		n := min(len(w.reports), maxReports)
		batch := append([]store.ReportExecution(nil), w.reports[:n]...)
		w.inflight = n // not merged into while they are being sent
		w.mu.Unlock()
		if n == 0 {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
				continue
			}
		}
		if !lingered && onlyStarts(batch) {
			// A start alone waits a moment for its exit: a short step
			// then costs one command, not two.
			lingered = true
			w.mu.Lock()
			w.inflight = 0
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			case <-time.After(reportLinger):
			}
			continue
		}
		lingered = false
		cmds := make([]store.Command, n)
		for i := range batch {
			cmds[i] = batch[i]
		}
		res, err := w.cfg.Proposer.Apply(ctx, cmds...)
		if err != nil {
			w.log.Debug("worker: reports not committed; retrying", "n", n, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxReportBackoff)
			continue
		}
		backoff = 20 * time.Millisecond
		for _, rj := range res.Rejected {
			w.log.Info("worker: report refused", "reason", rj.Reason)
		}
		w.mu.Lock()
		w.reports = w.reports[n:]
		w.inflight = 0
		w.mu.Unlock()
	}
}
