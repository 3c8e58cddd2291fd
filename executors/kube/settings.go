package kube

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// Settings is KFP's kubernetes platform config of one step
// (KubernetesExecutorConfig, as the kfp-kubernetes package writes it in
// proto JSON), as spec.Task.Kubernetes carries it. ParseSettings reads it
// strictly: an unknown field is an error naming its path, never ignored.
type Settings struct {
	SecretAsVolume         []SecretAsVolume         `json:"secretAsVolume"`
	SecretAsEnv            []SecretAsEnv            `json:"secretAsEnv"`
	PVCMount               []PVCMount               `json:"pvcMount"`
	NodeSelector           *NodeSelector            `json:"nodeSelector"`
	PodMetadata            *PodMetadata             `json:"podMetadata"`
	ImagePullSecret        []ImagePullSecret        `json:"imagePullSecret"`
	ImagePullPolicy        string                   `json:"imagePullPolicy"`
	ConfigMapAsVolume      []ConfigMapAsVolume      `json:"configMapAsVolume"`
	ConfigMapAsEnv         []ConfigMapAsEnv         `json:"configMapAsEnv"`
	ActiveDeadlineSeconds  *Int64                   `json:"activeDeadlineSeconds"`
	FieldPathAsEnv         []FieldPathAsEnv         `json:"fieldPathAsEnv"`
	Tolerations            []Toleration             `json:"tolerations"`
	GenericEphemeralVolume []GenericEphemeralVolume `json:"genericEphemeralVolume"`
	NodeAffinity           []NodeAffinityTerm       `json:"nodeAffinity"`
	PodAffinity            []PodAffinityTerm        `json:"podAffinity"`
	EnabledSharedMemory    *SharedMemory            `json:"enabledSharedMemory"`
	EmptyDirMounts         []EmptyDirMount          `json:"emptyDirMounts"`
	SecurityContext        *SecurityContext         `json:"securityContext"`
	InitContainers         []InitContainer          `json:"initContainers"`
	PodResourceClaims      []PodResourceClaim       `json:"podResourceClaims"`
}

// Param is KFP's InputParameterSpec where the kubernetes config names an
// object (a secret, a PVC...). Only constants can be applied: a name from
// a pipeline input or another task's output is refused by name.
type Param struct {
	RuntimeValue *struct {
		Constant json.RawMessage `json:"constant"`
	} `json:"runtimeValue"`
	ComponentInputParameter     string          `json:"componentInputParameter"`
	TaskOutputParameter         json.RawMessage `json:"taskOutputParameter"`
	TaskFinalStatus             json.RawMessage `json:"taskFinalStatus"`
	ParameterExpressionSelector string          `json:"parameterExpressionSelector"`
}

// Int64 is a proto JSON int64: a number or a decimal string.
type Int64 int64

// UnmarshalJSON accepts 5 and "5".
func (n *Int64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// An UnmarshalTypeError gets the field's path from the decoder.
		return &json.UnmarshalTypeError{Value: "value " + string(b), Type: reflect.TypeFor[int64]()}
	}
	*n = Int64(v)
	return nil
}

// SecretAsVolume mounts a secret's keys as files.
type SecretAsVolume struct {
	SecretName          string `json:"secretName"`
	MountPath           string `json:"mountPath"`
	Optional            *bool  `json:"optional"`
	SecretNameParameter *Param `json:"secretNameParameter"`
}

// KeyToEnv maps one key of a secret or config map to a variable.
type KeyToEnv struct {
	SecretKey    string `json:"secretKey"`
	ConfigMapKey string `json:"configMapKey"`
	EnvVar       string `json:"envVar"`
}

// SecretAsEnv sets variables from a secret's keys.
type SecretAsEnv struct {
	SecretName          string     `json:"secretName"`
	KeyToEnv            []KeyToEnv `json:"keyToEnv"`
	Optional            *bool      `json:"optional"`
	SecretNameParameter *Param     `json:"secretNameParameter"`
}

// PVCMount mounts an existing persistent volume claim.
type PVCMount struct {
	TaskOutputParameter     json.RawMessage `json:"taskOutputParameter"`
	Constant                string          `json:"constant"`
	ComponentInputParameter string          `json:"componentInputParameter"`
	MountPath               string          `json:"mountPath"`
	PVCNameParameter        *Param          `json:"pvcNameParameter"`
	SubPath                 string          `json:"subPath"`
}

// NodeSelector is the pod's node selector.
type NodeSelector struct {
	Labels           map[string]string `json:"labels"`
	NodeSelectorJSON *Param            `json:"nodeSelectorJson"`
}

// PodMetadata adds labels and annotations to the pod.
type PodMetadata struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// ImagePullSecret names a secret for pulling the image.
type ImagePullSecret struct {
	SecretName          string `json:"secretName"`
	SecretNameParameter *Param `json:"secretNameParameter"`
}

// ConfigMapAsVolume mounts a config map's keys as files.
type ConfigMapAsVolume struct {
	ConfigMapName          string `json:"configMapName"`
	MountPath              string `json:"mountPath"`
	Optional               *bool  `json:"optional"`
	ConfigMapNameParameter *Param `json:"configMapNameParameter"`
}

// ConfigMapAsEnv sets variables from a config map's keys.
type ConfigMapAsEnv struct {
	ConfigMapName          string     `json:"configMapName"`
	KeyToEnv               []KeyToEnv `json:"keyToEnv"`
	ConfigMapNameParameter *Param     `json:"configMapNameParameter"`
	Optional               *bool      `json:"optional"`
}

// FieldPathAsEnv sets a variable from a field of the pod (downward API).
type FieldPathAsEnv struct {
	Name      string `json:"name"`
	FieldPath string `json:"fieldPath"`
}

// Toleration lets the pod run on tainted nodes.
type Toleration struct {
	Key               string `json:"key"`
	Operator          string `json:"operator"`
	Value             string `json:"value"`
	Effect            string `json:"effect"`
	TolerationSeconds *Int64 `json:"tolerationSeconds"`
	TolerationJSON    *Param `json:"tolerationJson"`
}

// SelectorRequirement is one match expression.
type SelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

// GenericEphemeralVolume is a volume claimed for the pod's lifetime.
type GenericEphemeralVolume struct {
	VolumeName          string       `json:"volumeName"`
	MountPath           string       `json:"mountPath"`
	AccessModes         []string     `json:"accessModes"`
	Size                string       `json:"size"`
	DefaultStorageClass bool         `json:"defaultStorageClass"`
	StorageClassName    string       `json:"storageClassName"`
	Metadata            *PodMetadata `json:"metadata"`
}

// NodeAffinityTerm is one node affinity rule: required, or preferred when
// it has a weight.
type NodeAffinityTerm struct {
	MatchExpressions []SelectorRequirement `json:"matchExpressions"`
	MatchFields      []SelectorRequirement `json:"matchFields"`
	Weight           *int32                `json:"weight"`
	NodeAffinityJSON *Param                `json:"nodeAffinityJson"`
}

// PodAffinityTerm is one pod (anti-)affinity rule.
type PodAffinityTerm struct {
	MatchPodExpressions       []SelectorRequirement `json:"matchPodExpressions"`
	MatchPodLabels            map[string]string     `json:"matchPodLabels"`
	TopologyKey               string                `json:"topologyKey"`
	Namespaces                []string              `json:"namespaces"`
	MatchNamespaceExpressions []SelectorRequirement `json:"matchNamespaceExpressions"`
	MatchNamespaceLabels      map[string]string     `json:"matchNamespaceLabels"`
	Weight                    *int32                `json:"weight"`
	Anti                      *bool                 `json:"anti"`
}

// SharedMemory mounts a memory-backed /dev/shm.
type SharedMemory struct {
	VolumeName string `json:"volumeName"`
	Size       string `json:"size"`
}

// EmptyDirMount is a scratch volume.
type EmptyDirMount struct {
	VolumeName string  `json:"volumeName"`
	MountPath  string  `json:"mountPath"`
	Medium     *string `json:"medium"`
	SizeLimit  *string `json:"sizeLimit"`
}

// SecurityContext is the main container's security context.
type SecurityContext struct {
	RunAsUser    *Int64 `json:"runAsUser"`
	RunAsGroup   *Int64 `json:"runAsGroup"`
	RunAsNonRoot *bool  `json:"runAsNonRoot"`
}

// InitContainer runs before the main container.
type InitContainer struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Env     []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	VolumeMounts []struct {
		VolumeName string `json:"volumeName"`
		MountPath  string `json:"mountPath"`
	} `json:"volumeMounts"`
	RestartPolicy *string `json:"restartPolicy"`
	Resources     *struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
}

// PodResourceClaim claims a device through dynamic resource allocation.
type PodResourceClaim struct {
	ResourceClaimTemplateName string `json:"resourceClaimTemplateName"`
	ResourceClaimJSON         *Param `json:"resourceClaimJson"`
}

// maxSettingsBytes bounds the settings of one step.
const maxSettingsBytes = 1 << 20

// ParseSettings reads a step's kubernetes settings; empty input is no
// settings. The error names the field: "kubernetes.pvcMount[0].mountPath:
// ...". ParseSettings checks the JSON's shape; BuildPod checks the values.
func ParseSettings(raw []byte) (*Settings, error) {
	s := new(Settings)
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return s, nil
	}
	if len(raw) > maxSettingsBytes {
		return nil, fmt.Errorf("kubernetes: %d bytes, more than the limit of %d", len(raw), maxSettingsBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, settingsError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("kubernetes: unexpected data after the settings object")
	}
	return s, nil
}

// settingsError names the field of a decoding error.
func settingsError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Errorf("kubernetes.%s: expected %s, got JSON %s", te.Field, te.Type, te.Value)
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return fmt.Errorf("kubernetes: unknown field %s: not a KFP kubernetes setting this executor knows", f)
	}
	if strings.HasPrefix(msg, "json: cannot unmarshal") {
		// The field path is in the message ("... into Go struct field X.a.b of type T").
		if _, after, ok := strings.Cut(msg, "Go struct field "); ok {
			field, rest, _ := strings.Cut(after, " of type ")
			if _, f, ok := strings.Cut(field, "."); ok {
				field = f
			}
			return fmt.Errorf("kubernetes.%s: expected %s", field, rest)
		}
	}
	return fmt.Errorf("kubernetes: %v", err)
}

// constant returns the constant string p names; field is its path.
func (p *Param) constant(field string) (string, error) {
	switch {
	case p == nil:
		return "", nil
	case p.ComponentInputParameter != "" || len(p.TaskOutputParameter) > 0 || len(p.TaskFinalStatus) > 0:
		return "", fmt.Errorf("%s: a name from a pipeline input or a task output is not supported by the kube executor: give a constant", field)
	case p.RuntimeValue == nil || len(p.RuntimeValue.Constant) == 0:
		return "", fmt.Errorf("%s: expected runtimeValue.constant", field)
	}
	var s string
	if err := json.Unmarshal(p.RuntimeValue.Constant, &s); err != nil {
		return "", fmt.Errorf("%s.runtimeValue.constant: expected a string, got %s", field, p.RuntimeValue.Constant)
	}
	return s, nil
}

// constantJSON decodes the constant p names (an object, or a string holding
// one) into v, strictly.
func (p *Param) constantJSON(field string, v any) error {
	switch {
	case p.ComponentInputParameter != "" || len(p.TaskOutputParameter) > 0 || len(p.TaskFinalStatus) > 0:
		return fmt.Errorf("%s: a value from a pipeline input or a task output is not supported by the kube executor: give a constant", field)
	case p.RuntimeValue == nil || len(p.RuntimeValue.Constant) == 0:
		return fmt.Errorf("%s: expected runtimeValue.constant", field)
	}
	raw := []byte(p.RuntimeValue.Constant)
	var text string
	if json.Unmarshal(raw, &text) == nil {
		raw = []byte(text)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s.runtimeValue.constant: %v", field, err)
	}
	return nil
}

// name picks an object's name from the deprecated plain field or the
// parameter (which wins), requiring one.
func name(field, plain string, p *Param, paramField string) (string, error) {
	if p != nil {
		n, err := p.constant(field + "." + paramField)
		if err != nil {
			return "", err
		}
		plain = n
	}
	if plain == "" {
		return "", fmt.Errorf("%s.%s: required", field, paramField)
	}
	return plain, nil
}
