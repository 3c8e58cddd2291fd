// Package kube is the Kubernetes executor: one Pod per execution, created
// through k8s.io/client-go in a configured namespace, watched through a
// pod informer filtered by Skiff's labels, cancelled by deleting the pod
// (with a grace period), adopted after a restart by its deterministic name.
//
// It owns the translation of an execution spec (image, command, env,
// resources, KFP's kubernetes platform settings: see Settings) into a
// PodSpec (BuildPod), and the reading of pod status back into executor
// events (started, waiting with a reason, exited with a code and reason).
//
// It must not import the engine, the store or the scheduler: it reports
// only through executors.Event.
package kube
