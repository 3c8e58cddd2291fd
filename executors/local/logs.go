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
	"sync"
	"time"

	"github.com/skiffml/skiff/executors"
)

// logPollInterval is how often a following reader looks for more output.
const logPollInterval = 50 * time.Millisecond

// Logs returns the execution's combined stdout and stderr from
// Root/logs/output.log. With follow, the reader keeps returning output until
// the execution has exited and the file is drained, or until ctx ends or the
// reader is closed. An id with neither a live execution nor a log file is
// executors.ErrUnknownExecution.
func (e *Executor) Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error) {
	x := e.lookup(id)
	path := filepath.Join(e.Root(id), logsDir, logFileName)
	f, err := os.Open(path)
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
	fr := &followReader{path: path, f: f, exited: x.exited, closed: make(chan struct{})}
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
		select {
		case <-r.closed:
			return 0, io.EOF
		default:
		}
		// Sample exited before reading: if it was closed, the log writer is
		// gone, so reading to EOF now drains everything.
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
	// Sample exited before reading: if it was closed, the log writer is
	// gone, so reading to EOF now drains everything.
	done := isClosed(r.exited)
	if r.f == nil {
		f, err := os.Open(r.path)
		if err == nil {
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
