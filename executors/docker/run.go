package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// execution is one container this executor supervises.
type execution struct {
	e        *Executor
	spec     *executors.Spec
	hostRoot string
	name     string
	report   func(executors.Event)

	cancelOnce sync.Once
	cancel     chan struct{} // closed by Cancel
	exited     chan struct{} // closed once the container stopped and the log is drained
	exitOnce   sync.Once
}

type outcome struct {
	state    spec.TaskState
	exitCode int
	reason   string
	outputs  map[string]spec.Value
}

// logPath is the execution's log, outside the work dir the container can
// write (executors.LogPath).
func (x *execution) logPath() string { return executors.LogPath(x.e.cfg.WorkDir, x.spec.ID) }

func (x *execution) markExited() { x.exitOnce.Do(func() { close(x.exited) }) }

func (x *execution) canceled() bool {
	select {
	case <-x.cancel:
		return true
	default:
		return false
	}
}

// runNew prepares, creates and starts the container, then supervises it.
func (x *execution) runNew() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-x.cancel:
			stop() // abort materialising or pulling
		case <-ctx.Done():
		}
	}()
	cid, out, err := x.create(ctx)
	if err != nil {
		x.markExited()
		if x.canceled() {
			out = canceledOutcome(-1)
		}
		x.finish(out, false, "")
		return
	}
	if x.canceled() {
		x.markExited()
		x.finish(canceledOutcome(-1), false, cid)
		return
	}
	if err := x.e.cli.ContainerStart(context.Background(), cid, container.StartOptions{}); err != nil {
		x.markExited()
		x.finish(failed(startError(x.spec, err)), false, cid)
		return
	}
	x.e.log.Debug("docker executor: started", "id", x.spec.ID, "container", x.name)
	if !x.e.isDetached() {
		x.report(executors.Event{ID: x.spec.ID, Kind: executors.EventStarted, Time: x.e.cfg.Clock()})
	}
	out = x.supervise(cid, x.e.cfg.Clock())
	x.finish(out, true, cid)
}

// runAdopted supervises a container an earlier engine started.
func (x *execution) runAdopted(cid string, startedAt time.Time) {
	if startedAt.IsZero() {
		startedAt = x.e.cfg.Clock()
	}
	out := x.supervise(cid, startedAt)
	x.finish(out, true, cid)
}

// create lays out the root, materialises inputs, makes sure the image is
// there and creates the container. On error the outcome says why.
func (x *execution) create(ctx context.Context) (string, outcome, error) {
	fail := func(err error) (string, outcome, error) { return "", failed(err.Error()), err }
	// A leftover container of the same id (an earlier try nobody adopted)
	// must not survive: the name is ours.
	x.e.removeContainer(x.name)
	if err := os.RemoveAll(x.hostRoot); err != nil {
		return fail(fmt.Errorf("preparing root: %w", err))
	}
	if err := executors.PrepareRoot(x.hostRoot); err != nil {
		return fail(err)
	}
	// The container may run as any uid: let it write outputs and tmp files.
	for _, d := range []string{executors.OutputsDir, executors.TmpDir} {
		if err := os.Chmod(filepath.Join(x.hostRoot, d), 0o777); err != nil {
			return fail(fmt.Errorf("preparing root: %w", err))
		}
	}
	if err := executors.MaterializeInputs(ctx, x.hostRoot, x.spec.Inputs, x.e.cfg.Blobs); err != nil {
		return fail(fmt.Errorf("materialising inputs: %w", err))
	}
	if err := x.e.ensureImage(ctx, x.spec.Image); err != nil {
		return fail(err)
	}
	cfg, host := x.e.containerConfig(x.spec, x.hostRoot)
	resp, err := x.e.cli.ContainerCreate(ctx, cfg, host, nil, nil, x.name)
	if err != nil {
		return fail(fmt.Errorf("creating container %s: %s", x.name, startError(x.spec, err)))
	}
	return resp.ID, outcome{}, nil
}

// startError makes Docker's start errors readable; GPU requests without
// an NVIDIA runtime get a clear message.
func startError(s *executors.Spec, err error) string {
	msg := err.Error()
	if s.Resources.GPU > 0 && (strings.Contains(msg, "could not select device driver") || strings.Contains(msg, "nvidia")) {
		return fmt.Sprintf("resources.gpu: asks %d GPU(s), but the %v (install the NVIDIA Container Toolkit and restart dockerd): %s", s.Resources.GPU, ErrNoGPURuntime, msg)
	}
	return "starting container: " + msg
}

// containerConfig is the container's definition.
func (e *Executor) containerConfig(s *executors.Spec, hostRoot string) (*container.Config, *container.HostConfig) {
	env := make([]string, 0, len(s.Env)+8)
	env = append(env, "TMPDIR="+path.Join(ContainerRoot, executors.TmpDir))
	for _, ev := range s.Env {
		env = append(env, ev.Name+"="+ev.Value)
	}
	env = append(env,
		"SKIFF_RUN_ID="+s.RunID,
		"SKIFF_TASK="+s.Task,
		"SKIFF_TASK_INDEX="+strconv.Itoa(s.TaskIndex),
		"SKIFF_ATTEMPT="+strconv.Itoa(s.Attempt),
		"SKIFF_EXECUTION_ID="+s.ID,
		"SKIFF_ROOT="+ContainerRoot,
	)
	wd := s.WorkingDir
	switch {
	case wd == "":
		wd = ContainerRoot
	case !path.IsAbs(wd):
		wd = path.Join(ContainerRoot, wd)
	}
	cfg := &container.Config{
		Image:      s.Image,
		Env:        env,
		WorkingDir: wd,
		User:       e.cfg.User,
		Labels:     e.labels(s),
	}
	if len(s.Command) > 0 {
		cfg.Entrypoint = s.Command
		cfg.Cmd = s.Args
	} else if len(s.Args) > 0 {
		cfg.Cmd = s.Args // the image's entrypoint with these args
	}
	if cfg.Cmd == nil && len(s.Command) > 0 {
		cfg.Cmd = []string{} // not the image's CMD
	}
	host := &container.HostConfig{
		Binds:       []string{hostRoot + ":" + ContainerRoot},
		NetworkMode: container.NetworkMode(e.cfg.NetworkMode),
		LogConfig:   container.LogConfig{Type: "json-file"},
	}
	if e.cfg.ShmSizeBytes > 0 {
		host.ShmSize = e.cfg.ShmSizeBytes
	}
	r := s.Resources
	if r.MilliCPU > 0 {
		host.NanoCPUs = r.MilliCPU * 1_000_000
	}
	if r.MemoryBytes > 0 {
		host.Memory = r.MemoryBytes
		host.MemorySwap = r.MemoryBytes // no swap beyond the limit
	}
	if r.GPU > 0 {
		host.DeviceRequests = []container.DeviceRequest{{Count: r.GPU, Capabilities: [][]string{{"gpu"}}}}
	}
	return cfg, host
}

// ensureImage applies the pull policy.
func (e *Executor) ensureImage(ctx context.Context, ref string) error {
	e.pullMu.Lock()
	mu := e.pulls[ref]
	if mu == nil {
		mu = &sync.Mutex{}
		e.pulls[ref] = mu
	}
	e.pullMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	present := func() (bool, error) {
		_, err := e.cli.ImageInspect(ctx, ref)
		if client.IsErrNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	switch e.cfg.PullPolicy {
	case PullNever:
		ok, err := present()
		if err != nil {
			return fmt.Errorf("image %q: %w", ref, err)
		}
		if !ok {
			return fmt.Errorf("image %q: %w: not in the Docker engine and the pull policy is Never (build or load it first: docker build / docker load / docker import)", ref, ErrImageMissing)
		}
		return nil
	case PullIfNotPresent:
		ok, err := present()
		if err != nil {
			return fmt.Errorf("image %q: %w", ref, err)
		}
		if ok {
			return nil
		}
	}
	if err := e.pull(ctx, ref); err != nil {
		return fmt.Errorf("image %q: %w: not in the Docker engine and the pull failed (pull policy %s): %v", ref, ErrImageMissing, e.cfg.PullPolicy, err)
	}
	return nil
}

// pull pulls ref, reading the progress stream for an error.
func (e *Executor) pull(ctx context.Context, ref string) error {
	rc, err := e.cli.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m struct {
			Error       string `json:"error"`
			ErrorDetail struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
	}
}

// supervise streams the container's log into the log file, waits for it
// to stop (enforcing the timeout counted from startedAt, and Cancel), and
// says how it ended, with outputs collected on a zero exit.
func (x *execution) supervise(cid string, startedAt time.Time) outcome {
	cli := x.e.cli
	logs := x.startLogs(cid)

	waitCtx, stopWait := context.WithCancel(context.Background())
	defer stopWait()
	waitC, errC := cli.ContainerWait(waitCtx, cid, container.WaitConditionNotRunning)
	var timeout <-chan time.Time
	if t := x.spec.Timeout; t > 0 {
		left := t - x.e.cfg.Clock().Sub(startedAt)
		timer := time.NewTimer(max(left, 0))
		defer timer.Stop()
		timeout = timer.C
	}
	var why outcome
	select {
	case <-waitC:
	case err := <-errC:
		x.e.log.Warn("docker executor: wait", "id", x.spec.ID, "err", err)
		x.pollUntilStopped(cid)
	case <-timeout:
		why = failed("timed out after " + x.spec.Timeout.String())
		x.stop(cid)
	case <-x.cancel:
		why = canceledOutcome(-1)
		x.stop(cid)
	case <-x.e.detached:
		logs.stop()
		if logs.f != nil {
			logs.f.Close()
		}
		return outcome{}
	}
	x.finishLogs(cid, logs)
	x.markExited()
	info, err := cli.ContainerInspect(context.Background(), cid)
	if err != nil || info.State == nil {
		if why.state != 0 {
			return why
		}
		return failed(fmt.Sprintf("inspecting container %s: %v", x.name, err))
	}
	st := info.State
	if why.state != 0 {
		why.exitCode = st.ExitCode
		return why
	}
	switch {
	case st.OOMKilled:
		return outcome{state: spec.TaskFailed, exitCode: st.ExitCode,
			reason: fmt.Sprintf("OOMKilled: the container exceeded its memory limit of %d bytes (exit code %d)", x.spec.Resources.MemoryBytes, st.ExitCode)}
	case st.ExitCode != 0:
		return outcome{state: spec.TaskFailed, exitCode: st.ExitCode, reason: fmt.Sprintf("exit code %d", st.ExitCode)}
	case st.Error != "":
		return failed("container error: " + st.Error)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-x.cancel:
			stop()
		case <-ctx.Done():
		}
	}()
	outs, err := executors.CollectOutputs(ctx, x.hostRoot, x.spec.Outputs, x.e.cfg.Blobs, x.e.cfg.MaxOutputBytes)
	if err != nil {
		if ctx.Err() != nil {
			return canceledOutcome(0)
		}
		return outcome{state: spec.TaskFailed, exitCode: 0, reason: err.Error()}
	}
	return outcome{state: spec.TaskSucceeded, outputs: outs}
}

// stop sends SIGTERM, waits the grace period, then SIGKILL (docker stop).
func (x *execution) stop(cid string) {
	secs := int((x.e.cfg.GracePeriod + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), x.e.cfg.GracePeriod+time.Minute)
	defer cancel()
	if err := x.e.cli.ContainerStop(ctx, cid, container.StopOptions{Timeout: &secs}); err != nil && !client.IsErrNotFound(err) {
		x.e.log.Warn("docker executor: stop", "id", x.spec.ID, "err", err)
		_ = x.e.cli.ContainerKill(ctx, cid, "KILL")
	}
	x.pollUntilStopped(cid)
}

func (x *execution) pollUntilStopped(cid string) {
	for i := 0; i < 600; i++ {
		info, err := x.e.cli.ContainerInspect(context.Background(), cid)
		if err != nil || info.State == nil || !info.State.Running {
			return
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-x.e.detached:
			return
		}
	}
}

// finish stores the log, reports Exited, then removes the container (so
// that a crash before the report leaves it to be adopted and collected)
// and the work dir and log (unless Config.KeepWorkDirs).
func (x *execution) finish(out outcome, started bool, cid string) {
	defer x.e.forget(x)
	if x.e.isDetached() {
		return
	}
	ev := executors.Event{
		ID: x.spec.ID, Kind: executors.EventExited,
		State: out.state, ExitCode: out.exitCode, Reason: out.reason, Outputs: out.outputs,
	}
	if started {
		ref, err := x.e.cfg.Blobs.PutPath(context.Background(), x.logPath())
		if err != nil {
			x.e.log.Warn("docker executor: storing log", "id", x.spec.ID, "err", err)
		} else {
			ev.Logs = &ref
		}
	}
	ev.Time = x.e.cfg.Clock()
	x.e.log.Debug("docker executor: exited", "id", x.spec.ID, "state", out.state, "reason", out.reason)
	x.e.forget(x)
	// The work dir goes before the report: its outputs and log are stored,
	// and a process that ends once its run does (skiff run) must not leave
	// it behind.
	if !x.e.cfg.KeepWorkDirs {
		if err := executors.RemoveExecution(x.e.cfg.WorkDir, x.spec.ID); err != nil {
			x.e.log.Warn("docker executor: removing the execution's work dir", "id", x.spec.ID, "err", err)
		}
	}
	x.report(ev)
	if cid != "" && !x.e.cfg.KeepContainers {
		x.e.removeContainer(cid)
	}
}
