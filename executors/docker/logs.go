package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

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
	return executors.FollowFile(ctx, x.logPath(), f, x.exited), nil
}
