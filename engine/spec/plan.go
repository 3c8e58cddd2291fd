package spec

import "encoding/json"

// Plan is a validated pipeline, independent of the format it was written
// in. A Plan is JSON-serialisable: it is stored with each run, so a run can
// be resumed by any later binary that reads the same plan version.
//
// Plans are built by a compiler (ParseSkiff) and must pass Finalize before
// use; Finalize fills the computed fields (Task.Deps, Ref.TaskIndex).
// A finalized plan is immutable: clone before changing.
type Plan struct {
	Version     int          `json:"version"` // PlanVersion when written
	Name        string       `json:"name"`
	Description string       `json:"description,omitempty"`
	Executor    string       `json:"executor,omitempty"` // default executor for tasks; "" = the engine's default
	Params      []Param      `json:"params,omitempty"`
	Tasks       []Task       `json:"tasks"`
	Outputs     []PlanOutput `json:"outputs,omitempty"`
}

// ProtocolKFP is Task.Protocol for steps compiled from KFP IR.
const ProtocolKFP = "kfp"

// PlanVersion is the version of the Plan JSON this binary writes.
const PlanVersion = 1

// Param is a typed pipeline parameter. A nil Default makes it required.
type Param struct {
	Name        string          `json:"name"`
	Type        Type            `json:"type"`
	Default     json.RawMessage `json:"default,omitempty"`
	Description string          `json:"description,omitempty"`
}

// Task is one step placed in the DAG.
type Task struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Executor    string    `json:"executor,omitempty"` // "" = the plan's default
	Image       string    `json:"image,omitempty"`
	Command     []string  `json:"command,omitempty"` // may hold placeholders
	Args        []string  `json:"args,omitempty"`    // may hold placeholders
	Env         []EnvVar  `json:"env,omitempty"`     // sorted by name; values may hold placeholders
	WorkingDir  string    `json:"workingDir,omitempty"`
	Inputs      []Input   `json:"inputs,omitempty"`  // sorted by name
	Outputs     []Output  `json:"outputs,omitempty"` // sorted by name
	After       []string  `json:"after,omitempty"`   // explicit dependencies
	Resources   Resources `json:"resources,omitempty"`
	// NodeSelector: in a cluster, the step runs only on a worker whose
	// labels (skiff server --node-label) include every pair.
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	Retry        *Retry            `json:"retry,omitempty"`
	Cache        *Cache            `json:"cache,omitempty"`
	Timeout      Duration          `json:"timeout,omitempty"` // 0 = none
	// When is a CEL condition over the task's inputs (see EvalCondition);
	// false skips the task. "" = always run.
	When string `json:"when,omitempty"`
	// IgnoreUpstreamFailure runs the task once every dependency is final,
	// whatever its state (KFP's ignore_upstream_failure; exit handlers).
	IgnoreUpstreamFailure bool `json:"ignoreUpstreamFailure,omitempty"`

	// Body makes the task a group: instead of running a command it runs a
	// sub-DAG in its place (a sub-pipeline, a condition branch, an exit
	// handler's group, a loop body). The body's Params are bound by name
	// from the task's Inputs (and, in a loop, the item); a body parameter
	// with neither takes its default. The group ends when every task of
	// its body is final: SUCCEEDED when none failed or was canceled. Its
	// outputs are the body's Outputs; Finalize fills Task.Outputs from
	// them (a loop's are lists, ordered by iteration). A group sets no
	// command, image, env, retry, cache or resources.
	Body *Plan `json:"body,omitempty"`
	// ParallelFor runs Body once per item of a list (Body is required).
	ParallelFor *Loop `json:"parallelFor,omitempty"`

	// Protocol is how the step talks to the engine: "" is Skiff's own
	// (placeholders of placeholder.go, one file per output under outputs/);
	// ProtocolKFP is the kfp launcher's (ExecutorInput JSON, KFP
	// placeholders, ExecutorOutput), described by the opaque KFP field,
	// which package engine/spec/kfp writes and reads. With ProtocolKFP,
	// Command and Args hold KFP placeholders and are not checked as Skiff
	// templates.
	Protocol string          `json:"protocol,omitempty"`
	KFP      json.RawMessage `json:"kfp,omitempty"`
	// Kubernetes is the task's Kubernetes settings as KFP's kubernetes
	// platform spec writes them for its executor (volumes, secrets, config
	// maps, node selection, tolerations, pod metadata...), kept for a
	// Kubernetes executor; the local, docker and sim executors do not
	// apply them.
	Kubernetes json.RawMessage `json:"kubernetes,omitempty"`

	// Deps are the indices (into Plan.Tasks) of every task this one waits
	// for, implicit (From references) and explicit (After), sorted and
	// unique. Filled by Finalize.
	Deps []int `json:"deps,omitempty"`
}

// Loop is a ParallelFor: the group's body runs once per item of Items.
type Loop struct {
	// Items is the list iterated over: a literal list (Value), a pipeline
	// (or body) parameter, or another task's output; a list of artifacts
	// (an artifact list output) iterates over artifacts. Its Name is
	// ignored and its Type is list (or an artifact list type).
	Items Input `json:"items"`
	// ItemParam names the body parameter that receives each item. Its
	// type is the items' element type (any parameter type for a list of
	// JSON values; the artifact type for artifact lists).
	ItemParam string `json:"itemParam"`
	// Parallelism is the most iterations active at once; 0 = no limit.
	Parallelism int `json:"parallelism,omitempty"`
}

// EnvVar is one environment variable of a task.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Input is one typed input of a task. Exactly one source is set: a literal
// Value (parameters only), a pipeline parameter (Param), another task's
// output (From), or UpstreamStatus: the final status of the task's
// dependencies, an object {state, error, tasks} (for exit handlers).
type Input struct {
	Name  string          `json:"name"`
	Type  Type            `json:"type"`
	Value json.RawMessage `json:"value,omitempty"`
	Param string          `json:"param,omitempty"`
	From  *Ref            `json:"from,omitempty"`
	// UpstreamStatus: see Input.
	UpstreamStatus bool `json:"upstreamStatus,omitempty"`
	// Field selects a part of a parameter value from Param or From: a
	// dot-separated path of object keys and list indices ("a", "cfg.lr",
	// "xs.0"). The input's Type is the selected part's type (given, not
	// inferred). A missing key fails the task.
	Field string `json:"field,omitempty"`
	// AsText, with Type string: a number, bool, list or object reaching
	// the input (after Field) is passed as its text (TextValue), as KFP's
	// driver passes any value to a STRING input.
	AsText bool `json:"asText,omitempty"`
	// Default, for a From input, is its value when From's task ended
	// without succeeding (a task that ignores upstream failures runs
	// anyway): KFP's component input default.
	Default json.RawMessage `json:"default,omitempty"`
}

// Ref names an output of another task.
type Ref struct {
	Task   string `json:"task"`
	Output string `json:"output"`
	// TaskIndex is the index of Task in Plan.Tasks. Filled by Finalize.
	TaskIndex int `json:"taskIndex"`
}

// Output is one typed output of a task.
type Output struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
}

// Resources a task asks of the node it runs on. Zero means "no request".
type Resources struct {
	MilliCPU    int64 `json:"milliCPU,omitempty"`
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	GPU         int   `json:"gpu,omitempty"`
	// Accelerator is the kind of GPU asked for, as KFP's accelerator type
	// names it: a resource name ("nvidia.com/gpu", "amd.com/gpu") or a
	// model ("NVIDIA_TESLA_T4"). Only the kube executor applies it.
	Accelerator string `json:"accelerator,omitempty"`
}

// Retry is a task's retry policy (behaviour arrives with control flow; the
// format reserves it now). Limit is the number of retries after the first
// attempt.
type Retry struct {
	Limit      int      `json:"limit"`
	Backoff    Duration `json:"backoff,omitempty"`    // first delay
	Factor     float64  `json:"factor,omitempty"`     // growth per retry
	MaxBackoff Duration `json:"maxBackoff,omitempty"` // cap on the delay
}

// Cache is a task's caching policy (behaviour arrives with control flow; the
// format reserves it now).
type Cache struct {
	Enabled      bool     `json:"enabled"`
	MaxStaleness Duration `json:"maxStaleness,omitempty"` // 0 = no limit
	Key          string   `json:"key,omitempty"`          // replaces the computed key
}

// PlanOutput exposes one task output as an output of the pipeline (or of
// a group's body). With OneOf set instead of From, the output is the first
// of those task outputs that was produced (a condition's branches: KFP's
// dsl.OneOf); From is then empty.
type PlanOutput struct {
	Name  string `json:"name"`
	From  Ref    `json:"from"`
	OneOf []Ref  `json:"oneOf,omitempty"`
	// Type is the output's type. Finalize fills it from the source.
	Type Type `json:"type,omitempty"`
}

// IsGroup reports whether the task runs a body instead of a command.
func (t *Task) IsGroup() bool { return t.Body != nil }

// TaskIndex returns the index of the task named name, or -1.
func (p *Plan) TaskIndex(name string) int {
	for i := range p.Tasks {
		if p.Tasks[i].Name == name {
			return i
		}
	}
	return -1
}

// Param returns the parameter named name, or nil.
func (p *Plan) Param(name string) *Param {
	for i := range p.Params {
		if p.Params[i].Name == name {
			return &p.Params[i]
		}
	}
	return nil
}

// Output returns the output of t named name, or nil.
func (t *Task) Output(name string) *Output {
	for i := range t.Outputs {
		if t.Outputs[i].Name == name {
			return &t.Outputs[i]
		}
	}
	return nil
}

// ExecutorName returns the executor the task runs on: its own, else the
// plan's, else def.
func (p *Plan) ExecutorName(t *Task, def string) string {
	switch {
	case t.Executor != "":
		return t.Executor
	case p.Executor != "":
		return p.Executor
	}
	return def
}
