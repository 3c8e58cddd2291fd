package kube

import "errors"

// ErrAlreadyRunning is returned by Start for an execution id this executor
// already follows.
var ErrAlreadyRunning = errors.New("execution already running")

// ErrNoCluster is returned by New when the API server does not answer.
var ErrNoCluster = errors.New("kubernetes API server unreachable")
