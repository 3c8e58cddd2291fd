package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/skiffml/skiff/executors"
)

// Logs returns the execution's combined stdout and stderr from its log
// file (executors.LogPath; for executions of earlier versions, kept
// in their root, Root/output.log or Root/logs/output.log, read through an
// os.Root). With follow, the reader keeps returning output until the
// execution has exited and the file is drained, or until ctx ends or the
// reader is closed. An id with neither a live execution nor a log file is
// executors.ErrUnknownExecution.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	if strings.HasPrefix(id, ".") || strings.ContainsAny(id, `/\`+"\x00") {
		return nil, fmt.Errorf("local: logs %q: %w", id, executors.ErrUnknownExecution)
	}
	x := e.lookup(id)
	path := executors.LogPath(e.cfg.WorkDir, id)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) && x == nil {
		if g, err2 := openOldLog(e.Root(id)); err2 == nil {
			f, err = g, nil
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist) && x != nil:
		if !follow {
			return io.NopCloser(strings.NewReader("")), nil
		}
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid):
		return nil, fmt.Errorf("local: logs %q: %w", id, executors.ErrUnknownExecution)
	default:
		return nil, fmt.Errorf("local: logs %q: %w", id, err)
	}
	if !follow || x == nil {
		if f == nil {
			return io.NopCloser(strings.NewReader("")), nil
		}
		return f, nil
	}
	return executors.FollowFile(ctx, path, f, x.exited), nil
}

// openOldLog opens the log an execution of an earlier version kept in its
// root, through an os.Root: a link the step planted there is not followed
// out of it.
func openOldLog(root string) (*os.File, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.OpenFile(logFileName, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		f, err = r.OpenFile(filepath.Join(oldLogsDir, logFileName), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fs.ErrInvalid
	}
	return f, nil
}
