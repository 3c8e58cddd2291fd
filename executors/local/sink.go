package local

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/skiffml/skiff/executors"
)

// logDrainWait bounds the wait for a step's output to be copied once its
// process group is gone; then finish reads what is left itself (see
// logSink.finish).
const logDrainWait = time.Second

// logSink copies a step's stdout and stderr, read from one pipe, into its
// log file (executors.LogPath), made when the first byte comes: a step that
// prints nothing costs no file, where a file made and removed per step
// cost two metadata writes (with the roots' renames, most of what was left
// of a /bin/true step's time outside its process). Both streams share the
// pipe, so their order is kept as the step wrote them.
type logSink struct {
	path string
	r    *os.File
	log  *slog.Logger
	id   string

	f      *os.File // the log, once made (at once when eager, else by copy; read after done)
	failed bool     // making or writing the log failed: the rest is dropped
	done   chan struct{}

	drainWait  time.Duration // logDrainWait; shorter in tests
	beforeRead func()        // tests: called before the copy's first read
}

// newLogSink returns a sink for path and the pipe's write end to give the
// process; eager makes the log at once (kept work dirs then always have
// one).
func newLogSink(path, id string, log *slog.Logger, eager bool) (*logSink, *os.File, error) {
	r, w, err := outputPipe()
	if err != nil {
		return nil, nil, err
	}
	s := &logSink{path: path, r: r, log: log, id: id, done: make(chan struct{}), drainWait: logDrainWait}
	if eager {
		if s.f, err = executors.CreateLog(path); err != nil {
			r.Close()
			w.Close()
			return nil, nil, err
		}
	}
	return s, w, nil
}

// outputPipe makes the pipe a step writes its output into. The read end
// is non-blocking, read through the runtime's poller (so a deadline can
// cut it); the write end, the step's stdout and stderr, stays blocking and
// out of the poller, as a process expects its output to be. os.Pipe would
// put both in the poller, and giving the write end to the child then puts
// it back to blocking: four system calls more a step.
func outputPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	if err := syscall.SetNonblock(p[0], true); err != nil {
		syscall.Close(p[0])
		syscall.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// copyBufs holds the sinks' read buffers: a fan-out of a thousand steps
// would otherwise allocate 64 MiB of them.
var copyBufs = sync.Pool{New: func() any { return new([64 << 10]byte) }}

// start copies until every writer has closed the pipe (or finish cuts it).
func (s *logSink) start() { go s.copy() }

// copy reads the pipe into the log until EOF, or until finish's deadline
// stops it; finish then reads what is left and closes the files.
func (s *logSink) copy() {
	defer close(s.done)
	bp := copyBufs.Get().(*[64 << 10]byte)
	defer copyBufs.Put(bp)
	if s.beforeRead != nil {
		s.beforeRead()
	}
	for {
		n, err := s.r.Read(bp[:])
		s.write(bp[:n])
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Warn("local executor: reading the step's output", "id", s.id, "err", err)
			}
			return
		}
	}
}

// write appends p to the log, making the log at its first byte. After a
// failure it drops the rest (the pipe is still read, so the step never
// blocks on a full pipe).
func (s *logSink) write(p []byte) {
	if len(p) == 0 || s.failed {
		return
	}
	if s.f == nil {
		f, err := executors.CreateLog(s.path)
		if err != nil {
			s.log.Warn("local executor: creating the log; the step's output is dropped", "id", s.id, "err", err)
			s.failed = true
			return
		}
		s.f = f
	}
	if _, err := s.f.Write(p); err != nil {
		s.log.Warn("local executor: writing the log; the rest of the step's output is dropped", "id", s.id, "err", err)
		s.failed = true
	}
}

// finish waits for the copy to end, once the step's process group is gone,
// and closes the pipe and the log. It reports whether the log file exists.
//
// After logDrainWait it stops the copy and reads what the pipe holds
// itself, without waiting: on a loaded machine the copy's goroutine can
// wait that long to run, with the step's last output (and the pipe's end)
// still unread, which a cut at the deadline alone would drop. Only when
// that read finds the pipe still open, with no more to read, does a
// process outside the step's group hold it (one that called setsid): the
// log is then taken without what it writes later.
func (s *logSink) finish() bool {
	t := time.NewTimer(s.drainWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		_ = s.r.SetReadDeadline(time.Now())
		<-s.done
		if !s.drain() {
			s.log.Warn("local executor: a process outside the step's group still holds its output; the log is taken without it", "id", s.id)
		}
	}
	s.r.Close()
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			s.log.Warn("local executor: closing the log", "id", s.id, "err", err)
		}
	}
	return s.f != nil
}

// maxDrain bounds what finish reads after the deadline: a writer that
// keeps writing does not keep the step from ending.
const maxDrain = 1 << 20

// drain reads what the pipe holds now, without blocking (the read end is
// non-blocking, and read directly: the deadline that stopped the copy
// fails any read through the poller). It reports whether it reached the
// end of the pipe, i.e. no writer is left.
func (s *logSink) drain() bool {
	rc, err := s.r.SyscallConn()
	if err != nil {
		return false
	}
	bp := copyBufs.Get().(*[64 << 10]byte)
	defer copyBufs.Put(bp)
	ended := false
	cerr := rc.Control(func(fd uintptr) {
		for total := 0; total < maxDrain; {
			n, err := syscall.Read(int(fd), bp[:])
			switch {
			case errors.Is(err, syscall.EINTR):
				continue
			case err != nil: // EAGAIN: a writer is left, with nothing more now
				return
			case n == 0:
				ended = true
				return
			}
			s.write(bp[:n])
			total += n
		}
	})
	return cerr == nil && ended
}
