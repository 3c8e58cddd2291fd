// Package worker runs executions on the nodes of a cluster, as the leader
// assigns them through the log.
//
// It owns two sides of one protocol, both speaking only through store
// commands and the store's feed of applied changes:
//
//   - Worker (worker.go), on every node: registers the node (a new epoch
//     at each start), heartbeats once per node per Raft.WorkerHeartbeat,
//     starts with its local executors what is assigned to it at its
//     epoch, and reports started/exited with the fencing token (node id,
//     epoch, execution id). A worker whose lease the cluster ended (down,
//     or a newer epoch) kills what it runs and registers again.
//   - Dispatcher (dispatch.go), on the leader: one executors.Executor per
//     executor kind for the engine. Start commits an assignment to a live
//     node that fits; events come back from the feed; Cancel commits a
//     cancel the worker acts on; Running and Adopt answer from the
//     assignments, so a new leader keeps what live workers run. It also
//     declares down the nodes whose heartbeat lapsed (times chosen here,
//     by the proposer, never in the FSM).
//
// What it must not touch: the engine's scheduling decisions, the FSM's
// rules (store/node.go), and the executors' internals (it calls their
// Executor methods only).
package worker
