// Package chaostest is Skiff's chaos suite: a cluster of the project's
// image (three or five containers, through cluster/containertest), a
// workload that submits runs for a fixed time through random nodes, and a
// nemesis that injects faults on a seeded schedule (leader and follower
// kills, partitions, docker pause past the worker lease, restarts, a full
// disk). After healing it checks the cluster's invariants and the client
// history's linearizability (porcupine).
//
// The schedule and the history model are plain code, tested by make test;
// the suite itself runs only when SKIFF_CLUSTER_IMAGE names the image
// (make test-chaos, make chaos). It owns nothing but test scaffolding: no
// production code imports it.
package chaostest
