package executors

import (
	"context"
	"encoding/json"
	"io"
	"path"
	"strconv"
	"time"

	"github.com/skiffml/skiff/engine/spec"
)

// Executor runs executions. All methods are safe for concurrent use.
type Executor interface {
	// Name is the executor's kind as pipelines name it ("local", "sim", ...).
	Name() string
	// Root is the execution's work dir as the step sees it; the engine
	// resolves path placeholders under it (InputPath, OutputPath).
	Root(id string) string
	// Start validates spec and begins the execution. A bad spec is rejected
	// with an error before anything starts, and report is never called.
	// Otherwise Start returns nil at once (the execution may first wait for
	// node resources) and report is called with Started, then exactly once
	// with Exited. report must not block for long. ctx bounds the call
	// (the engine gives it a deadline), not the execution.
	Start(ctx context.Context, s *Spec, report func(Event)) error
	// Cancel stops the execution (SIGTERM or equivalent, a grace period,
	// then a kill). Its Exited event then carries TaskCanceled. Cancelling
	// an unknown or finished execution is not an error.
	Cancel(ctx context.Context, id string) error
	// Logs returns the execution's combined stdout and stderr. With follow,
	// the reader keeps returning output until the execution exits.
	Logs(ctx context.Context, id string, follow bool) (io.ReadCloser, error)
	// Running lists the executions this executor still runs.
	Running(ctx context.Context) ([]string, error)
}

// Spec is a fully resolved execution: every placeholder in Command, Args
// and Env has been replaced.
type Spec struct {
	ID        string // ExecutionID(RunID, TaskIndex, Attempt)
	RunID     string
	Task      string
	TaskIndex int
	Attempt   int // 1 for the first attempt
	// Namespace is the Skiff namespace of the run ("" = the default):
	// the kube executor maps it to a Kubernetes namespace (its policy's
	// kube_namespace).
	Namespace string `json:",omitempty"`

	Image      string        `json:",omitempty"`
	Command    []string      `json:",omitempty"`
	Args       []string      `json:",omitempty"`
	Env        []spec.EnvVar `json:",omitempty"`
	WorkingDir string        `json:",omitempty"` // "" = the execution's root

	Inputs  []ArtifactInput `json:",omitempty"` // artifacts to materialise before start
	Outputs []OutputSpec    `json:",omitempty"` // what to collect after a zero exit

	Resources spec.Resources `json:",omitzero"`
	// NodeSelector: the worker must carry these labels (the dispatcher
	// places by it; executors ignore it).
	NodeSelector map[string]string `json:",omitempty"`
	Timeout      time.Duration     `json:",omitempty"` // 0 = none

	// Kubernetes is the step's KFP kubernetes platform settings
	// (spec.Task.Kubernetes), applied by the kube executor only.
	Kubernetes json.RawMessage `json:",omitempty"`

	// PipelineFiles, when set, is the workspace root (store.WorkspaceRoot)
	// that {{pipeline.dir}} was resolved to: the run's pipeline files are
	// kept in the replicated store, and the worker that runs the step
	// unpacks them into its data dir and rebases the spec onto them.
	PipelineFiles string `json:",omitempty"`
}

// ArtifactInput is an input artifact to materialise at InputPath(root, Name).
// An artifact list (a loop's fan-in) is a directory Name holding one entry
// per artifact, named by its position: Name/0, Name/1, ... (each its own
// ArtifactInput); EmptyDir marks the list's directory itself, created
// empty, so that an empty list is an empty directory.
type ArtifactInput struct {
	Name     string
	Ref      spec.ArtifactRef
	EmptyDir bool
}

// OutputSpec is an output to collect from OutputPath(root, Name): for a
// parameter, the file's content parsed by Type; for an artifact, the file
// or directory stored in the blob store.
type OutputSpec struct {
	Name string
	Type spec.Type
	// ExecutorOutput, when set, is the path (relative to the root) of a
	// KFP ExecutorOutput JSON file the step may write; Key is the output's
	// name there. A parameter value the file holds takes precedence over
	// the output's own file; an artifact's metadata there is recorded on
	// its ArtifactRef, and an artifact the step described only by its
	// metadata (no file) is stored as that metadata's JSON.
	ExecutorOutput string
	Key            string
	// KFPText: the parameter's file is read as KFP's launcher reads it
	// (ParseKFPParam), not with ParseParam.
	KFPText bool
	// StepRoot is the execution's root as the step sees it (a KFP
	// Runtime.Root). An artifact whose ExecutorOutput entry gives another
	// uri or custom_path under it (dsl.get_uri, Artifact.set_path) is read
	// from there, through the root; one outside it fails the output.
	StepRoot string
}

// EventKind says what happened to an execution.
type EventKind uint8

const (
	EventStarted EventKind = iota + 1
	EventExited
	// EventWaiting: the execution is not running yet and Reason says why
	// ("0/3 nodes are available: 3 Insufficient nvidia.com/gpu",
	// "ImagePullBackOff: image x:1"). Optional: an executor may report it
	// any number of times before Started (or Exited); a consumer may
	// ignore it.
	EventWaiting
)

// Event is reported by an executor about one execution.
type Event struct {
	ID   string
	Kind EventKind
	Time time.Time

	// Exited (and Waiting: Reason only):
	State    spec.TaskState        // TaskSucceeded, TaskFailed or TaskCanceled
	ExitCode int                   // -1 when there was no exit code
	Reason   string                // why it failed: "exit code 3", "timed out after 10s", "OOMKilled", ...
	Outputs  map[string]spec.Value // collected outputs, on success
	Logs     *spec.ArtifactRef     // the captured stdout+stderr, stored in the blob store
	// Lost (with TaskFailed): the execution was lost with the node that
	// ran it, not failed by itself; the engine gives the task a new
	// attempt, as when it finds an execution lost after a restart.
	Lost bool
}

// ExecutionID is the deterministic id of one attempt of one task.
func ExecutionID(runID string, taskIndex, attempt int) string {
	return runID + "-" + strconv.Itoa(taskIndex) + "-" + strconv.Itoa(attempt)
}

// Layout of an execution's root, as the step sees it.
const (
	InputsDir  = "inputs"
	OutputsDir = "outputs"
	TmpDir     = "tmp"
)

// InputPath is where input artifact name is materialised under root.
func InputPath(root, name string) string { return path.Join(root, InputsDir, name) }

// OutputPath is where the step writes output name under root.
func OutputPath(root, name string) string { return path.Join(root, OutputsDir, name) }

// Adopter is implemented by executors whose executions outlive the engine
// process that started them (containers, pods). After a restart the engine
// offers each execution the store still records as running: Adopt
// re-attaches to it and reports its end (collecting its outputs) exactly
// once through report, returning true; it returns false when the executor
// knows nothing of s.ID, and the engine then starts a new attempt.
type Adopter interface {
	Adopt(ctx context.Context, s *Spec, report func(Event)) (bool, error)
}
