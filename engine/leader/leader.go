// Package leader runs a node's engine while, and only while, that node is
// the raft leader. It is the one place that says what a term is: on
// gaining leadership a fresh engine is built, the dispatcher starts
// placing executions on the workers, the store applies every committed
// entry (a barrier), and every unfinished run is resumed; on losing it,
// that engine stops (executions keep running on their workers and the
// next leader adopts them). A server and `skiff bench --cluster` both use
// it, so the bench measures the server's own failover path.
package leader

import (
	"context"
	"encoding/json"
	"errors"
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

// ErrInvalidConfig marks a Config that cannot run.
var ErrInvalidConfig = errors.New("leader: invalid config")

// Config configures a Leader.
type Config struct {
	// Engine is each term's engine configuration (its Store is Store).
	// Its Registerer, if any, is wrapped per term so that each term's
	// engine registers its metrics afresh.
	Engine engine.Config
	Store  *store.Store
	// Dispatch places the engine's executions on the workers (Engine's
	// executors are then the dispatcher's); nil = the engine runs them in
	// this process.
	Dispatch *worker.Dispatcher
	// Local are this process's own executors, which Executor answers with
	// (logs of what runs here).
	Local  []executors.Executor
	Logger *slog.Logger
	// BarrierTimeout bounds one try of the new leader's catch-up barrier
	// (0 = 10s); the barrier is tried again while the node still leads.
	BarrierTimeout time.Duration
	// GiveUpAfter: a leader whose engine has not started after this long
	// hands leadership to another voter (0 = 1 minute), so that no node
	// leads without scheduling.
	GiveUpAfter time.Duration
	// EngineWait bounds how long a request waits for the engine of a node
	// that has just become leader (0 = 5s).
	EngineWait time.Duration

	// OnElected is called when the node becomes leader, before its engine
	// starts (the bench times elections with it).
	OnElected func()
	// OnTerm is started with each term's context once its engine runs
	// (the recurring-run scheduler); it must return when ctx ends.
	OnTerm func(ctx context.Context)
	// OnReady is called once, after the first term's engine has resumed
	// its runs.
	OnReady func(resumed int)
	// OnChange is called whenever the current engine changes: the new one
	// once it runs, nil when the term ends.
	OnChange func(e *engine.Engine)
}

// Leader is the api.Engine of a cluster node.
type Leader struct {
	cfg   Config
	log   *slog.Logger
	execs map[string]executors.Executor

	// terms serializes term starts and ends: a term ends completely (its
	// engine stopped) before the next one on this node begins.
	terms sync.Mutex

	mu      sync.Mutex
	cur     *engine.Engine // nil while not leading
	changed chan struct{}  // closed and replaced whenever cur changes
	stop    func()         // ends the current term
	ready   func(int)
	onTerm  func(context.Context)
}

// New validates cfg and returns a Leader that does nothing until Follow.
func New(cfg Config) (*Leader, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: Store: required", ErrInvalidConfig)
	}
	if err := cfg.Engine.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.BarrierTimeout <= 0 {
		cfg.BarrierTimeout = 10 * time.Second
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = time.Minute
	}
	if cfg.EngineWait <= 0 {
		cfg.EngineWait = 5 * time.Second
	}
	l := &Leader{cfg: cfg, log: cfg.Logger, execs: map[string]executors.Executor{}, changed: make(chan struct{}), ready: cfg.OnReady, onTerm: cfg.OnTerm}
	for _, x := range cfg.Local {
		l.execs[x.Name()] = x
	}
	return l, nil
}

// Follow tracks raft leadership until the returned stop is called (it then
// stops the current term's engine and waits for it). Leadership changes
// are handled in order, off the store's observer goroutine, so that a
// slow engine stop never delays the store.
func (l *Leader) Follow() (stop func()) {
	events := make(chan bool, 64)
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case leader := <-events:
				// Only the latest state matters.
				for more := true; more; {
					select {
					case leader = <-events:
					default:
						more = false
					}
				}
				// A term is ended before the next begins: leadership lost
				// and won again between two looks is a new term.
				l.endTerm()
				if leader {
					l.startTerm(quit)
				}
			case <-quit:
				l.endTerm()
				return
			}
		}
	}()
	stopWatch := l.cfg.Store.WatchLeadership(func(leader bool) {
		select {
		case events <- leader:
		case <-quit:
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			stopWatch()
			close(quit)
			<-done
		})
	}
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

// startTerm builds and starts this term's engine. The catch-up barrier
// and the resume are tried again while this node leads; a leader that
// cannot start its engine within GiveUpAfter hands leadership over,
// because a leader without an engine would hold every run.
func (l *Leader) startTerm(quit <-chan struct{}) {
	l.terms.Lock()
	defer l.terms.Unlock()
	if l.cfg.OnElected != nil {
		l.cfg.OnElected()
	}
	st := l.cfg.Store
	began := time.Now()
	for try := 0; ; try++ {
		stop, e, resumed, err := l.tryTerm()
		if err == nil {
			l.log.Info("cluster: leading; engine started", "node", st.ID(), "resumed_runs", len(resumed))
			l.mu.Lock()
			l.cur, l.stop = e, stop
			close(l.changed)
			l.changed = make(chan struct{})
			ready := l.ready
			l.ready = nil
			l.mu.Unlock()
			if l.cfg.OnChange != nil {
				l.cfg.OnChange(e)
			}
			if ready != nil {
				ready(len(resumed))
			}
			return
		}
		if !st.IsLeader() {
			return
		}
		if time.Since(began) > l.cfg.GiveUpAfter {
			l.log.Error("cluster: leading but the engine cannot start; handing leadership over", "node", st.ID(), "err", err)
			if terr := st.TransferLeadership(); terr != nil {
				l.log.Error("cluster: leadership transfer failed", "err", terr)
			}
			return
		}
		l.log.Warn("cluster: leading but the engine cannot start yet; trying again", "node", st.ID(), "try", try+1, "err", err)
		select {
		case <-quit:
			return
		case <-time.After(backoff(try)):
		}
	}
}

// backoff is the pause before the next try to start a term's engine.
func backoff(try int) time.Duration {
	d := 50 * time.Millisecond << min(try, 5)
	return min(d, time.Second)
}

// tryTerm starts one engine: dispatcher first (adoption reads the
// assignments, and nothing applied from now on is missed), then the
// barrier, then the resume. On error everything it started is stopped.
func (l *Leader) tryTerm() (stop func(), e *engine.Engine, resumed []string, err error) {
	cfg := l.cfg.Engine
	var reg *termRegisterer
	if cfg.Registerer != nil {
		reg = &termRegisterer{reg: cfg.Registerer}
		cfg.Registerer = reg
	}
	e, err = engine.New(cfg)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	waitDispatch := func() {}
	if l.cfg.Dispatch != nil {
		waitDispatch = l.cfg.Dispatch.Start(ctx)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.Run(ctx); err != nil {
			l.log.Error("engine stopped", "err", err)
		}
	}()
	stop = func() {
		cancel()
		wg.Wait()
		waitDispatch()
		if reg != nil {
			reg.unregisterAll()
		}
	}
	// Every entry committed by earlier leaders is applied before the
	// engine reads the store.
	bctx, bcancel := context.WithTimeout(ctx, l.cfg.BarrierTimeout)
	err = l.cfg.Store.VerifyLeader(bctx)
	bcancel()
	if err == nil {
		resumed, err = e.Resume(ctx)
	}
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	l.mu.Lock()
	onTerm := l.onTerm
	l.mu.Unlock()
	if onTerm != nil {
		wg.Add(1)
		go func() { defer wg.Done(); onTerm(ctx) }()
	}
	return stop, e, resumed, nil
}

// endTerm stops the current term's engine, if any, and waits for it.
func (l *Leader) endTerm() {
	l.terms.Lock()
	defer l.terms.Unlock()
	l.mu.Lock()
	stop := l.stop
	had := l.cur != nil
	l.cur, l.stop = nil, nil
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	if stop != nil {
		l.log.Info("cluster: no longer leading; engine stopped", "node", l.cfg.Store.ID())
		stop()
	}
	if had && l.cfg.OnChange != nil {
		l.cfg.OnChange(nil)
	}
}

// SetOnTerm replaces Config.OnTerm; call it before Follow (a server's
// recurring-run scheduler is built after its Leader).
func (l *Leader) SetOnTerm(fn func(ctx context.Context)) {
	l.mu.Lock()
	l.onTerm = fn
	l.mu.Unlock()
}

// SetOnReady replaces Config.OnReady; call it before Follow.
func (l *Leader) SetOnReady(fn func(resumed int)) {
	l.mu.Lock()
	l.ready = fn
	l.mu.Unlock()
}

// Engine returns the running engine, or nil while this node does not
// lead or its engine is starting.
func (l *Leader) Engine() *engine.Engine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// Current returns the running engine, waiting up to EngineWait while this
// node is leader but its engine is still starting.
func (l *Leader) Current(ctx context.Context) (*engine.Engine, error) {
	deadline := time.NewTimer(l.cfg.EngineWait)
	defer deadline.Stop()
	st := l.cfg.Store
	for {
		l.mu.Lock()
		e, ch := l.cur, l.changed
		l.mu.Unlock()
		if e != nil {
			return e, nil
		}
		if !st.IsLeader() {
			return nil, fmt.Errorf("engine: node %s: %w", st.ID(), store.ErrNotLeader)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline.C:
			return nil, fmt.Errorf("engine: node %s leads but its engine is not running: %w", st.ID(), engine.ErrStopped)
		}
	}
}

// Submit commits a new run through this term's engine.
func (l *Leader) Submit(ctx context.Context, plan *spec.Plan, params map[string]json.RawMessage, opts engine.SubmitOptions) (string, error) {
	e, err := l.Current(ctx)
	if err != nil {
		return "", err
	}
	return e.Submit(ctx, plan, params, opts)
}

// Cancel commits a run's cancel through this term's engine.
func (l *Leader) Cancel(ctx context.Context, runID string) error {
	e, err := l.Current(ctx)
	if err != nil {
		return err
	}
	return e.Cancel(ctx, runID)
}

// Retry commits a run's retry through this term's engine.
func (l *Leader) Retry(ctx context.Context, runID string) error {
	e, err := l.Current(ctx)
	if err != nil {
		return err
	}
	return e.Retry(ctx, runID)
}

// Executor is answered on every node: the executors are this process's.
func (l *Leader) Executor(name string) (executors.Executor, bool) {
	x, ok := l.execs[name]
	return x, ok
}
