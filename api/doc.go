// Package api is Skiff's HTTP API: the KFP v2beta1-shaped REST routes
// (experiments, runs, pipelines and versions), the Skiff extras under
// /apis/skiff/v1 (task logs, artifact download, a server-sent-events
// stream of run changes, namespace policies), bearer-token authentication
// with namespaces and roles, /metrics, /healthz and /readyz, plus the Go
// client the CLI's --server mode uses and the shapes of the CLI's JSON
// output (summary.go).
//
// It must not reach into the store's Raft internals: it talks to the
// engine (Submit, Cancel) and to store commands and queries. Routes use
// net/http's ServeMux patterns; each handler gets the authenticated
// principal and returns an error that becomes {code, message, details}.
package api
