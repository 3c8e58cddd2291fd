package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// Name is the executor's kind as pipelines name it.
const Name = "sim"

// Behavior is what a simulated execution does.
type Behavior struct {
	// Duration is how long the execution runs; 0 = it finishes inside Start.
	Duration time.Duration
	// Fail makes the execution exit FAILED with ExitCode (0 means 1).
	Fail     bool
	ExitCode int
	// FailRate is the probability (0..1) that an execution fails with
	// ExitCode. The draw is a hash of Config.Seed and the execution id, so
	// it is the same for the same id whatever the order of executions.
	FailRate float64
	// Outputs are the parameter outputs to report, by output name. Declared
	// parameter outputs missing here get a default by type ("" / 0 / 0.0 /
	// false / [] / {}); names not declared by the spec are not reported. The
	// bytes are shared with the events: treat them as read-only.
	Outputs map[string]json.RawMessage
}

// Clock is the time source: Now stamps events and AfterFunc ends
// executions with a Duration. Tests pass a manual clock.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc; *time.Timer is one.
type Timer interface {
	Stop() bool
}

// Config configures an Executor.
type Config struct {
	Default Behavior            // for tasks not in Tasks
	Tasks   map[string]Behavior // by task name
	Seed    int64               // for FailRate
	Clock   Clock               // nil = the real clock
}

// DefaultConfig returns a Config whose executions succeed at once.
func DefaultConfig() Config { return Config{Seed: 1} }

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	if err := c.Default.validate("Default"); err != nil {
		return err
	}
	for name, b := range c.Tasks {
		if err := b.validate(fmt.Sprintf("Tasks[%q]", name)); err != nil {
			return err
		}
	}
	return nil
}

func (b Behavior) validate(field string) error {
	switch {
	case b.Duration < 0:
		return fmt.Errorf("sim: %s.Duration: must not be negative", field)
	case b.ExitCode < 0:
		return fmt.Errorf("sim: %s.ExitCode: must not be negative", field)
	case !(b.FailRate >= 0 && b.FailRate <= 1):
		return fmt.Errorf("sim: %s.FailRate: %v is not between 0 and 1", field, b.FailRate)
	}
	for name, raw := range b.Outputs {
		if !json.Valid(raw) {
			return fmt.Errorf("sim: %s.Outputs[%q]: not valid JSON", field, name)
		}
	}
	return nil
}

// Executor simulates executions. It is safe for concurrent use.
type Executor struct {
	cfg   Config
	clock Clock

	mu    sync.Mutex
	live  map[string]*execution // unfinished executions with a Duration
	known map[string]record     // the last KeepLogs executions started, for Logs
	order []string              // known's ids, a ring, oldest at next
	next  int
}

// KeepLogs is how many executions' logs sim keeps (the most recently
// started): a benchmark's millions of executions must not grow its heap.
const KeepLogs = 16384

var _ executors.Executor = (*Executor)(nil)

// record is what Logs needs of an execution, kept after it ends.
type record struct {
	task    string
	attempt int
}

// execution is one unfinished execution with a Duration. Guarded by
// Executor.mu.
type execution struct {
	report   func(executors.Event)
	exit     executors.Event // its outcome, decided at Start
	timer    Timer
	starting bool          // Started not reported yet
	canceled bool          // Cancel came while starting
	finished bool          // Exited is reported (or about to be)
	done     chan struct{} // made by a following Logs reader; closed on exit
}

// New returns a simulated executor. It panics when cfg.Validate fails;
// validate configuration from users first.
func New(cfg Config) *Executor {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	return &Executor{cfg: cfg, clock: clock, live: map[string]*execution{}, known: map[string]record{}}
}

// Name returns "sim".
func (e *Executor) Name() string { return Name }

// Root returns "/sim/<id>"; nothing exists there.
func (e *Executor) Root(id string) string { return path.Join("/sim", id) }

// Start validates s and simulates it (see the package doc for when report
// is called). A spec with no ID, a nil report, an output with no name or
// an unknown type, or the ID of an execution still running is rejected
// with an error wrapping executors.ErrBadSpec.
func (e *Executor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkSpec(s, report); err != nil {
		return err
	}
	exit, after := e.outcome(s)
	e.mu.Lock()
	if _, ok := e.live[s.ID]; ok {
		e.mu.Unlock()
		return fmt.Errorf("sim: start %q: %w: execution is already running", s.ID, executors.ErrBadSpec)
	}
	e.remember(s.ID, record{task: s.Task, attempt: s.Attempt})
	if after == 0 {
		e.mu.Unlock()
		now := e.clock.Now()
		report(executors.Event{ID: s.ID, Kind: executors.EventStarted, Time: now})
		exit.Time = now
		report(exit)
		return nil
	}
	x := &execution{report: report, exit: exit, starting: true}
	e.live[s.ID] = x
	e.mu.Unlock()

	report(executors.Event{ID: s.ID, Kind: executors.EventStarted, Time: e.clock.Now()})

	e.mu.Lock()
	x.starting = false
	if x.canceled {
		e.finishLocked(s.ID, x)
		e.mu.Unlock()
		report(e.canceledEvent(s.ID))
		return nil
	}
	x.timer = e.clock.AfterFunc(after, func() { e.expire(s.ID, x) })
	e.mu.Unlock()
	return nil
}

// remember keeps id's record for Logs, forgetting the oldest one kept
// once KeepLogs are. Called with e.mu held.
func (e *Executor) remember(id string, r record) {
	if _, ok := e.known[id]; ok {
		e.known[id] = r
		return
	}
	if len(e.order) < KeepLogs {
		e.order = append(e.order, id)
	} else {
		old := e.order[e.next]
		if _, live := e.live[old]; !live {
			delete(e.known, old)
		}
		e.order[e.next] = id
		e.next = (e.next + 1) % KeepLogs
	}
	e.known[id] = r
}

// expire reports x's decided outcome when its time is up.
func (e *Executor) expire(id string, x *execution) {
	e.mu.Lock()
	if x.finished {
		e.mu.Unlock()
		return
	}
	e.finishLocked(id, x)
	e.mu.Unlock()
	ev := x.exit
	ev.Time = e.clock.Now()
	x.report(ev)
}

func (e *Executor) finishLocked(id string, x *execution) {
	x.finished = true
	delete(e.live, id)
	if x.done != nil {
		close(x.done)
	}
}

func (e *Executor) canceledEvent(id string) executors.Event {
	return executors.Event{ID: id, Kind: executors.EventExited, Time: e.clock.Now(),
		State: spec.TaskCanceled, ExitCode: -1, Reason: "canceled"}
}

// Cancel ends an unfinished execution at once with an Exited event
// carrying TaskCanceled. Cancelling an unknown or finished execution does
// nothing.
func (e *Executor) Cancel(ctx context.Context, id string) error {
	e.mu.Lock()
	x, ok := e.live[id]
	if !ok || x.finished {
		e.mu.Unlock()
		return nil
	}
	if x.starting {
		x.canceled = true // Start reports it after Started
		e.mu.Unlock()
		return nil
	}
	x.timer.Stop()
	e.finishLocked(id, x)
	e.mu.Unlock()
	x.report(e.canceledEvent(id))
	return nil
}

// Logs returns one line, "sim: <task> attempt <n>". With follow on an
// unfinished execution the reader returns io.EOF only once it exits (or
// ctx ends, or the reader is closed). An id never started, or not among
// the last KeepLogs started, wraps executors.ErrUnknownExecution.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec, ok := e.known[id]
	if !ok {
		return nil, fmt.Errorf("sim: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	text := strings.NewReader(fmt.Sprintf("sim: %s attempt %d\n", rec.task, rec.attempt))
	x, live := e.live[id]
	if !follow || !live {
		return io.NopCloser(text), nil
	}
	if x.done == nil {
		x.done = make(chan struct{})
	}
	return &followReader{ctx: ctx, r: text, done: x.done, closed: make(chan struct{})}, nil
}

// Running lists the unfinished executions, sorted.
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

func checkSpec(s *executors.Spec, report func(executors.Event)) error {
	bad := func(format string, args ...any) error {
		id := ""
		if s != nil {
			id = s.ID
		}
		return fmt.Errorf("sim: start %q: %w: %s", id, executors.ErrBadSpec, fmt.Sprintf(format, args...))
	}
	switch {
	case s == nil:
		return bad("nil spec")
	case s.ID == "":
		return bad("id: empty")
	case report == nil:
		return bad("report: nil")
	case s.Timeout < 0:
		return bad("timeout: negative")
	}
	for i, o := range s.Outputs {
		if o.Name == "" {
			return bad("outputs[%d].name: empty", i)
		}
		if !o.Type.Valid() {
			return bad("outputs[%d].type: unknown type %q", i, o.Type)
		}
	}
	return nil
}

type followReader struct {
	ctx       context.Context // the Logs call's; a follow reader lives within it
	r         io.Reader
	done      <-chan struct{}
	closed    chan struct{}
	closeOnce sync.Once
}

func (f *followReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if !errors.Is(err, io.EOF) {
		return n, err
	}
	select {
	case <-f.done:
	case <-f.closed:
	case <-f.ctx.Done():
		return n, f.ctx.Err()
	}
	return n, io.EOF
}

func (f *followReader) Close() error {
	f.closeOnce.Do(func() { close(f.closed) })
	return nil
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// artifactRef is the synthetic reference of a sim artifact (no bytes).
func artifactRef(id, name string, t spec.Type) *spec.ArtifactRef {
	sum := sha256.Sum256([]byte("sim/" + id + "/" + name))
	return &spec.ArtifactRef{Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: 0, Type: t}
}
