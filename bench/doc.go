// Package bench holds Skiff's benchmark workloads: named DAG shapes
// (chain-N, fanout-N, ...) built as plans and written as pipeline text,
// and the harness that drives the real engine (real store, real Raft log)
// over them, interleaved run by run with peers (go-task, go-workflows),
// and the recovery measurement after a kill -9 (reopen.go). `skiff bench`
// and the Go benchmarks use it. It must not reach into engine internals:
// it submits plans and reads results like any client.
package bench
