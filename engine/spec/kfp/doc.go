// Package kfp reads pipelines compiled by the kfp SDK (KFP v2 IR: a
// PipelineSpec, optionally followed by a PlatformSpec) and runs them the
// way Kubeflow's launcher does.
//
// It owns three things: the IR types and their strict parser (Parse: an
// unknown or unsupported field is an error naming its path, or a warning
// with Options.Lenient); the compiler from IR to a finalized spec.Plan
// (Compile; Load detects the format and also reads Skiff YAML); and the
// executor protocol (Prepare: the ExecutorInput JSON, the placeholder
// grammar, IfPresent/Concat, and which output files and ExecutorOutput
// entries to collect). The compiler leaves what dispatch needs in each
// step's opaque Task.KFP, and the kubernetes platform's settings for the
// step's executor, as written, in Task.Kubernetes (kept for a Kubernetes
// executor; no executor here applies them).
//
// It must not touch the store, the scheduler or an executor: the engine
// calls Prepare from its dispatch and hands the result to an executor.
// docs/kfp-compatibility.md lists what is supported.
package kfp
