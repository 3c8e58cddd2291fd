// Package sim is a simulated executor for tests and benchmarks (skiff
// bench): it runs nothing and reports, for each execution, the outcome its
// task's Behavior describes (a duration, a failure, a seeded failure rate,
// output values).
//
// Sim artifacts have no bytes: an artifact output gets a synthetic
// ArtifactRef whose Digest is "sha256:" + hex(sha256("sim/<execution
// id>/<output name>")), Size 0 and the declared Type; nothing is written to
// a blob store, and the Exited event carries no Logs reference.
//
// An execution with Duration 0 is reported synchronously: Start calls
// report with Started and then Exited before it returns, with no goroutine
// and no timer, so a benchmark can drive 100,000 executions cheaply. The
// report callback must therefore not block and must not wait for the
// caller of Start. Longer executions finish on the Config's Clock (a timer,
// no goroutine of their own).
//
// sim must not import the engine, the store or the scheduler.
package sim
