package store

import "errors"

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is) and name the operation and the ID involved.
var (
	// ErrNotFound: no run or task with that ID (or prefix).
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: an ID prefix matches more than one run.
	ErrAmbiguous = errors.New("ambiguous id prefix")
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("data directory locked by another process")
	// ErrUnknownCommand: a command type (or version) this binary does not
	// know, either at Apply or found in the raft log. A node that finds one
	// in its log stops applying (it must be upgraded) rather than diverge.
	ErrUnknownCommand = errors.New("unknown command type")
	// ErrNotLeader: this node is not the raft leader and cannot propose.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrClosed: the store has been closed.
	ErrClosed = errors.New("store closed")
	// ErrFSMHalted: the FSM hit an unrecoverable error (unknown command in
	// the log, failed bbolt commit) and no longer applies entries.
	ErrFSMHalted = errors.New("state machine halted")
	// ErrDamaged: a file of the data directory (raft.db, state.db, a
	// snapshot) cannot be read; the error names it.
	ErrDamaged = errors.New("damaged")
	// ErrStateMismatch: state.db is not the state of this raft log (its
	// last applied entry is not in the log): raft.db was deleted, emptied
	// or replaced. Open refuses it; the error says how to recover.
	ErrStateMismatch = errors.New("state.db does not match the raft log")
	// ErrInvalidConfig: Config.Validate failed.
	ErrInvalidConfig = errors.New("invalid store config")
)
