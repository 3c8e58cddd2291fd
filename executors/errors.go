package executors

import "errors"

// ErrBadSpec is wrapped by Start when a spec is rejected before anything
// starts.
var ErrBadSpec = errors.New("bad execution spec")

// ErrUnknownExecution is returned by Logs for an execution the executor
// never ran.
var ErrUnknownExecution = errors.New("unknown execution")
