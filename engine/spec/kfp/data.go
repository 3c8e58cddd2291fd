package kfp

import "encoding/json"

// taskData is what the compiler leaves in Task.KFP for the dispatcher: the
// executor as the IR wrote it and the mapping between KFP names (what the
// step sees) and Skiff input and output names.
type taskData struct {
	Pipeline     string         `json:"pipeline"`               // pipelineInfo.name
	PipelineRoot string         `json:"pipelineRoot,omitempty"` // defaultPipelineRoot
	Task         string         `json:"task"`                   // the task's KFP name
	Executor     string         `json:"executor"`               // executor label
	Container    *ContainerSpec `json:"container,omitempty"`
	Importer     *importerData  `json:"importer,omitempty"`
	// DynamicResources: the container's resources hold placeholders,
	// resolved at dispatch.
	DynamicResources bool `json:"dynamicResources,omitempty"`
	// Workspace: the step uses the run's workspace ({{$.workspace_path}});
	// the pipeline's workspace config (size, Kubernetes PVC patch), kept
	// for a Kubernetes executor.
	Workspace *WorkspaceConfig `json:"workspace,omitempty"`

	Params       []paramIn     `json:"params,omitempty"`
	Artifacts    []artifactIn  `json:"artifacts,omitempty"`
	OutParams    []paramOut    `json:"outParams,omitempty"`
	OutArtifacts []artifactOut `json:"outArtifacts,omitempty"`
}

// paramIn is one input parameter of the task: a component input
// (Declared) or one of the pipelinechannel inputs the SDK adds for
// f-strings, conditions and resources. Input is the Skiff input holding its
// value; "" when the optional input has none.
type paramIn struct {
	Name     string `json:"name"`
	Input    string `json:"input,omitempty"`
	Type     string `json:"type,omitempty"` // IR parameterType, for declared ones
	Declared bool   `json:"declared,omitempty"`
	// Template: the value is an f-string constant whose placeholders are
	// resolved against the task's other inputs at dispatch.
	Template bool `json:"template,omitempty"`
	// StatusOf: a TASK_FINAL_STATUS input, the final status of this task
	// (its KFP name).
	StatusOf string `json:"statusOf,omitempty"`
}

// artifactIn is one input artifact of the component.
type artifactIn struct {
	Name   string             `json:"name"`
	Input  string             `json:"input,omitempty"`
	Schema ArtifactTypeSchema `json:"schema"`
	List   bool               `json:"list,omitempty"`
}

// paramOut is one output parameter of the component.
type paramOut struct {
	Name   string `json:"name"`
	Output string `json:"output"`
	Type   string `json:"type"`
}

// artifactOut is one output artifact of the component.
type artifactOut struct {
	Name   string             `json:"name"`
	Output string             `json:"output"`
	Schema ArtifactTypeSchema `json:"schema"`
}

// importerData is an importer executor: the URI is a constant or the value
// of a parameter input.
type importerData struct {
	URI      string          `json:"uri,omitempty"`
	URIParam string          `json:"uriParam,omitempty"` // KFP name of the input holding the URI
	Metadata json.RawMessage `json:"metadata,omitempty"`
}
