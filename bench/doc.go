// Package bench holds Skiff's benchmark workloads: named DAG shapes
// (chain-N, fanout-N, ...) built as plans, and the harness that drives the
// real engine (real store, real Raft log) over them. `skiff bench` and the
// Go benchmarks use it. It must not reach into engine internals: it submits
// plans and reads results like any client.
package bench
