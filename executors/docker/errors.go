package docker

import "errors"

// ErrAlreadyRunning is returned by Start for an execution id this executor
// is still running.
var ErrAlreadyRunning = errors.New("execution already running")

// ErrNoEngine wraps the error of New when the Docker engine does not answer.
var ErrNoEngine = errors.New("docker engine not reachable")

// ErrImageMissing is wrapped in the failure reason when an image is not in
// the engine and cannot be pulled (or the pull policy forbids pulling).
var ErrImageMissing = errors.New("image not available")

// ErrNoGPURuntime is wrapped in the failure reason when a step asks for
// GPUs and the engine has no NVIDIA runtime to hand them out.
var ErrNoGPURuntime = errors.New("docker engine has no NVIDIA GPU runtime")
