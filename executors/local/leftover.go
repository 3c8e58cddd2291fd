package local

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Leftovers: every process of an execution carries SKIFF_EXECUTION_ID=<id>
// in its environment (children inherit it), so processes an earlier engine
// left behind are found by reading /proc/<pid>/environ, with no file
// written per execution (a file costs a metadata write before the step
// may start). A process's initial environment cannot be changed from
// outside it, so a match is that execution's process, never a later one
// reusing the pid.

// KillLeftover kills what an execution this process did not start left
// running: every process whose environment names execution id, and the
// process group of each. Used after an engine crash. It returns
// ErrNoLeftover when no such process exists (nothing to kill), nil when it
// killed them.
func (e *Executor) KillLeftover(id string) error {
	if x := e.lookup(id); x != nil {
		return fmt.Errorf("local: kill leftover %q: %w (use Cancel)", id, ErrAlreadyRunning)
	}
	return e.killLeftover(id)
}

// killRounds bounds how often killLeftover scans /proc again after a kill:
// a process forked between a scan and the kill (a step's loop starting
// children in new sessions), or one in the middle of execve when /proc
// was read (its environment reads empty for that moment), is found by a
// later scan. Processes already killed but not yet gone match again
// harmlessly; zombies have no environment and never match.
const (
	killRounds    = 10
	killRoundWait = 5 * time.Millisecond
)

func (e *Executor) killLeftover(id string) error {
	killed := map[int]bool{}
	for round := 0; round < killRounds; round++ {
		pids, err := leftoverPIDs(id)
		if err != nil {
			return fmt.Errorf("local: kill leftover %q: %w", id, err)
		}
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("local: kill leftover %q: process %d: %w", id, pid, err)
			}
			killed[pid] = true
		}
		time.Sleep(killRoundWait)
	}
	if len(killed) == 0 {
		return fmt.Errorf("local: kill leftover %q: %w", id, ErrNoLeftover)
	}
	pids := make([]int, 0, len(killed))
	for pid := range killed {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	e.log.Info("local executor: killed leftover processes", "id", id, "pids", pids)
	return nil
}

// leftoverPIDs lists the processes whose environment holds
// SKIFF_EXECUTION_ID=id. Processes of other users (unreadable) are skipped.
func leftoverPIDs(id string) ([]int, error) {
	dir, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	names, err := dir.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	want := []byte(executionEnv + "=" + id)
	self := os.Getpid()
	var pids []int
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + n + "/environ")
		if err != nil {
			continue // gone, or not ours
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids, nil
}
