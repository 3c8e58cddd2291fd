package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/skiffml/skiff/executors"
)

// Logs returns the execution's combined stdout and stderr. For an
// execution this executor supervises it reads HostRoot/logs/output.log
// (written as the step runs); with follow, until the container stopped and
// the file is drained. For a container supervised by another process (a
// `skiff logs -f` beside a `skiff run`) it reads the engine's log of the
// container, following it while the container runs. An id with neither is
// executors.ErrUnknownExecution.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	if !validID.MatchString(id) {
		return nil, fmt.Errorf("docker: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	if x := e.lookup(id); x != nil {
		return x.logs(ctx, follow)
	}
	if follow {
		info, err := e.cli.ContainerInspect(ctx, ContainerName(id))
		if err == nil && info.State != nil && info.State.Running {
			return e.containerLogs(ctx, info.ID, true)
		}
	}
	f, err := os.Open(e.logFile(id))
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("docker: logs %q: %w", id, err)
	}
	rc, err := e.containerLogs(ctx, ContainerName(id), false)
	if client.IsErrNotFound(err) || cerrdefs.IsConflict(err) {
		// Conflict: the container is being removed ("dead or marked for
		// removal"), after the execution ended and its log went to the
		// blob store: as gone as a container not found.
		return nil, fmt.Errorf("docker: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	return rc, err
}

func (e *Executor) logFile(id string) string {
	return executors.LogPath(e.cfg.WorkDir, id)
}

// containerLogs demultiplexes the engine's log of a container.
func (e *Executor) containerLogs(ctx context.Context, cid string, follow bool) (io.ReadCloser, error) {
	rc, err := e.cli.ContainerLogs(ctx, cid, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow})
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		rc.Close()
		pw.CloseWithError(err)
	}()
	return &pipeCloser{PipeReader: pr, rc: rc}, nil
}

type pipeCloser struct {
	*io.PipeReader
	rc io.Closer
}

func (p *pipeCloser) Close() error {
	p.rc.Close()
	return p.PipeReader.Close()
}

func (x *execution) logs(ctx context.Context, follow bool) (io.ReadCloser, error) {
	f, err := os.Open(x.logPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("docker: logs %q: %w", x.spec.ID, err)
	}
	if !follow {
		if f == nil {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return f, nil
	}
	return executors.FollowFile(ctx, x.logPath(), f, x.exited), nil
}

// logStream is the copy of a container's followed output into its log.
type logStream struct {
	f    *os.File // nil when the log could not be created
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// startLogs creates (truncates: an adopted container's log is written
// again whole) the execution's log, outside its work dir, and copies the
// container's stdout and stderr into it from its start, following it.
func (x *execution) startLogs(cid string) *logStream {
	ctx, cancel := context.WithCancel(context.Background())
	ls := &logStream{done: make(chan struct{})}
	ls.stop = func() { cancel(); <-ls.done }
	f, err := executors.CreateLog(x.logPath())
	if err != nil {
		x.e.log.Warn("docker executor: creating the log", "id", x.spec.ID, "err", err)
		close(ls.done)
		return ls
	}
	ls.f = f
	go func() {
		defer close(ls.done)
		rc, err := x.e.cli.ContainerLogs(ctx, cid, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
		if err != nil {
			ls.err = err
			return
		}
		defer rc.Close()
		var r io.Reader = rc
		if x.e.followFilter != nil {
			r = x.e.followFilter(rc)
		}
		_, ls.err = stdcopy.StdCopy(f, f, r)
	}()
	go func() {
		select {
		case <-x.e.detached:
			cancel()
		case <-ls.done:
		}
	}()
	return ls
}

// finishLogs completes the log once the container stopped: the followed
// stream gets LogDrainWait to end, then the log is written again whole
// from the engine's log of the container, read without following, and put
// in place of the followed copy by a rename. A busy engine can end a
// followed stream early or deliver part of it twice; the non-following
// read is the step's output as the engine stored it, so the log is never
// shorter (nor longer) than what the step printed. When that read fails,
// the followed copy stays, with a warning.
func (x *execution) finishLogs(cid string, ls *logStream) {
	if ls.f == nil {
		return
	}
	defer ls.f.Close()
	select {
	case <-ls.done:
	case <-time.After(x.e.cfg.LogDrainWait):
	}
	ls.stop()
	if x.e.isDetached() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := x.rewriteLog(ctx, cid); err != nil {
		x.e.log.Warn("docker executor: reading the whole log again; the followed copy is kept and may be incomplete",
			"id", x.spec.ID, "err", err, "followErr", ls.err)
	}
}

// rewriteLog writes the container's whole log to a temporary file beside
// the execution's log (outside any directory a step can write; a link
// there is refused) and renames it over the log.
func (x *execution) rewriteLog(ctx context.Context, cid string) error {
	tmp := x.logPath() + ".whole"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	rc, err := x.e.cli.ContainerLogs(ctx, cid, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err == nil {
		_, err = stdcopy.StdCopy(f, f, rc)
		rc.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, x.logPath())
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
