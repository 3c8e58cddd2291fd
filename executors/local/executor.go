package local

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

var _ executors.Executor = (*Executor)(nil)

// Executor runs each execution as a local process group.
type Executor struct {
	cfg   Config
	log   *slog.Logger
	slots *slots
	cap   spec.Resources // the node's whole capacity

	mu   sync.Mutex
	live map[string]*execution // waiting or running

	// starting bounds the executions setting up and starting at once
	// (work dir, fork, exec): hundreds of them at a time only starve the
	// engine's goroutines of the CPU they need to commit results.
	starting chan struct{}

	// removing holds the executions whose work dirs are being removed
	// after their report (closed when done): a Start of the same ID waits
	// for it, and Wait for all.
	removing map[string]chan struct{}

	roots *rootPool // empty roots to reuse
}

// New checks cfg, fills its defaults (capacity, GPUs, grace period) and
// creates WorkDir.
func New(cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = timeNow
	}
	if cfg.MaxStarting <= 0 {
		cfg.MaxStarting = 4 * runtime.NumCPU()
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.MilliCPU == 0 {
		cfg.MilliCPU = int64(runtime.NumCPU()) * 1000
	}
	if cfg.MemoryBytes == 0 {
		mem, err := totalMemory()
		if err != nil {
			cfg.Logger.Warn("local executor: unknown node memory; not limiting", "err", err)
			mem = math.MaxInt64
		}
		cfg.MemoryBytes = mem
	}
	if cfg.GPUs == nil {
		gpus, err := DetectGPUs(context.Background())
		if err != nil {
			cfg.Logger.Warn("local executor: GPU detection failed; no GPUs", "err", err)
		}
		cfg.GPUs = []string{}
		for _, g := range gpus {
			cfg.GPUs = append(cfg.GPUs, strconv.Itoa(g.Index))
		}
	}
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("local: work dir: %w", err)
	}
	cfg.WorkDir = abs
	if err := executors.PrepareWorkDir(abs); err != nil {
		return nil, fmt.Errorf("local: work dir: %w", err)
	}
	roots, err := newRootPool(abs)
	if err != nil {
		return nil, fmt.Errorf("local: work dir: %w", err)
	}
	return &Executor{
		cfg:      cfg,
		log:      cfg.Logger,
		slots:    newSlots(cfg.MilliCPU, cfg.MemoryBytes, cfg.GPUs),
		cap:      spec.Resources{MilliCPU: cfg.MilliCPU, MemoryBytes: cfg.MemoryBytes, GPU: len(cfg.GPUs)},
		live:     map[string]*execution{},
		removing: map[string]chan struct{}{},
		roots:    roots,

		starting: make(chan struct{}, cfg.MaxStarting),
	}, nil
}

// Name is "local".
func (e *Executor) Name() string { return "local" }

// Root is WorkDir/id, an absolute host path.
func (e *Executor) Root(id string) string { return filepath.Join(e.cfg.WorkDir, id) }

// Capacity is the node's whole capacity as the executor hands it out.
func (e *Executor) Capacity() spec.Resources { return e.cap }

// Start validates s, queues it for node resources and returns. The rest
// (waiting, preparing the root, running, collecting) happens in the
// background and is told through report.
func (e *Executor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if err := e.validate(s); err != nil {
		return fmt.Errorf("local: start %q: %w", specID(s), err)
	}
	if report == nil {
		return fmt.Errorf("local: start %q: nil report func", s.ID)
	}
	x := &execution{
		e:      e,
		spec:   s.Clone(),
		root:   e.Root(s.ID),
		report: report,
		cancel: make(chan struct{}),
		exited: make(chan struct{}),
	}
	x.ctx, x.stopCtx = context.WithCancel(context.Background())
	e.mu.Lock()
	for {
		if _, ok := e.live[s.ID]; ok {
			e.mu.Unlock()
			return fmt.Errorf("local: start %q: %w", s.ID, ErrAlreadyRunning)
		}
		done := e.removing[s.ID]
		if done == nil {
			break
		}
		e.mu.Unlock()
		<-done // the same ID's last work dir is still being removed
		e.mu.Lock()
	}
	e.live[s.ID] = x
	x.waiter = e.slots.enqueue(s.Resources) // under e.mu: FIFO in Start order
	e.mu.Unlock()
	go x.run()
	return nil
}

// Wait waits for the removal of the work dirs of the executions that have
// reported their exit (each happens just after its report); running ones
// are not waited for.
func (e *Executor) Wait() {
	for {
		e.mu.Lock()
		var done chan struct{}
		for _, d := range e.removing {
			done = d
			break
		}
		e.mu.Unlock()
		if done == nil {
			return
		}
		<-done
	}
}

func specID(s *executors.Spec) string {
	if s == nil {
		return ""
	}
	return s.ID
}

func (e *Executor) validate(s *executors.Spec) error {
	if err := executors.CheckSpec(s); err != nil {
		return err
	}
	bad := executors.BadSpec
	switch {
	case s.ID == "" || strings.HasPrefix(s.ID, ".") || strings.ContainsAny(s.ID, `/\`+"\x00"):
		return bad("id: %q is not usable as a directory name (no slash, no leading dot)", s.ID)
	case len(s.Command) == 0 || s.Command[0] == "":
		return bad("command: must not be empty")
	}
	r := s.Resources
	switch {
	case r.MilliCPU > e.cap.MilliCPU:
		return bad("resources.milliCPU: asks %dm, more than the node's whole capacity %dm", r.MilliCPU, e.cap.MilliCPU)
	case r.MemoryBytes > e.cap.MemoryBytes:
		return bad("resources.memoryBytes: asks %d, more than the node's whole capacity %d", r.MemoryBytes, e.cap.MemoryBytes)
	case r.GPU > e.cap.GPU:
		return bad("resources.gpu: asks %d, more than the node's whole capacity %d", r.GPU, e.cap.GPU)
	}
	return nil
}

// Cancel stops execution id: a waiting one ends without starting; a running
// one gets SIGTERM, the grace period, then SIGKILL. Its Exited event carries
// TaskCanceled. An unknown or finished id is not an error.
func (e *Executor) Cancel(ctx context.Context, id string) error {
	e.mu.Lock()
	x := e.live[id]
	e.mu.Unlock()
	if x != nil {
		x.cancelOnce.Do(func() {
			close(x.cancel)
			x.stopCtx()
		})
	}
	return nil
}

// Running lists the executions waiting for resources or running, sorted.
func (e *Executor) Running(ctx context.Context) ([]string, error) {
	e.mu.Lock()
	ids := make([]string, 0, len(e.live))
	for id := range e.live {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	slices.Sort(ids)
	return ids, nil
}

func (e *Executor) lookup(id string) *execution {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.live[id]
}

func (e *Executor) forget(x *execution) {
	e.mu.Lock()
	if e.live[x.spec.ID] == x {
		delete(e.live, x.spec.ID)
		e.removing[x.spec.ID] = make(chan struct{})
	}
	e.mu.Unlock()
}

// removed ends x's removal (see removing).
func (e *Executor) removed(x *execution) {
	e.mu.Lock()
	if done := e.removing[x.spec.ID]; done != nil {
		close(done)
		delete(e.removing, x.spec.ID)
	}
	e.mu.Unlock()
}
