// Package local is the executor that runs each execution as one OS process
// (in its own process group) on this node.
//
// An execution lives in WorkDir/<execution id>/ (its root, laid out as
// executors.PrepareRootFor makes it); its log is WorkDir/.logs/<id>.log
// (executors.LogPath), outside the root, made at the step's first byte of
// output (sink.go). Both are removed once the
// outputs and log are stored, unless Config.KeepWorkDirs; a root left
// holding only an empty tmp/ is kept in WorkDir/.free/ for the next
// execution instead (pool.go). The
// executor hands out the node's CPU, memory and GPU slots: a step that asks
// for more than is free waits in a queue (first come, first served; a
// waiting step reserves what it asked for, so later small steps cannot
// starve it). Inputs are materialised from the blob store before start and
// outputs collected with executors.CollectOutputs after a zero exit.
//
// The package owns processes and work dirs only. It must not import the
// engine, the store's Raft side or the scheduler: it reports through
// executors.Event values.
package local
