package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store/blob"
)

var timeNow = time.Now

// executionEnv names the execution in every step's environment; it also
// finds leftover processes (leftover.go).
const executionEnv = "SKIFF_EXECUTION_ID"

// Where executions started by earlier binaries kept their log, in their
// root: Root/output.log, or Root/logs/output.log.
const (
	oldLogsDir  = "logs"
	logFileName = "output.log"
)

// execution is one Start: waiting for slots, then running, then reported.
type execution struct {
	e      *Executor
	spec   *executors.Spec
	root   string
	report func(executors.Event)
	waiter *waiter

	cancelOnce sync.Once
	cancel     chan struct{} // closed by Cancel
	ctx        context.Context
	stopCtx    context.CancelFunc // called by Cancel, and once the execution ends
	exited     chan struct{}      // closed once the process is gone and the log closed

	startOnce sync.Once // gives back the executor's starting slot

	logged bool // the log file exists (the step printed something, or KeepWorkDirs)
}

// started gives back the starting slot taken in runGranted, once.
func (x *execution) started() { x.startOnce.Do(func() { <-x.e.starting }) }

// outcome is how an execution ended, before it is reported.
type outcome struct {
	state    spec.TaskState
	exitCode int
	reason   string
	outputs  map[string]spec.Value
}

func failed(reason string) outcome {
	return outcome{state: spec.TaskFailed, exitCode: -1, reason: reason}
}

// logPath is the execution's log, outside its root (executors.LogPath).
func (x *execution) logPath() string { return executors.LogPath(x.e.cfg.WorkDir, x.spec.ID) }

// run is the execution's whole background life; it reports Exited exactly
// once, on every path.
func (x *execution) run() {
	select {
	case <-x.waiter.ready:
	case <-x.cancel:
		if x.e.slots.cancel(x.waiter) {
			close(x.exited)
			x.finish(outcome{state: spec.TaskCanceled, exitCode: -1, reason: "canceled"}, false)
			x.remove()
			return
		}
		// Granted at the same moment: run the cancel path below, which
		// sees x.cancel closed before starting anything.
	}
	out, started := x.runGranted()
	// Resources go back after Exited is reported, so the events of steps
	// sharing them never overlap; the work dir goes after both, while the
	// engine records the exit and starts what comes next.
	x.finish(out, started)
	x.e.slots.release(x.waiter)
	x.remove()
}

// runGranted prepares the root, runs the process and collects outputs,
// holding the node resources.
func (x *execution) runGranted() (outcome, bool) {
	defer func() {
		select {
		case <-x.exited:
		default:
			close(x.exited)
		}
	}()
	select {
	case <-x.cancel:
		return outcome{state: spec.TaskCanceled, exitCode: -1, reason: "canceled"}, false
	default:
	}
	select {
	case x.e.starting <- struct{}{}:
		defer x.started()
	case <-x.cancel:
		return outcome{state: spec.TaskCanceled, exitCode: -1, reason: "canceled"}, false
	}
	// Cancel ends ctx too (aborting input materialisation or output
	// collection): no goroutine waits on x.cancel for it.
	ctx := x.ctx
	defer x.stopCtx()
	if err := x.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return outcome{state: spec.TaskCanceled, exitCode: -1, reason: "canceled"}, false
		}
		return failed(err.Error()), false
	}
	res, err := x.exec()
	if err != nil {
		return failed(err.Error()), false
	}
	close(x.exited)
	if res.state != spec.TaskSucceeded {
		return res, true
	}
	outs, err := executors.CollectOutputs(ctx, x.root, x.spec.Outputs, x.e.cfg.Blobs, x.e.cfg.MaxOutputBytes)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{state: spec.TaskCanceled, exitCode: 0, reason: "canceled"}, true
		}
		return outcome{state: spec.TaskFailed, exitCode: 0, reason: err.Error()}, true
	}
	res.outputs = outs
	return res, true
}

// prepare empties the root (a leftover from an earlier try of the same id
// must not leak outputs), lays it out and materialises inputs.
func (x *execution) prepare(ctx context.Context) error {
	if _, err := os.Lstat(x.root); err == nil {
		// An earlier try of the same id: what it runs must not write
		// into this one, nor leak its outputs into it.
		if err := x.e.killLeftover(x.spec.ID); err != nil && !errors.Is(err, ErrNoLeftover) {
			x.e.log.Warn("local executor: leftover process", "id", x.spec.ID, "err", err)
		}
		if err := os.RemoveAll(x.root); err != nil {
			return fmt.Errorf("preparing root: %w", err)
		}
	}
	// A root another execution gave back (only its tmp/: all a step
	// without outputs needs), or a new one made by PrepareRootFor.
	taken, err := x.e.roots.take(x.root)
	if err != nil {
		return fmt.Errorf("preparing root: %w", err)
	}
	if !taken || len(x.spec.Outputs) > 0 {
		if err := executors.PrepareRootFor(x.root, x.spec); err != nil {
			return err
		}
	}
	if err := executors.MaterializeInputs(ctx, x.root, x.spec.Inputs, x.e.cfg.Blobs); err != nil {
		return fmt.Errorf("materialising inputs: %w", err)
	}
	return nil
}

// exec starts the process, reports Started and waits for it, enforcing the
// timeout and cancellation. An error means the process never started.
func (x *execution) exec() (outcome, error) {
	s := x.spec
	env := x.environ()
	bin, err := lookPath(s.Command[0], env)
	if err != nil {
		return outcome{}, fmt.Errorf("starting %q: %w", s.Command[0], err)
	}
	sink, out, err := newLogSink(x.logPath(), s.ID, x.e.log, x.e.cfg.KeepWorkDirs)
	if err != nil {
		return outcome{}, fmt.Errorf("opening log: %w", err)
	}
	cmd := &exec.Cmd{
		Path:        bin,
		Args:        append(append([]string{s.Command[0]}, s.Command[1:]...), s.Args...),
		Env:         env,
		Dir:         x.workingDir(),
		Stdout:      out, // one pipe for both: their order is kept
		Stderr:      out,
		SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
	}
	if null, err := devNull(); err == nil {
		cmd.Stdin = null // else os/exec opens it itself, and says why it cannot
	}
	err = cmd.Start()
	out.Close() // the child has its copy
	sink.start()
	if err != nil {
		sink.finish()
		return outcome{}, fmt.Errorf("starting %q: %w", s.Command[0], err)
	}
	defer func() { x.logged = sink.finish() }()
	pid := cmd.Process.Pid
	x.e.log.Debug("local executor: started", "id", s.ID, "pid", pid)
	x.report(executors.Event{ID: s.ID, Kind: executors.EventStarted, Time: x.e.cfg.Clock()})
	x.started()

	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	var timeout <-chan time.Time
	if s.Timeout > 0 {
		t := time.NewTimer(s.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	var err2 error
	var why outcome
	select {
	case err2 = <-waitErr:
	case <-timeout:
		why = failed("timed out after " + s.Timeout.String())
		err2 = x.stopGroup(pid, waitErr)
	case <-x.cancel:
		why = outcome{state: spec.TaskCanceled, exitCode: -1, reason: "canceled"}
		err2 = x.stopGroup(pid, waitErr)
	}
	// Whatever the leader left behind in its group goes too.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	res := exitOutcome(cmd.ProcessState, err2)
	if why.state != 0 {
		why.exitCode = res.exitCode
		return why, nil
	}
	return res, nil
}

// devNull is the null device, opened once for the process and given to
// every step as its standard input (a step reads nothing; end of file at
// once). With a nil Stdin os/exec opens and closes it for every process:
// two system calls more for each step of a fan-out of /bin/true.
var devNull = sync.OnceValues(func() (*os.File, error) { return os.Open(os.DevNull) })

// stopGroup sends SIGTERM to the group, waits the grace period for the
// leader to exit, then sends SIGKILL; it returns the leader's wait error.
func (x *execution) stopGroup(pid int, waitErr <-chan error) error {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	grace := time.NewTimer(x.e.cfg.GracePeriod)
	defer grace.Stop()
	select {
	case err := <-waitErr:
		return err
	case <-grace.C:
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return <-waitErr
	}
}

func exitOutcome(ps *os.ProcessState, waitErr error) outcome {
	if ps == nil {
		return failed(fmt.Sprintf("wait: %v", waitErr))
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		return failed(fmt.Sprintf("killed by signal %d (%v)", int(sig), sig))
	}
	if code := ps.ExitCode(); code != 0 {
		return outcome{state: spec.TaskFailed, exitCode: code, reason: fmt.Sprintf("exit code %d", code)}
	}
	return outcome{state: spec.TaskSucceeded, exitCode: 0}
}

// finish stores the log, forgets the execution and reports Exited.
func (x *execution) finish(out outcome, started bool) {
	ev := executors.Event{
		ID: x.spec.ID, Kind: executors.EventExited,
		State: out.state, ExitCode: out.exitCode, Reason: out.reason, Outputs: out.outputs,
	}
	switch {
	case started && !x.logged:
		// Nothing printed: no log file was made.
		ev.Logs = &spec.ArtifactRef{Digest: blob.EmptyDigest}
	case started:
		ref, err := x.e.cfg.Blobs.PutPath(context.Background(), x.logPath())
		if err != nil {
			x.e.log.Warn("local executor: storing log", "id", x.spec.ID, "err", err)
		} else {
			ev.Logs = &ref
		}
	}
	x.e.forget(x)
	ev.Time = x.e.cfg.Clock()
	x.e.log.Debug("local executor: exited", "id", x.spec.ID, "state", out.state, "reason", out.reason)
	x.report(ev)
}

// remove deletes the execution's root and log (unless
// Config.KeepWorkDirs), after its report: its outputs and log are stored
// by then. It is off the report's path (a chain's next step need not wait
// for the metadata writes of a removal); Executor.Wait waits for it, so
// that a process ending once its run does (skiff run) leaves nothing
// behind.
func (x *execution) remove() {
	defer x.e.removed(x)
	if x.e.cfg.KeepWorkDirs {
		return
	}
	if x.e.roots.give(x.root) {
		// The root is kept for another execution; the log, if the step
		// printed anything, still goes.
		if !x.logged {
			return
		}
		if err := os.Remove(x.logPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			x.e.log.Warn("local executor: removing the execution's log", "id", x.spec.ID, "err", err)
		}
		return
	}
	if err := executors.RemoveExecution(x.e.cfg.WorkDir, x.spec.ID); err != nil {
		x.e.log.Warn("local executor: removing the execution's work dir", "id", x.spec.ID, "err", err)
	}
}

func (x *execution) workingDir() string {
	switch wd := x.spec.WorkingDir; {
	case wd == "":
		return x.root
	case filepath.IsAbs(wd):
		return wd
	default:
		return filepath.Join(x.root, wd)
	}
}

// environ is the step's environment: a minimal inherited one, the spec's,
// then Skiff's identity and GPU variables (which the spec cannot override).
func (x *execution) environ() []string {
	s := x.spec
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, k := range []string{"PATH", "HOME", "LANG", "USER", "LOGNAME"} {
		if v, ok := os.LookupEnv(k); ok {
			set(k, v)
		}
	}
	if _, ok := vars["PATH"]; !ok {
		set("PATH", "/usr/local/bin:/usr/bin:/bin")
	}
	set("TMPDIR", filepath.Join(x.root, executors.TmpDir))
	for _, ev := range s.Env {
		set(ev.Name, ev.Value)
	}
	set("SKIFF_RUN_ID", s.RunID)
	set("SKIFF_TASK", s.Task)
	set("SKIFF_TASK_INDEX", strconv.Itoa(s.TaskIndex))
	set("SKIFF_ATTEMPT", strconv.Itoa(s.Attempt))
	set(executionEnv, s.ID)
	set("SKIFF_ROOT", x.root)
	set("CUDA_VISIBLE_DEVICES", strings.Join(x.waiter.gpus, ","))
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env
}

// lookPath resolves name like a shell would with the step's PATH (not the
// engine's): names with a slash are used as they are.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: not found in PATH %q", fs.ErrNotExist, path)
}
