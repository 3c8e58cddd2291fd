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
	Retry       *Retry    `json:"retry,omitempty"`
	Cache       *Cache    `json:"cache,omitempty"`
	Timeout     Duration  `json:"timeout,omitempty"` // 0 = none
	// When is a CEL condition over the task's inputs (see EvalCondition);
	// false skips the task. "" = always run.
	When string `json:"when,omitempty"`
	// IgnoreUpstreamFailure runs the task once every dependency is final,
	// whatever its state (KFP's ignore_upstream_failure; exit handlers).
	IgnoreUpstreamFailure bool `json:"ignoreUpstreamFailure,omitempty"`

	// Deps are the indices (into Plan.Tasks) of every task this one waits
	// for, implicit (From references) and explicit (After), sorted and
	// unique. Filled by Finalize.
	Deps []int `json:"deps,omitempty"`
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

// PlanOutput exposes one task output as an output of the pipeline.
type PlanOutput struct {
	Name string `json:"name"`
	From Ref    `json:"from"`
}

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
