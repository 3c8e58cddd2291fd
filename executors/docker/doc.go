// Package docker is the executor that runs each execution as one container
// in the local Docker engine (github.com/docker/docker client, API version
// negotiated with the daemon).
//
// An execution's host work dir, WorkDir/<execution id>/ (laid out by
// executors.PrepareRoot; its log is WorkDir/.logs/<id>.log, outside it),
// is bind-mounted at
// ContainerRoot (/skiff) inside the container, so Root returns that
// container path for every id and the engine's placeholders
// ({{inputs.X}} -> /skiff/inputs/X, {{outputs.X}} -> /skiff/outputs/X)
// resolve inside the container. Inputs are materialised on the host before
// the container starts and outputs collected from the host side after a
// zero exit, with executors.CollectOutputs.
//
// The container's name is deterministic ("skiff-<execution id>") and it
// carries labels (LabelExecution, LabelRun, LabelTask, LabelAttempt, ...),
// so an engine that restarts can Adopt it (executors.Adopter): a running
// container is re-attached, a finished one collected; it is never started
// twice. The container is removed once its results are reported, unless
// Config.KeepContainers.
//
// The package owns containers and their work dirs only. It must not import
// the engine, the store's Raft side or the scheduler: it reports through
// executors.Event values.
package docker
