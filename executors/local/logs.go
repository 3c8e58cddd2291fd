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

	"github.com/skiffml/skiff/executors"
)

// Logs returns the execution's combined stdout and stderr from
// Root/output.log (Root/logs/output.log for executions of earlier
// versions). With follow, the reader keeps returning output until
// the execution has exited and the file is drained, or until ctx ends or the
// reader is closed. An id with neither a live execution nor a log file is
// executors.ErrUnknownExecution.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	x := e.lookup(id)
	path := filepath.Join(e.Root(id), logFileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		old := filepath.Join(e.Root(id), oldLogsDir, logFileName)
		if g, err2 := os.Open(old); err2 == nil {
			path, f, err = old, g, nil
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
