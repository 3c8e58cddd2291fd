package kfp

import "encoding/json"

// The IR types below mirror the KFP v2 protos (pipeline_spec.proto and the
// kubernetes platform proto) with their JSON names, for what Skiff reads.
// A field Skiff knows but does not run is tagged `kfp:"unsupported,WHAT"`:
// the strict parser rejects it naming WHAT (lenient parsing warns and drops
// it). A key that is not a field at all is an unknown field.

// PipelineSpec is the first document of a compiled pipeline.
type PipelineSpec struct {
	PipelineInfo        *PipelineInfo             `json:"pipelineInfo"`
	DeploymentSpec      *DeploymentSpec           `json:"deploymentSpec"`
	SDKVersion          string                    `json:"sdkVersion"`
	SchemaVersion       string                    `json:"schemaVersion"`
	Components          map[string]*ComponentSpec `json:"components"`
	Root                *ComponentSpec            `json:"root"`
	DefaultPipelineRoot string                    `json:"defaultPipelineRoot"`
	Comment             string                    `json:"comment"`
	DocString           string                    `json:"docString"`
}

// PipelineInfo names the pipeline.
type PipelineInfo struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Description string `json:"description"`
}

// DeploymentSpec holds the executors, by label.
type DeploymentSpec struct {
	Executors map[string]*ExecutorSpec `json:"executors"`
}

// ExecutorSpec is one executor: a container or an importer.
type ExecutorSpec struct {
	Container *ContainerSpec  `json:"container"`
	Importer  *ImporterSpec   `json:"importer"`
	Resolver  json.RawMessage `json:"resolver" kfp:"unsupported,resolver executors"`
	CustomJob json.RawMessage `json:"customJob" kfp:"unsupported,Vertex AI custom jobs"`
}

// ContainerSpec is a container executor.
type ContainerSpec struct {
	Image      string          `json:"image"`
	Command    []string        `json:"command"`
	Args       []string        `json:"args"`
	Env        []EnvVar        `json:"env"`
	Resources  *ResourceSpec   `json:"resources"`
	Lifecycle  json.RawMessage `json:"lifecycle" kfp:"unsupported,container lifecycle hooks"`
	ConfigMaps json.RawMessage `json:"configMaps" kfp:"unsupported,container config maps"`
}

// EnvVar is a container environment variable.
type EnvVar struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ResourceSpec is a container's resources. The numeric fields are the
// older form; the resource* strings may hold placeholders.
type ResourceSpec struct {
	CPULimit              *float64         `json:"cpuLimit"`
	MemoryLimit           *float64         `json:"memoryLimit"` // GB
	CPURequest            *float64         `json:"cpuRequest"`
	MemoryRequest         *float64         `json:"memoryRequest"` // GB
	ResourceCPULimit      string           `json:"resourceCpuLimit"`
	ResourceMemoryLimit   string           `json:"resourceMemoryLimit"`
	ResourceCPURequest    string           `json:"resourceCpuRequest"`
	ResourceMemoryRequest string           `json:"resourceMemoryRequest"`
	Accelerator           *AcceleratorSpec `json:"accelerator"`
}

// AcceleratorSpec asks for accelerators (GPUs).
type AcceleratorSpec struct {
	Type          string       `json:"type"`
	Count         *json.Number `json:"count"`
	ResourceType  string       `json:"resourceType"`
	ResourceCount string       `json:"resourceCount"`
}

// ImporterSpec imports an existing artifact by URI.
type ImporterSpec struct {
	ArtifactURI         *ValueOrRuntimeParameter `json:"artifactUri"`
	TypeSchema          *ArtifactTypeSchema      `json:"typeSchema"`
	Metadata            json.RawMessage          `json:"metadata"`
	Reimport            bool                     `json:"reimport"`
	DownloadToWorkspace bool                     `json:"downloadToWorkspace" kfp:"unsupported,importer downloadToWorkspace (workspaces)"`
}

// ValueOrRuntimeParameter is a constant or the name of an input.
type ValueOrRuntimeParameter struct {
	Constant         json.RawMessage `json:"constant"`
	ConstantValue    *ConstantValue  `json:"constantValue"`
	RuntimeParameter string          `json:"runtimeParameter"`
}

// ConstantValue is the schema 2.0.0 typed constant.
type ConstantValue struct {
	IntValue    *json.Number `json:"intValue"`
	DoubleValue *json.Number `json:"doubleValue"`
	StringValue *string      `json:"stringValue"`
}

// ArtifactTypeSchema names an artifact type.
type ArtifactTypeSchema struct {
	SchemaTitle    string `json:"schemaTitle,omitempty"`
	SchemaURI      string `json:"schemaUri,omitempty"`
	InstanceSchema string `json:"instanceSchema,omitempty"`
	SchemaVersion  string `json:"schemaVersion,omitempty"`
}

// ComponentSpec is a component: a DAG or an executor, with typed inputs
// and outputs.
type ComponentSpec struct {
	InputDefinitions       *Definitions    `json:"inputDefinitions"`
	OutputDefinitions      *Definitions    `json:"outputDefinitions"`
	DAG                    *DAGSpec        `json:"dag"`
	ExecutorLabel          string          `json:"executorLabel"`
	SinglePlatformSpecs    json.RawMessage `json:"singlePlatformSpecs" kfp:"unsupported,component platform specs"`
	TaskConfigPassthroughs json.RawMessage `json:"taskConfigPassthroughs" kfp:"unsupported,task config passthroughs"`
}

// Definitions are a component's inputs or outputs.
type Definitions struct {
	Artifacts  map[string]*ArtifactSpec  `json:"artifacts"`
	Parameters map[string]*ParameterSpec `json:"parameters"`
}

// ArtifactSpec declares an artifact input or output.
type ArtifactSpec struct {
	ArtifactType   *ArtifactTypeSchema `json:"artifactType"`
	IsArtifactList bool                `json:"isArtifactList"`
	IsOptional     bool                `json:"isOptional"`
	Description    string              `json:"description"`
}

// ParameterSpec declares a parameter input or output.
type ParameterSpec struct {
	Type          string          `json:"type"` // schema 2.0.0: INT, DOUBLE, STRING
	ParameterType string          `json:"parameterType"`
	DefaultValue  json.RawMessage `json:"defaultValue"`
	IsOptional    bool            `json:"isOptional"`
	Description   string          `json:"description"`
	Literals      json.RawMessage `json:"literals"`
}

// DAGSpec is a component's DAG of tasks.
type DAGSpec struct {
	Tasks   map[string]*PipelineTaskSpec `json:"tasks"`
	Outputs *DAGOutputsSpec              `json:"outputs"`
}

// DAGOutputsSpec exposes task outputs as the DAG's outputs.
type DAGOutputsSpec struct {
	Artifacts  map[string]*DAGOutputArtifactSpec  `json:"artifacts"`
	Parameters map[string]*DAGOutputParameterSpec `json:"parameters"`
}

// DAGOutputArtifactSpec selects an artifact output (several: the first
// produced, dsl.OneOf).
type DAGOutputArtifactSpec struct {
	ArtifactSelectors []ArtifactSelector `json:"artifactSelectors"`
}

// ArtifactSelector names a sub-task's artifact output.
type ArtifactSelector struct {
	ProducerSubtask   string `json:"producerSubtask"`
	OutputArtifactKey string `json:"outputArtifactKey"`
}

// DAGOutputParameterSpec selects a parameter output.
type DAGOutputParameterSpec struct {
	ValueFromParameter *ParameterSelector `json:"valueFromParameter"`
	ValueFromOneof     *struct {
		ParameterSelectors []ParameterSelector `json:"parameterSelectors"`
	} `json:"valueFromOneof"`
}

// ParameterSelector names a sub-task's parameter output.
type ParameterSelector struct {
	ProducerSubtask    string `json:"producerSubtask"`
	OutputParameterKey string `json:"outputParameterKey"`
}

// PipelineTaskSpec is a task of a DAG.
type PipelineTaskSpec struct {
	TaskInfo          *PipelineTaskInfo  `json:"taskInfo"`
	Inputs            *TaskInputsSpec    `json:"inputs"`
	DependentTasks    []string           `json:"dependentTasks"`
	CachingOptions    *CachingOptions    `json:"cachingOptions"`
	ComponentRef      *ComponentRef      `json:"componentRef"`
	TriggerPolicy     *TriggerPolicy     `json:"triggerPolicy"`
	ParameterIterator *ParameterIterator `json:"parameterIterator"`
	ArtifactIterator  *ArtifactIterator  `json:"artifactIterator"`
	IteratorPolicy    *IteratorPolicy    `json:"iteratorPolicy"`
	RetryPolicy       *RetryPolicy       `json:"retryPolicy"`
}

// PipelineTaskInfo holds the task's display name.
type PipelineTaskInfo struct {
	Name string `json:"name"`
}

// ComponentRef names the task's component.
type ComponentRef struct {
	Name string `json:"name"`
}

// CachingOptions is a task's caching policy.
type CachingOptions struct {
	EnableCache bool   `json:"enableCache"`
	CacheKey    string `json:"cacheKey"`
}

// TriggerPolicy decides whether a task runs.
type TriggerPolicy struct {
	Condition string `json:"condition"`
	Strategy  string `json:"strategy"` // ALL_UPSTREAM_TASKS_SUCCEEDED (default) or ALL_UPSTREAM_TASKS_COMPLETED
}

// ParameterIterator is a ParallelFor over a list parameter.
type ParameterIterator struct {
	Items *struct {
		Raw            *string `json:"raw"`
		InputParameter string  `json:"inputParameter"`
	} `json:"items"`
	ItemInput string `json:"itemInput"`
}

// ArtifactIterator is a ParallelFor over a list of artifacts.
type ArtifactIterator struct {
	Items *struct {
		InputArtifact string `json:"inputArtifact"`
	} `json:"items"`
	ItemInput string `json:"itemInput"`
}

// IteratorPolicy bounds a loop's parallelism.
type IteratorPolicy struct {
	ParallelismLimit int `json:"parallelismLimit"`
}

// RetryPolicy is a task's retry policy; durations are proto Duration text
// ("30s").
type RetryPolicy struct {
	MaxRetryCount      int      `json:"maxRetryCount"`
	BackoffDuration    string   `json:"backoffDuration"`
	BackoffFactor      *float64 `json:"backoffFactor"`
	BackoffMaxDuration string   `json:"backoffMaxDuration"`
}

// TaskInputsSpec are a task's input bindings.
type TaskInputsSpec struct {
	Parameters map[string]*InputParameterSpec `json:"parameters"`
	Artifacts  map[string]*InputArtifactSpec  `json:"artifacts"`
}

// InputParameterSpec is the source of a parameter input: exactly one of
// its source fields.
type InputParameterSpec struct {
	TaskOutputParameter     *TaskOutputParameter     `json:"taskOutputParameter"`
	RuntimeValue            *ValueOrRuntimeParameter `json:"runtimeValue"`
	ComponentInputParameter string                   `json:"componentInputParameter"`
	TaskFinalStatus         *struct {
		ProducerTask string `json:"producerTask"`
	} `json:"taskFinalStatus"`
	ParameterExpressionSelector string `json:"parameterExpressionSelector"`
}

// TaskOutputParameter names a parameter output of a sibling task.
type TaskOutputParameter struct {
	ProducerTask       string `json:"producerTask"`
	OutputParameterKey string `json:"outputParameterKey"`
}

// InputArtifactSpec is the source of an artifact input.
type InputArtifactSpec struct {
	TaskOutputArtifact *struct {
		ProducerTask      string `json:"producerTask"`
		OutputArtifactKey string `json:"outputArtifactKey"`
	} `json:"taskOutputArtifact"`
	ComponentInputArtifact string `json:"componentInputArtifact"`
}

// PlatformSpec is the optional second document: settings per platform.
type PlatformSpec struct {
	Platforms map[string]*SinglePlatformSpec `json:"platforms"`
}

// SinglePlatformSpec is one platform's settings.
type SinglePlatformSpec struct {
	DeploymentSpec *PlatformDeploymentConfig `json:"deploymentSpec"`
	Platform       string                    `json:"platform"`
	Config         json.RawMessage           `json:"config" kfp:"unsupported,platform config"`
	PipelineConfig json.RawMessage           `json:"pipelineConfig" kfp:"unsupported,pipeline config (workspaces)"`
}

// PlatformDeploymentConfig holds per-executor platform settings.
type PlatformDeploymentConfig struct {
	Executors map[string]*KubernetesExecutorConfig `json:"executors"`
}

// KubernetesExecutorConfig is the kubernetes platform's settings for one
// executor. Skiff's executors run none of them yet: each is reported as
// unsupported (ignored with a warning when parsing leniently).
type KubernetesExecutorConfig struct {
	SecretAsVolume         json.RawMessage `json:"secretAsVolume" kfp:"unsupported,Kubernetes secrets as volumes"`
	SecretAsEnv            json.RawMessage `json:"secretAsEnv" kfp:"unsupported,Kubernetes secrets as environment variables"`
	PVCMount               json.RawMessage `json:"pvcMount" kfp:"unsupported,Kubernetes persistent volume claim mounts"`
	NodeSelector           json.RawMessage `json:"nodeSelector" kfp:"unsupported,Kubernetes node selectors"`
	PodMetadata            json.RawMessage `json:"podMetadata" kfp:"unsupported,Kubernetes pod labels and annotations"`
	ImagePullSecret        json.RawMessage `json:"imagePullSecret" kfp:"unsupported,Kubernetes image pull secrets"`
	ImagePullPolicy        json.RawMessage `json:"imagePullPolicy" kfp:"unsupported,Kubernetes image pull policy"`
	ConfigMapAsVolume      json.RawMessage `json:"configMapAsVolume" kfp:"unsupported,Kubernetes config maps as volumes"`
	ConfigMapAsEnv         json.RawMessage `json:"configMapAsEnv" kfp:"unsupported,Kubernetes config maps as environment variables"`
	ActiveDeadlineSeconds  json.RawMessage `json:"activeDeadlineSeconds" kfp:"unsupported,Kubernetes active deadline"`
	FieldPathAsEnv         json.RawMessage `json:"fieldPathAsEnv" kfp:"unsupported,Kubernetes field paths as environment variables"`
	Tolerations            json.RawMessage `json:"tolerations" kfp:"unsupported,Kubernetes tolerations"`
	GenericEphemeralVolume json.RawMessage `json:"genericEphemeralVolume" kfp:"unsupported,Kubernetes generic ephemeral volumes"`
	NodeAffinity           json.RawMessage `json:"nodeAffinity" kfp:"unsupported,Kubernetes node affinity"`
	EnabledSharedMemory    json.RawMessage `json:"enabledSharedMemory" kfp:"unsupported,Kubernetes shared memory volumes"`
	EmptyDirMounts         json.RawMessage `json:"emptyDirMounts" kfp:"unsupported,Kubernetes emptyDir mounts"`
	SecurityContext        json.RawMessage `json:"securityContext" kfp:"unsupported,Kubernetes security context"`
}
