package local

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/skiffml/skiff/executors"
)

// logDrainWait bounds the wait for a step's output pipe to close once its
// process group is gone: only a process that left the group (setsid)
// still holds it then, and the log is taken without what it writes later.
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

	f    *os.File // the log, once made (at once when eager, else by copy; read after done)
	done chan struct{}
}

// newLogSink returns a sink for path and the pipe's write end to give the
// process; eager makes the log at once (kept work dirs then always have
// one).
func newLogSink(path, id string, log *slog.Logger, eager bool) (*logSink, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	s := &logSink{path: path, r: r, log: log, id: id, done: make(chan struct{})}
	if eager {
		if s.f, err = executors.CreateLog(path); err != nil {
			r.Close()
			w.Close()
			return nil, nil, err
		}
	}
	return s, w, nil
}

// start copies until every writer has closed the pipe (or finish cuts it).
func (s *logSink) start() { go s.copy() }

func (s *logSink) copy() {
	defer close(s.done)
	defer s.r.Close()
	buf := make([]byte, 64<<10)
	failed := false
	for {
		n, err := s.r.Read(buf)
		if n > 0 && !failed {
			if s.f == nil {
				f, cerr := executors.CreateLog(s.path)
				if cerr != nil {
					s.log.Warn("local executor: creating the log; the step's output is dropped", "id", s.id, "err", cerr)
					failed = true
				} else {
					s.f = f
				}
			}
			if s.f != nil {
				if _, werr := s.f.Write(buf[:n]); werr != nil {
					// Keep reading, so the step never blocks on a full pipe.
					s.log.Warn("local executor: writing the log; the rest of the step's output is dropped", "id", s.id, "err", werr)
					failed = true
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) {
				s.log.Warn("local executor: reading the step's output", "id", s.id, "err", err)
			}
			break
		}
	}
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			s.log.Warn("local executor: closing the log", "id", s.id, "err", err)
		}
	}
}

// finish waits for the copy to end, once the step's process group is gone:
// up to logDrainWait for writers that outlived it, then it stops reading.
// It reports whether the log file exists.
func (s *logSink) finish() bool {
	t := time.NewTimer(logDrainWait)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
		s.log.Warn("local executor: a process outside the step's group still holds its output; the log is taken without it", "id", s.id)
		_ = s.r.SetReadDeadline(time.Now())
		<-s.done
	}
	return s.f != nil
}
