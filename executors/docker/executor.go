package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

var (
	_ executors.Executor = (*Executor)(nil)
	_ executors.Adopter  = (*Executor)(nil)
)

// Labels every container of this executor carries.
const (
	LabelManaged   = "io.skiff.managed" // "true"
	LabelExecution = "io.skiff.execution"
	LabelRun       = "io.skiff.run"
	LabelTask      = "io.skiff.task"
	LabelTaskIndex = "io.skiff.task-index"
	LabelAttempt   = "io.skiff.attempt"
	LabelWorkDir   = "io.skiff.workdir" // the executor's host WorkDir
)

// ContainerName is the deterministic name of execution id's container.
func ContainerName(id string) string { return "skiff-" + id }

// validID: Docker container names are [a-zA-Z0-9][a-zA-Z0-9_.-]*.
var validID = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Executor runs each execution as one Docker container.
type Executor struct {
	cfg Config
	cli *client.Client
	log *slog.Logger

	pullMu sync.Mutex
	pulls  map[string]*sync.Mutex // one pull per image at a time

	mu       sync.Mutex
	live     map[string]*execution
	detached chan struct{} // closed by Detach

	// followFilter, when set (tests), wraps every followed log stream, to
	// play a busy engine that ends it early or repeats part of it.
	followFilter func(io.Reader) io.Reader
}

// New checks cfg, connects to the engine (negotiating the API version) and
// creates WorkDir. It fails with ErrNoEngine when the engine does not
// answer within ctx.
func New(ctx context.Context, cfg Config) (*Executor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.GracePeriod == 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.PullPolicy == "" {
		cfg.PullPolicy = PullIfNotPresent
	}
	if cfg.LogDrainWait == 0 {
		cfg.LogDrainWait = DefaultLogDrainWait
	}
	if cfg.ShmSizeBytes == 0 {
		cfg.ShmSizeBytes = DefaultShmSize
	}
	cli := cfg.Client
	if cli == nil {
		var err error
		cli, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			return nil, fmt.Errorf("docker: %w: %v", ErrNoEngine, err)
		}
	}
	if _, err := cli.Ping(ctx); err != nil {
		return nil, fmt.Errorf("docker: %w: %v", ErrNoEngine, err)
	}
	cli.NegotiateAPIVersion(ctx)
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, fmt.Errorf("docker: work dir: %w", err)
	}
	cfg.WorkDir = abs
	if err := executors.PrepareWorkDir(abs); err != nil {
		return nil, fmt.Errorf("docker: work dir: %w", err)
	}
	return &Executor{
		cfg: cfg, cli: cli, log: cfg.Logger,
		pulls: map[string]*sync.Mutex{}, live: map[string]*execution{},
		detached: make(chan struct{}),
	}, nil
}

// Name is "docker".
func (e *Executor) Name() string { return "docker" }

// Root is ContainerRoot (/skiff) for every execution: the path of its work
// dir inside its container.
func (e *Executor) Root(id string) string { return ContainerRoot }

// HostRoot is execution id's work dir on the host (WorkDir/id).
func (e *Executor) HostRoot(id string) string { return filepath.Join(e.cfg.WorkDir, id) }

// Client is the executor's Docker client.
func (e *Executor) Client() *client.Client { return e.cli }

// Start validates s and returns; pulling the image, creating and starting
// the container, waiting and collecting happen in the background and are
// told through report.
func (e *Executor) Start(ctx context.Context, s *executors.Spec, report func(executors.Event)) error {
	if err := e.validate(s); err != nil {
		return fmt.Errorf("docker: start %q: %w", specID(s), err)
	}
	if report == nil {
		return fmt.Errorf("docker: start %q: %w: nil report func", s.ID, executors.ErrBadSpec)
	}
	x := e.newExecution(s, report)
	if err := e.register(x); err != nil {
		return fmt.Errorf("docker: start %q: %w", s.ID, err)
	}
	go x.runNew()
	return nil
}

func (e *Executor) newExecution(s *executors.Spec, report func(executors.Event)) *execution {
	c := s.Clone()
	if c.Image == "" {
		c.Image = e.cfg.DefaultImage
	}
	return &execution{
		e: e, spec: c, hostRoot: e.HostRoot(s.ID), name: ContainerName(s.ID),
		report: report, cancel: make(chan struct{}), exited: make(chan struct{}),
	}
}

func (e *Executor) register(x *execution) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.live[x.spec.ID]; ok {
		return ErrAlreadyRunning
	}
	e.live[x.spec.ID] = x
	return nil
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
	case !validID.MatchString(s.ID):
		return bad("id: %q is not usable in a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)", s.ID)
	case s.Image == "" && e.cfg.DefaultImage == "":
		return bad("image: empty, and the docker executor has no default image")
	case len(s.Command) > 0 && s.Command[0] == "":
		return bad("command[0]: must not be empty")
	case s.WorkingDir != "" && strings.ContainsRune(s.WorkingDir, 0):
		return bad("workingDir: %q", s.WorkingDir)
	case s.Resources.MemoryBytes > 0 && s.Resources.MemoryBytes < minMemory:
		return bad("resources.memoryBytes: %d is below Docker's minimum of %d (6 MiB)", s.Resources.MemoryBytes, minMemory)
	}
	return nil
}

// Cancel stops execution id: its container gets SIGTERM, the grace period,
// then SIGKILL; its Exited event carries TaskCanceled. An unknown or
// finished id is not an error.
func (e *Executor) Cancel(ctx context.Context, id string) error {
	if x := e.lookup(id); x != nil {
		x.cancelOnce.Do(func() { close(x.cancel) })
	}
	return nil
}

// Running lists the executions this executor supervises, and the running
// containers of its WorkDir that nobody supervises yet (left by an engine
// that stopped, waiting to be adopted), sorted.
func (e *Executor) Running(ctx context.Context) ([]string, error) {
	e.mu.Lock()
	ids := make([]string, 0, len(e.live))
	for id := range e.live {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	cs, err := e.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", LabelManaged+"=true"),
		filters.Arg("label", LabelWorkDir+"="+e.cfg.WorkDir),
	)})
	if err != nil {
		return nil, fmt.Errorf("docker: running: %w", err)
	}
	for _, c := range cs {
		if id := c.Labels[LabelExecution]; id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Adopt re-attaches to the container of s.ID left by an engine that
// stopped: a running one is supervised as if this executor had started it
// (timeout counted from its start; Cancel works), a finished one is
// collected at once; either way report gets one Exited event and no
// Started. It returns false when there is no such container, or when the
// container was created but never started (it is removed: the engine then
// starts a new attempt). An execution this executor already supervises is
// left to that supervision (true).
func (e *Executor) Adopt(ctx context.Context, s *executors.Spec, report func(executors.Event)) (bool, error) {
	if err := e.validate(s); err != nil {
		return false, fmt.Errorf("docker: adopt %q: %w", specID(s), err)
	}
	if report == nil {
		return false, fmt.Errorf("docker: adopt %q: %w: nil report func", s.ID, executors.ErrBadSpec)
	}
	if e.lookup(s.ID) != nil {
		return true, nil
	}
	name := ContainerName(s.ID)
	info, err := e.cli.ContainerInspect(ctx, name)
	if client.IsErrNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("docker: adopt %q: %w", s.ID, err)
	}
	if got := info.Config.Labels[LabelExecution]; got != s.ID {
		return false, fmt.Errorf("docker: adopt %q: container %s belongs to execution %q", s.ID, name, got)
	}
	if info.State == nil || info.State.Status == "created" {
		e.removeContainer(name)
		return false, nil
	}
	started, _ := time.Parse(time.RFC3339Nano, info.State.StartedAt)
	x := e.newExecution(s, report)
	if err := e.register(x); err != nil {
		return true, nil // adopted by a concurrent call
	}
	e.log.Info("docker executor: adopting container", "id", s.ID, "status", info.State.Status)
	go x.runAdopted(info.ID, started)
	return true, nil
}

// KillLeftover removes execution id's container if one is left (used by
// the engine after a restart for an execution it does not adopt). It is not
// an error when there is none.
func (e *Executor) KillLeftover(id string) error {
	if e.lookup(id) != nil {
		return fmt.Errorf("docker: kill leftover %q: %w (use Cancel)", id, ErrAlreadyRunning)
	}
	err := e.cli.ContainerRemove(context.Background(), ContainerName(id), container.RemoveOptions{Force: true})
	if err != nil && !client.IsErrNotFound(err) {
		return fmt.Errorf("docker: kill leftover %q: %w", id, err)
	}
	return nil
}

// Detach stops supervising every execution without touching the
// containers and without reporting anything more, as if this process had
// died: another Executor over the same WorkDir can then Adopt them. The
// Executor must not be used afterwards. Tests use it to simulate a crash.
func (e *Executor) Detach() {
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-e.detached:
	default:
		close(e.detached)
	}
}

func (e *Executor) isDetached() bool {
	select {
	case <-e.detached:
		return true
	default:
		return false
	}
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
	}
	e.mu.Unlock()
}

func (e *Executor) removeContainer(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := e.cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
	if err != nil && !client.IsErrNotFound(err) {
		e.log.Warn("docker executor: removing container", "container", name, "err", err)
	}
}

func (e *Executor) labels(s *executors.Spec) map[string]string {
	return map[string]string{
		LabelManaged:   "true",
		LabelExecution: s.ID,
		LabelRun:       s.RunID,
		LabelTask:      s.Task,
		LabelTaskIndex: strconv.Itoa(s.TaskIndex),
		LabelAttempt:   strconv.Itoa(s.Attempt),
		LabelWorkDir:   e.cfg.WorkDir,
	}
}

// canceledOutcome and failed build outcomes.
func canceledOutcome(code int) outcome {
	return outcome{state: spec.TaskCanceled, exitCode: code, reason: "canceled"}
}

func failed(reason string) outcome {
	return outcome{state: spec.TaskFailed, exitCode: -1, reason: reason}
}

var errStopped = errors.New("detached")
