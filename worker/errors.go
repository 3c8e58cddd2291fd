package worker

import "errors"

var (
	// ErrInvalidConfig: a Config field is missing or out of range; the
	// error names it.
	ErrInvalidConfig = errors.New("invalid worker config")
	// ErrNoWorker: no node up offers the executor an execution needs.
	ErrNoWorker = errors.New("no worker offers the executor")
	// ErrRemoteLogs: the logs of an execution run by another node are not
	// served by the leader (they are in that node's blob store).
	ErrRemoteLogs = errors.New("logs of a remote execution")
)
