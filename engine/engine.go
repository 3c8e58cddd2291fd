package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// Config configures an Engine.
type Config struct {
	Store     Store // *store.Store, or a wrapper of one
	Executors []executors.Executor
	// DefaultExecutor runs tasks whose plan names none; "" = the first of
	// Executors.
	DefaultExecutor string
	Logger          *slog.Logger
	Registerer      prometheus.Registerer // nil = no metrics
	Clock           Clock                 // nil = the system clock
	// MaxBatch caps the task transitions proposed in one store entry.
	MaxBatch int
	// FeedLimit bounds the store changes queued for the loop before it is
	// told it fell behind and rescans the store (0 = store.DefaultFeedLimit).
	FeedLimit int
	// OnUpdate, when set, is called from the loop after each commit with
	// the changes it made durable (never one the store rejected). It must
	// return quickly.
	OnUpdate func([]Update)

	// Deadlines of the executor calls the engine makes off its loop. A
	// call still running at its deadline is abandoned and its task told
	// why (a start or a stop fails it, a resumed execution that could not
	// be adopted gets a new attempt). 0 = the default.
	//
	// StartTimeout bounds Executor.Start (and creating the run's
	// workspace); StopTimeout bounds Executor.Cancel; AdoptTimeout bounds
	// Adopter.Adopt and CleanupTimeout the killing of an execution's
	// leftovers, both when a run is resumed.
	StartTimeout   time.Duration
	StopTimeout    time.Duration
	AdoptTimeout   time.Duration
	CleanupTimeout time.Duration
}

// Defaults of Config.
const (
	DefaultMaxBatch    = 8192
	DefaultCallTimeout = time.Minute // each of the executor call deadlines
)

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig(st Store, execs ...executors.Executor) Config {
	return Config{Store: st, Executors: execs, MaxBatch: DefaultMaxBatch,
		StartTimeout: DefaultCallTimeout, StopTimeout: DefaultCallTimeout,
		AdoptTimeout: DefaultCallTimeout, CleanupTimeout: DefaultCallTimeout}
}

// withDefaults fills c's zero knobs with their defaults.
func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.Clock == nil {
		c.Clock = realClock{}
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	for _, d := range []*time.Duration{&c.StartTimeout, &c.StopTimeout, &c.AdoptTimeout, &c.CleanupTimeout} {
		if *d == 0 {
			*d = DefaultCallTimeout
		}
	}
	return c
}

// Validate reports the first problem with c.
func (c Config) Validate() error {
	if c.Store == nil {
		return errors.New("engine: Config.Store is required")
	}
	if len(c.Executors) == 0 {
		return errors.New("engine: Config.Executors needs at least one executor")
	}
	seen := map[string]bool{}
	for _, x := range c.Executors {
		if seen[x.Name()] {
			return fmt.Errorf("engine: two executors named %q", x.Name())
		}
		seen[x.Name()] = true
	}
	if c.DefaultExecutor != "" && !seen[c.DefaultExecutor] {
		return fmt.Errorf("engine: default executor %q: %w", c.DefaultExecutor, ErrUnknownExecutor)
	}
	if c.MaxBatch < 0 {
		return errors.New("engine: Config.MaxBatch must not be negative")
	}
	if c.FeedLimit < 0 {
		return errors.New("engine: Config.FeedLimit must not be negative")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"StartTimeout", c.StartTimeout}, {"StopTimeout", c.StopTimeout}, {"AdoptTimeout", c.AdoptTimeout}, {"CleanupTimeout", c.CleanupTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("engine: Config.%s must not be negative (0 = the default, %s)", d.name, DefaultCallTimeout)
		}
	}
	return nil
}

// Update is one durable change, reported to Config.OnUpdate.
type Update struct {
	RunID string
	// Task is the task's index, or -1 for a change of the run's state.
	Task      int
	Name      string // task name, or the pipeline name for run updates
	TaskState spec.TaskState
	RunState  spec.RunState
	Attempt   int
	Reason    string
	Time      time.Time
	// Cached is set when a task SUCCEEDED from the cache, without running.
	Cached bool
}

// checkExecutors checks that every command step of p (and of its groups'
// bodies) names a known executor.
func (e *Engine) checkExecutors(root, p *spec.Plan, path, def string) error {
	for i := range p.Tasks {
		t := &p.Tasks[i]
		tp := fmt.Sprintf("%stasks[%d]", path, i)
		if t.IsGroup() {
			if err := e.checkExecutors(root, t.Body, tp+".", def); err != nil {
				return err
			}
			continue
		}
		name := root.ExecutorName(t, def)
		if _, ok := e.execs[name]; !ok {
			return fmt.Errorf("%s.executor: %q: %w (have %s)", tp, name, ErrUnknownExecutor, e.executorNames())
		}
	}
	return nil
}

// Engine runs pipelines. Create it with New, start its loop with Run.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	clock   Clock
	now     func() time.Time
	execs   map[string]executors.Executor
	defExec string
	m       *metrics

	// sub is the store's feed of applied changes (feed.go), taken in New
	// so that nothing committed after New is missed; Run closes it.
	sub *store.Subscription

	mu      sync.Mutex
	inbox   []any
	plans   map[string]*spec.Plan // submitted, not yet activated (feed.go)
	waiters map[string][]chan struct{}
	wake    chan struct{}
	stopped chan struct{}
	err     error

	// Off-loop executor calls: one ordered queue per executor for starts
	// and stops; calls counts the recoveries under way.
	queues map[string]*callQueue
	calls  sync.WaitGroup
	// callCtx is the context of those calls: cancelled when the loop
	// ends, so that stopping never waits for a hung executor.
	callCtx    context.Context
	callCancel context.CancelFunc

	// Owned by the loop goroutine.
	active    map[string]*activeRun
	inflight  map[string]*execRef
	flights   map[string]*flight // by cache key
	refreshes map[string]int     // refreshes in a row per run, for backing off
}

// New returns an engine; call Run to start its loop.
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:      cfg,
		log:      cfg.Logger,
		clock:    cfg.Clock,
		now:      cfg.Clock.Now,
		execs:    map[string]executors.Executor{},
		defExec:  cfg.DefaultExecutor,
		waiters:  map[string][]chan struct{}{},
		plans:    map[string]*spec.Plan{},
		wake:     make(chan struct{}, 1),
		stopped:  make(chan struct{}),
		active:   map[string]*activeRun{},
		inflight: map[string]*execRef{},
		flights:  map[string]*flight{},
		queues:   map[string]*callQueue{},

		refreshes: map[string]int{},
	}
	e.callCtx, e.callCancel = context.WithCancel(context.Background())
	for _, x := range cfg.Executors {
		e.execs[x.Name()] = x
		e.queues[x.Name()] = newCallQueue()
	}
	if e.defExec == "" {
		e.defExec = cfg.Executors[0].Name()
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e.m = m
	e.sub = cfg.Store.Subscribe(cfg.FeedLimit)
	return e, nil
}

// SubmitOptions are the optional parts of a submission.
type SubmitOptions struct {
	// RequestID makes the submission idempotent: a second submission with
	// the same id returns the first run's id.
	RequestID string
	// Name is the run's display name; "" = the pipeline's name.
	Name string
	// PipelineDir is the directory of the pipeline file on the submitting
	// machine ({{pipeline.dir}}).
	PipelineDir string
	// Executor overrides the engine's default executor for this run.
	Executor string
	// NoCache turns caching off for every task of the run: none reads the
	// cache (successful results are still recorded for later runs).
	NoCache bool
}

// Submit validates params against plan, stores a new run and hands it to
// the loop. It returns once the run is durable. plan must be finalized.
func (e *Engine) Submit(ctx context.Context, plan *spec.Plan, params map[string]json.RawMessage, opts SubmitOptions) (string, error) {
	if err := plan.CheckParams(params); err != nil {
		return "", err
	}
	if opts.Executor != "" {
		if _, ok := e.execs[opts.Executor]; !ok {
			return "", fmt.Errorf("executor %q: %w (have %s)", opts.Executor, ErrUnknownExecutor, e.executorNames())
		}
	}
	def := opts.Executor
	if def == "" {
		def = e.defExec
	}
	if err := e.checkExecutors(plan, plan, "", def); err != nil {
		return "", err
	}
	if opts.RequestID != "" {
		if r, err := e.cfg.Store.RunByRequestID(opts.RequestID); err == nil {
			return r.ID, nil
		}
	}
	planJSON, err := json.Marshal(plan)
	if err != nil {
		return "", fmt.Errorf("encode plan: %w", err)
	}
	name := opts.Name
	if name == "" {
		name = plan.Name
	}
	names := make([]string, len(plan.Tasks))
	for i := range plan.Tasks {
		names[i] = plan.Tasks[i].Name
	}
	run := store.Run{
		ID:              newRunID(),
		RequestID:       opts.RequestID,
		PipelineName:    plan.Name,
		Name:            name,
		Plan:            planJSON,
		Params:          params,
		DefaultExecutor: def,
		PipelineDir:     opts.PipelineDir,
		NoCache:         opts.NoCache,
		State:           spec.RunPending,
		CreatedAt:       e.now().UTC(),
		TaskCount:       len(plan.Tasks),
	}
	// The loop learns of the run from the feed; it takes the plan as given
	// instead of decoding the stored copy again (the same plan: Finalize
	// made it immutable).
	e.mu.Lock()
	e.plans[run.ID] = plan
	e.mu.Unlock()
	res, err := e.cfg.Store.Apply(ctx, store.CreateRun{Run: run, TaskNames: names})
	if err != nil || len(res.Rejected) > 0 {
		e.takePlan(run.ID)
	}
	if err != nil {
		return "", fmt.Errorf("store run: %w", err)
	}
	if len(res.Rejected) > 0 {
		if opts.RequestID != "" {
			if r, err := e.cfg.Store.RunByRequestID(opts.RequestID); err == nil {
				return r.ID, nil
			}
		}
		return "", fmt.Errorf("store run: %s", res.Rejected[0].Reason)
	}
	return run.ID, nil
}

// Resume hands unfinished runs to the loop: those named, or every
// unfinished run when none is named. It returns the ids resumed.
func (e *Engine) Resume(ctx context.Context, ids ...string) ([]string, error) {
	var out []string
	if len(ids) == 0 {
		runs, err := e.cfg.Store.UnfinishedRuns()
		if err != nil {
			return nil, err
		}
		for _, r := range runs {
			out = append(out, r.ID)
		}
		sort.Strings(out)
	} else {
		for _, id := range ids {
			r, err := e.cfg.Store.FindRun(id)
			if err != nil {
				return nil, fmt.Errorf("run %q: %w", id, err)
			}
			if r.State.Final() {
				return nil, fmt.Errorf("run %s is %s: %w", r.ID, r.State, ErrRunFinished)
			}
			out = append(out, r.ID)
		}
	}
	for _, id := range out {
		e.post(activate{runID: id})
	}
	e.deleteOrphans()
	return out, nil
}

// Cancel requests the cancellation of a run: running executions are
// stopped, nothing new starts, and the run ends CANCELED. The request is
// committed here; the loop acts on it when the feed brings it.
func (e *Engine) Cancel(ctx context.Context, runID string) error {
	r, err := e.cfg.Store.GetRun(runID)
	if err != nil {
		return err
	}
	if r.State.Final() {
		return fmt.Errorf("run %s is %s: %w", runID, r.State, ErrRunFinished)
	}
	res, err := e.cfg.Store.Apply(ctx, store.RequestCancel{RunID: runID, Time: e.now().UTC()})
	if err != nil {
		return err
	}
	if len(res.Rejected) > 0 {
		return fmt.Errorf("cancel run %s: %s", runID, res.Rejected[0].Reason)
	}
	return nil
}

// Wait blocks until the run is final, ctx ends or the engine stops, and
// returns the run as stored. It leaves nothing behind when it returns.
func (e *Engine) Wait(ctx context.Context, runID string) (store.Run, error) {
	// Registered before the run is read, so that an end committed in
	// between is not missed.
	ch := make(chan struct{})
	e.mu.Lock()
	e.waiters[runID] = append(e.waiters[runID], ch)
	e.mu.Unlock()
	defer e.dropWaiter(runID, ch)
	r, err := e.cfg.Store.GetRun(runID)
	if err != nil || r.State.Final() {
		return r, err
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return r, ctx.Err()
	case <-e.stopped:
		return r, e.stopErr()
	}
	return e.cfg.Store.GetRun(runID)
}

// dropWaiter forgets ch, a waiter of runID (when notifyFinal has not
// already).
func (e *Engine) dropWaiter(runID string, ch chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	chs := e.waiters[runID]
	for i, c := range chs {
		if c == ch {
			chs = append(chs[:i:i], chs[i+1:]...)
			break
		}
	}
	if len(chs) == 0 {
		delete(e.waiters, runID)
	} else {
		e.waiters[runID] = chs
	}
}

// Executor returns the executor named name, if the engine has it.
func (e *Engine) Executor(name string) (executors.Executor, bool) {
	x, ok := e.execs[name]
	return x, ok
}

func (e *Engine) executorNames() string {
	names := make([]string, 0, len(e.execs))
	for n := range e.execs {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

func (e *Engine) stopErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return e.err
	}
	return ErrStopped
}

// post hands a message to the loop; it never blocks.
func (e *Engine) post(m any) {
	e.mu.Lock()
	e.inbox = append(e.inbox, m)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// report takes an executor's event. A Started event changes nothing the
// loop keeps (the store learns of starts from the workers, in a
// cluster): it is counted here, not queued, which halves the queue a
// wide fan-out of instant steps builds while the loop is busy.
func (e *Engine) report(ev executors.Event) {
	switch {
	case ev.Kind == executors.EventStarted:
		e.m.started.Inc()
		return
	case ev.Kind == executors.EventExited && ev.Reason == "" && ev.Outputs == nil && ev.Logs == nil && !ev.Lost &&
		ev.ExitCode >= math.MinInt32 && ev.ExitCode <= math.MaxInt32:
		// The common end, queued in a third of an Event's bytes: a wide
		// fan-out of instant steps queues one per task while the loop
		// commits.
		e.post(bareExit{id: ev.ID, state: ev.State, code: int32(ev.ExitCode)})
		return
	}
	e.post(ev)
}

// bareExit is an Exited event without a reason, outputs or logs, as the
// loop's inbox holds it; its time is not kept (the loop stamps the
// transition with its own clock).
type bareExit struct {
	id    string
	state spec.TaskState
	code  int32
}

func (x bareExit) event() executors.Event {
	return executors.Event{ID: x.id, Kind: executors.EventExited, State: x.state, ExitCode: int(x.code)}
}

func (e *Engine) notifyFinal(runID string) {
	e.mu.Lock()
	chs := e.waiters[runID]
	delete(e.waiters, runID)
	e.mu.Unlock()
	for _, ch := range chs {
		close(ch)
	}
}

// newRunID returns a random UUID (version 4), as KFP run ids are.
func newRunID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
