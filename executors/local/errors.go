package local

import "errors"

// ErrAlreadyRunning is returned by Start for an execution id this executor
// is still waiting on or running.
var ErrAlreadyRunning = errors.New("execution already running")

// ErrNoPIDFile is returned by KillLeftover when the execution's root has no
// pid file (nothing was started there, or it already exited cleanly).
var ErrNoPIDFile = errors.New("no pid file")
