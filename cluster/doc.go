// Package cluster joins Skiff servers into one raft cluster. It owns the
// cluster port: one TCP listener (--raft ADDR) that carries both raft's
// traffic (hashicorp/raft's network transport) and Skiff's small node RPC
// (who are you, add me, remove that node), told apart by the first byte of
// each connection, as Consul does. On top of it, Node forms the cluster
// (--bootstrap-expect, --join), answers membership questions and tells the
// API where the leader's API is, so that a follower can forward writes.
//
// Blobs (blobs.go, blobwire.go) is the replicated blob store over the same
// port (a third connection kind): a worker's outputs are pushed to a
// majority of voters before it reports success, a server fetches a blob it
// lacks from a holder, and a background repair fetches what a server
// should hold. Which servers hold a blob is recorded through the store
// (store.RecordHolders); the bytes are verified by digest on receipt.
//
// What it must not touch: the state machine (it goes through store's
// membership methods and worker commands), the engine, executors and the
// HTTP API.
//
// With a TLSConfig (ListenTLS; skiff server --cluster-tls-cert/-key/-ca)
// every connection to and from the cluster port is mutual TLS 1.3: a peer
// without a certificate the cluster's CA signed is refused in the
// handshake, before a byte of raft or RPC is read. Without it the port is
// neither authenticated nor encrypted and must only be reachable from the
// other servers.
package cluster
