// Package engine is the orchestrator: it owns the run lifecycle and the
// reconcile loop that turns scheduler decisions into store commands and
// executor calls, and executor events back into store commands.
//
// One goroutine (Engine.Run) owns every active run's scheduler state. It
// drains whatever arrived (new runs, executor events, cancellations),
// asks the scheduler, and proposes the resulting transitions for all runs
// as ONE store entry; only after that entry is committed does it start or
// stop executions (the outbox rule: nothing external happens for a change
// the log does not hold). After a crash, Resume rebuilds each unfinished
// run from the store: finished tasks stay finished, and tasks that were
// running get a new attempt, recorded as such.
//
// engine must not hold state that has to survive a crash: the store does.
package engine
