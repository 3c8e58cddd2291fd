// Package engine is the orchestrator: it owns the run lifecycle and the
// reconcile loop that turns scheduler decisions into store commands and
// executor calls, and executor events back into store commands.
//
// One goroutine (Engine.Run) owns every active run's scheduler state. It
// drains whatever arrived (new runs, executor events, cancellations),
// asks the scheduler, and proposes the resulting transitions for all runs
// as ONE store entry (the ends of runs in a second one); only after that
// entry is committed does it start or stop executions (the outbox rule:
// nothing external happens for a change the log does not hold).
//
// A change the store rejects has no effect and is not reported; its run
// is rebuilt from the store and decided again before anything else is
// decided for it (reject, refresh, re-plan). The loop only decides and
// commits: executor calls (start, stop, adopt, cleanup) run off it, each
// within its Config deadline, and report back as messages (calls.go).
//
// After a crash, Resume rebuilds each unfinished run from the store:
// finished tasks stay finished, and tasks that were running are adopted
// or get a new attempt, recorded as such.
//
// engine must not hold state that has to survive a crash: the store does.
package engine
