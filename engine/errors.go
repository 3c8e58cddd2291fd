package engine

import "errors"

var (
	// ErrUnknownExecutor is returned when a task names an executor the
	// engine does not have.
	ErrUnknownExecutor = errors.New("unknown executor")
	// ErrStopped is returned by calls made after the engine's loop ended.
	ErrStopped = errors.New("engine stopped")
	// ErrRunFinished is returned when cancelling a run that already ended.
	ErrRunFinished = errors.New("run already finished")
	// ErrExecutorTimeout is wrapped by the reason of a task whose executor
	// call (start, stop, adopt, cleanup) passed its Config deadline.
	ErrExecutorTimeout = errors.New("executor call timed out")
)
