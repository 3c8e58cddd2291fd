// Package agentclient is skiff agent's link to a cluster: an HTTP
// implementation of the worker's seams (worker.State, worker.Proposer,
// worker.ExecutionReplicator) and of the agent's blob store Fetcher, over
// the API's agent routes (api/agent.go), with a worker token.
//
// The State is a copy of the agent node's record and live assignments,
// kept current by a long poll (Watch) that publishes what changed to a
// store.Feed, so the worker reads it as a server's worker reads its
// store. Reads ask for at least the highest index seen (min_index), so a
// server that lags never shows the agent an older state. A call goes to
// the server in use and on to the next of Config.Servers when that one
// does not answer; a write reaching a follower is forwarded by it to the
// leader.
//
// What it must not touch: the server's checks (the agent is not trusted:
// every check is made by the API), the worker's logic, the executors.
package agentclient
