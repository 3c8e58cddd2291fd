// Package scheduler is Skiff's pure DAG logic: given a finalized plan, the
// pipeline parameters and what happened to the run's tasks so far, it
// decides what happens next (start a task with its resolved inputs, skip
// it, cancel it, stop it, fail it before it starts, end the run).
//
// A Run is incremental. New builds the successor lists once (O(tasks +
// edges)); Start computes the remaining-dependency counters; each Finished
// call looks only at that task's successors, so a 10,000-wide fan-out or a
// 10,000-long chain costs O(edges) in all. Skips cascade inside the
// scheduler at once (with an explicit stack, no recursion).
//
// The scheduler owns no state that must survive a crash: the engine keeps
// the durable truth in the store and rebuilds a Run after a restart with
// New, Restore (once per recorded task) and Start. See README.md for the
// decision flow.
//
// scheduler must not import anything but the standard library and
// engine/spec: no store, no raft, no executors, no I/O, no goroutines, no
// clock (TestImports keeps it so). Times, when retries and backoff arrive,
// will be passed in by the caller.
package scheduler
