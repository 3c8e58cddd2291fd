package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/skiffml/skiff/executors"
)

// logPollInterval is how often a following reader looks for more output.
const logPollInterval = 50 * time.Millisecond

// Logs returns the execution's combined stdout and stderr. For an
// execution this executor supervises it reads HostRoot/logs/output.log
// (written as the step runs); with follow, until the container stopped and
// the file is drained. For a container supervised by another process (a
// `skiff logs -f` beside a `skiff run`) it reads the engine's log of the
// container, following it while the container runs. An id with neither is
// executors.ErrUnknownExecution.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
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
	if client.IsErrNotFound(err) {
		return nil, fmt.Errorf("docker: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	return rc, err
}

func (e *Executor) logFile(id string) string {
	return e.HostRoot(id) + "/" + logsDir + "/" + logFileName
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
	fr := &followReader{path: x.logPath(), f: f, exited: x.exited, closed: make(chan struct{})}
	fr.stopCtx = context.AfterFunc(ctx, fr.stop)
	return fr, nil
}

// followReader tails a log file until the execution exits.
type followReader struct {
	path    string
	f       *os.File // nil until the file exists
	exited  <-chan struct{}
	stopCtx func() bool

	once   sync.Once
	closed chan struct{}
	mu     sync.Mutex // guards f against a Close during a Read
}

func (r *followReader) stop() { r.once.Do(func() { close(r.closed) }) }

func (r *followReader) Read(p []byte) (int, error) {
	for {
		if n, ok, err := r.readOnce(p); ok {
			return n, err
		}
		t := time.NewTimer(logPollInterval)
		select {
		case <-r.closed:
			t.Stop()
			return 0, io.EOF
		case <-r.exited:
			t.Stop()
		case <-t.C:
		}
	}
}

// readOnce reads what the file has; ok false means "nothing yet, wait".
func (r *followReader) readOnce(p []byte) (n int, ok bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if isClosed(r.closed) {
		return 0, true, io.EOF
	}
	// Sample exited before reading: once it is closed the log writer is
	// gone, so reading to EOF drains everything.
	done := isClosed(r.exited)
	if r.f == nil {
		if f, err := os.Open(r.path); err == nil {
			r.f = f
		} else if done {
			return 0, true, io.EOF
		}
	}
	if r.f != nil {
		n, err := r.f.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, true, err
		}
	}
	if done {
		return 0, true, io.EOF
	}
	return 0, false, nil
}

func (r *followReader) Close() error {
	r.stopCtx()
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
