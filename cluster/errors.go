package cluster

import "errors"

// Sentinel errors; errors of this package wrap them.
var (
	// ErrNoLeader: no leader is known (an election is under way, or this
	// node is cut off from the majority).
	ErrNoLeader = errors.New("no cluster leader")
	// ErrUnknownNode: no member has that id.
	ErrUnknownNode = errors.New("no such cluster member")
	// ErrInvalidConfig: Config.Validate failed.
	ErrInvalidConfig = errors.New("invalid cluster config")
	// ErrRPC: a node answered a node RPC with an error.
	ErrRPC = errors.New("cluster rpc")
)
