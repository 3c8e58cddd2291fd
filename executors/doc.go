// Package executors holds the Executor contract: how the engine starts one
// execution (one attempt of one task) from a fully resolved Spec, hears its
// events, cancels it, reads its logs and lists what is still running.
//
// Implementations live in one subpackage per backend (local, sim, and later
// docker and kube) and each asserts `var _ executors.Executor = (*X)(nil)`.
// They must not import the engine, the store's Raft side or the scheduler:
// they report back only through events, which the engine turns into store
// commands.
//
// The step-side layout of an execution's work dir is fixed here (see
// InputPath, OutputPath) so that the engine can resolve placeholders without
// knowing which executor runs the step. The step owns its root and may plant
// symbolic links in it: every host-side access under a root goes through an
// os.Root (MaterializeInputs, CollectOutputs), and logs live outside every
// root (LogPath).
package executors
