package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// dirLock is the data directory's lock: an exclusive flock on Dir/LOCK,
// held while the store is open. It (not state.db's own lock) decides who
// owns the directory, so that state.db can be replaced while it is held.
type dirLock struct{ f *os.File }

// toolLockWait is how long check and repair wait for the lock. Not 0: a
// store closed a moment ago may still look held, because a fork in this
// process (exec.Cmd) copies every descriptor, the LOCK file's too, until
// the child's exec closes it.
const toolLockWait = 500 * time.Millisecond

func lockDir(dir string, timeout time.Duration) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return &dirLock{f: f}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock: %w", err)
		}
		if !time.Now().Before(deadline) {
			f.Close()
			return nil, ErrLocked
		}
		time.Sleep(min(50*time.Millisecond, time.Until(deadline)+time.Millisecond))
	}
}

func (l *dirLock) unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing releases the flock
	l.f = nil
	return err
}
