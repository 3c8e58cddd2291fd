package local

import "errors"

// ErrAlreadyRunning is returned by Start for an execution id this executor
// is still waiting on or running.
var ErrAlreadyRunning = errors.New("execution already running")

// ErrNoLeftover is returned by KillLeftover when no process of the
// execution is left (nothing was started, or all of it exited).
var ErrNoLeftover = errors.New("no leftover process")
