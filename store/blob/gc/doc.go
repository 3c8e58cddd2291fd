// Package gc removes what no retained run needs any more: finished runs
// older than their namespace's retention (through DeleteRun commands, so
// every node agrees), then every blob of the blob store that no run, task
// attempt or cache entry refers to, whichever backend keeps the blobs.
//
// It never deletes a blob that the state still refers to: unfinished runs'
// outputs and logs are referred to like any run's, and every cache entry's
// outputs count (a task's max_cache_staleness may allow reusing an entry
// forever). A blob written less than Config.Grace ago is kept even when
// nothing refers to it yet: it may be the output of an execution that has
// not reported, or an upload in flight. The blobs are listed before the
// references are read, and each one is looked at again just before it is
// deleted, so a blob written or re-stored during a collection survives it.
//
// The package reads the store and proposes commands; it does not schedule
// itself (skiff server's --gc-interval does) and owns no state.
package gc
