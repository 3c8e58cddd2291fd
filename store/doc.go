// Package store owns Skiff's replicated state: every change is a Command,
// proposed through a hashicorp/raft log (raft-boltdb), and applied by a
// deterministic FSM into a bbolt state database (state.db) together with the
// last applied raft index. A single node is a one-voter raft cluster, so the
// workstation and the HA service share one code path.
//
// What it owns:
//   - the command encoding (command.go) and the handler registry;
//   - the bbolt schema (schema.go) and one file per entity (run.go, task.go);
//   - the FSM (fsm.go), snapshots (snapshot.go) and the raft wiring (raft.go,
//     store.go);
//   - read queries served from the local state.db.
//
// What it must not touch: it never calls executors, the scheduler, the engine
// or the network beyond the raft transport it is given; the FSM never reads
// the clock, randomness, the environment or files other than state.db. The
// proposer puts times and IDs into the commands. Artifact bytes live in
// store/blob, which this package does not import.
//
// Layout of a data directory:
//
//	raft.db      raft log and stable store (raft-boltdb/v2)
//	state.db     FSM state (bbolt), holds the data-dir lock
//	snapshots/   raft file snapshots: state.db, zstd-compressed
package store
