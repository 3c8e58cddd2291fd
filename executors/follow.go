package executors

import (
	"context"
	"io"
	"os"
	"sync"
	"time"
)

// followPollInterval is how often a following reader looks for more output.
const followPollInterval = 50 * time.Millisecond

// FollowFile returns a reader that tails the log file at path (f, when the
// caller already opened it, else opened once it appears) until exited is
// closed and the file is drained, ctx ends, or the reader is closed. Local
// and container executors write a step's output to such a file.
func FollowFile(ctx context.Context, path string, f *os.File, exited <-chan struct{}) io.ReadCloser {
	r := &followReader{path: path, f: f, exited: exited, closed: make(chan struct{})}
	r.stopCtx = context.AfterFunc(ctx, r.stop)
	return r
}

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
		t := time.NewTimer(followPollInterval)
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
