package kfp

import "encoding/json"

// The IR types below mirror the KFP v2 protos (pipeline_spec.proto and the
// kubernetes platform proto) with their JSON names, for what Skiff reads.
// A field Skiff knows but does not run is tagged `kfp:"unsupported,WHAT"`:
// the strict parser rejects it naming WHAT (lenient parsing warns and drops
// it). A field tagged `kfp:"kube,WHAT"` is a Kubernetes setting Skiff keeps
// for a Kubernetes executor (see KubernetesExecutorConfig). A key that is
// not a field at all is an unknown field.

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
	DownloadToWorkspace bool                     `json:"downloadToWorkspace"`
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
	PipelineConfig *PipelineConfig           `json:"pipelineConfig"`
}

// PipelineConfig is the pipeline-level configuration (dsl.PipelineConfig).
type PipelineConfig struct {
	SemaphoreKey string           `json:"semaphoreKey" kfp:"unsupported,pipeline concurrency limits (semaphoreKey)"`
	MutexName    string           `json:"mutexName" kfp:"unsupported,pipeline mutexes (mutexName)"`
	ResourceTTL  json.RawMessage  `json:"resourceTtl" kfp:"unsupported,a TTL for the run's Kubernetes resources (resourceTtl)"`
	Workspace    *WorkspaceConfig `json:"workspace"`
}

// WorkspaceConfig asks for a workspace: a directory shared by the steps of
// a run ({{$.workspace_path}}).
type WorkspaceConfig struct {
	Size       string                     `json:"size,omitempty"`
	Kubernetes *KubernetesWorkspaceConfig `json:"kubernetes,omitempty"`
}

// KubernetesWorkspaceConfig is the workspace's Kubernetes settings.
type KubernetesWorkspaceConfig struct {
	PVCSpecPatch KubeObject `json:"pvcSpecPatch,omitempty" kfp:"kube,workspace PVC spec patch"`
}

// PlatformDeploymentConfig holds per-executor platform settings.
type PlatformDeploymentConfig struct {
	Executors map[string]*KubernetesExecutorConfig `json:"executors"`
}

// KubeObject is a Kubernetes setting kept as written: an object whose
// fields Skiff does not read.
type KubeObject map[string]json.RawMessage

// KubernetesExecutorConfig is the kubernetes platform's settings for one
// executor. A field tagged `kfp:"kube,WHAT"` is accepted and kept as
// written (Task.Kubernetes) for a Kubernetes executor: Skiff checks only
// its shape (a list of objects, an object, a string, a number); the local
// and docker executors do not apply it, which the compiler says in a
// warning naming WHAT.
type KubernetesExecutorConfig struct {
	SecretAsVolume         []KubeObject `json:"secretAsVolume,omitempty" kfp:"kube,secrets as volumes"`
	SecretAsEnv            []KubeObject `json:"secretAsEnv,omitempty" kfp:"kube,secrets as environment variables"`
	PVCMount               []KubeObject `json:"pvcMount,omitempty" kfp:"kube,persistent volume claim mounts"`
	NodeSelector           KubeObject   `json:"nodeSelector,omitempty" kfp:"kube,node selectors"`
	PodMetadata            KubeObject   `json:"podMetadata,omitempty" kfp:"kube,pod labels and annotations"`
	ImagePullSecret        []KubeObject `json:"imagePullSecret,omitempty" kfp:"kube,image pull secrets"`
	ImagePullPolicy        string       `json:"imagePullPolicy,omitempty" kfp:"kube,image pull policy"`
	ConfigMapAsVolume      []KubeObject `json:"configMapAsVolume,omitempty" kfp:"kube,config maps as volumes"`
	ConfigMapAsEnv         []KubeObject `json:"configMapAsEnv,omitempty" kfp:"kube,config maps as environment variables"`
	ActiveDeadlineSeconds  *json.Number `json:"activeDeadlineSeconds,omitempty" kfp:"kube,active deadline"`
	FieldPathAsEnv         []KubeObject `json:"fieldPathAsEnv,omitempty" kfp:"kube,field paths as environment variables"`
	Tolerations            []KubeObject `json:"tolerations,omitempty" kfp:"kube,tolerations"`
	GenericEphemeralVolume []KubeObject `json:"genericEphemeralVolume,omitempty" kfp:"kube,generic ephemeral volumes"`
	NodeAffinity           []KubeObject `json:"nodeAffinity,omitempty" kfp:"kube,node affinity"`
	PodAffinity            []KubeObject `json:"podAffinity,omitempty" kfp:"kube,pod affinity"`
	EnabledSharedMemory    KubeObject   `json:"enabledSharedMemory,omitempty" kfp:"kube,shared memory volumes"`
	EmptyDirMounts         []KubeObject `json:"emptyDirMounts,omitempty" kfp:"kube,emptyDir mounts"`
	SecurityContext        KubeObject   `json:"securityContext,omitempty" kfp:"kube,security context"`
	InitContainers         []KubeObject `json:"initContainers,omitempty" kfp:"kube,init containers"`
	PodResourceClaims      []KubeObject `json:"podResourceClaims,omitempty" kfp:"kube,pod resource claims"`
}
