// Package api is Skiff's HTTP API: the KFP v2beta1-shaped REST routes, the
// Skiff extras (logs, artifacts, event streams), authentication, metrics and
// the UI assets, plus the Go client the CLI uses.
//
// For now it holds only the shapes shared by the CLI's JSON output; the
// server arrives with the server-mode issue. It must not reach into the
// store's Raft internals: it talks to the engine and to store queries.
package api
