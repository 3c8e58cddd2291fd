// Package launch is the in-pod launcher (`skiff launch`) and the
// per-execution tokens it talks to the Skiff API with.
//
// The kube executor runs a step that moves artifacts as: an init
// container copying the skiff binary into a shared emptyDir, then the
// step's own image running `skiff launch`, which fetches the inputs
// through the API, runs the step's command with the execution root laid
// out as the local executor lays it out (executors.MaterializeInputs,
// executors.CollectOutputs), uploads the outputs and the log, reports
// them and exits with the step's code.
//
// It owns the launcher's spec (Spec, carried in the pod's environment),
// the token format (Keys) and the launcher's HTTP client. It must not
// touch the store or the engine: the API checks a token's scope against
// the store, the executor reads the signed report.
package launch
