package executors

import "errors"

// ErrBadSpec is wrapped by Start when a spec is rejected before anything
// starts.
var ErrBadSpec = errors.New("bad execution spec")

// ErrUnknownExecution is returned by Logs for an execution the executor
// never ran.
var ErrUnknownExecution = errors.New("unknown execution")

// ErrOutputTooLarge is wrapped in the error of an output artifact larger
// than the executor's limit (CollectOutputs' maxBytes).
var ErrOutputTooLarge = errors.New("output too large")
