// Package store owns Skiff's replicated state: every change is a Command,
// proposed through a hashicorp/raft log (raft-boltdb), and applied by a
// deterministic FSM into a bbolt state database (state.db) together with the
// last applied raft index. A single node is a one-voter raft cluster, so the
// workstation and the HA service share one code path.
//
// What it owns:
//   - the command encoding (command.go) and the handler registry; the
//     stored JSON (codec.go) keeps enums as numeric codes, never display
//     names, and every entry is checked to decode before it is proposed;
//   - the bbolt schema (schema.go) and one file per entity (run.go, task.go);
//   - the FSM (fsm.go), snapshots (snapshot.go) and the raft wiring (raft.go,
//     store.go);
//   - read queries served from the local state.db;
//   - the checks and repairs of a data dir (integrity.go, check.go,
//     repair.go).
//
// What it must not touch: it never calls executors, the scheduler, the engine
// or the network beyond the raft transport it is given; the FSM never reads
// the clock, randomness, the environment or files other than state.db. The
// proposer puts times and IDs into the commands. Artifact bytes live in
// store/blob, which this package does not import.
//
// Layout of a data directory:
//
//	LOCK         the data-dir lock (flock), held while a store is open
//	raft.db      raft log and stable store (raft-boltdb/v2); its stable
//	             store holds the log id
//	state.db     FSM state (bbolt) with the position (index, term) of the
//	             last applied entry and the log id of the raft.db it
//	             belongs to
//	snapshots/   raft file snapshots: state.db, zstd-compressed
//	damaged/     snapshots Open could not restore, moved out of raft's sight
//
// Open checks the directory before raft sees it (integrity.go): both
// bbolt files are read whole (bbolt and raft panic on a damaged file, in
// goroutines nobody can recover), every log entry must read, the log must
// reach back to the newest usable snapshot, and state.db must be the state
// of this raft.db (same log id, its last applied entry in the log or a
// snapshot with the same term); otherwise Open fails with one line naming
// the file and saying how to recover (ErrDamaged, ErrStateMismatch).
// Check runs the same checks, and more, on a stopped data dir.
package store
