// Package cluster joins Skiff servers into one raft cluster. It owns the
// cluster port: one TCP listener (--raft ADDR) that carries both raft's
// traffic (hashicorp/raft's network transport) and Skiff's small node RPC
// (who are you, add me, remove that node), told apart by the first byte of
// each connection, as Consul does. On top of it, Node forms the cluster
// (--bootstrap-expect, --join), answers membership questions and tells the
// API where the leader's API is, so that a follower can forward writes.
//
// What it must not touch: the state machine (it goes through store's
// membership methods), the engine, executors and the HTTP API.
//
// The cluster port is not authenticated or encrypted yet (node-to-node
// mutual TLS is a later stage): it must only be reachable from the other
// servers.
package cluster
