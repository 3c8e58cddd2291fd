package kube

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"
)

// PodRoot is the execution's work dir inside its pod (an emptyDir); Root
// returns it for every execution.
const PodRoot = "/skiff"

// Defaults.
const (
	DefaultNamespace        = "default"
	DefaultGPUResource      = "nvidia.com/gpu"
	DefaultAcceleratorLabel = "nvidia.com/gpu.product"
	DefaultInstance         = "default"
	DefaultGracePeriod      = 30 * time.Second
	DefaultImagePullTimeout = 5 * time.Minute
	DefaultResync           = 0 // informer resync: off
)

// Config configures an Executor.
type Config struct {
	// Client talks to the API server (kubernetes.NewForConfig of a
	// kubeconfig: see ClientFromKubeconfig).
	Client kubernetes.Interface
	// Namespace is where pods are created; "" = DefaultNamespace.
	Namespace string
	// Targets maps a Skiff namespace to the Kubernetes namespace of its
	// pods (nil = every pod goes to Namespace).
	Targets Targets
	// Instance tells apart the pods of several Skiff installations that
	// share a namespace: it is the skiff.io/instance label, and Running,
	// adoption and orphan removal see only this instance's pods.
	Instance string
	// GPUResource is the extended resource a GPU request asks for ("" =
	// DefaultGPUResource): amd.com/gpu, gpu.intel.com/i915... A step's
	// accelerator type that is itself a resource name (has a "/") wins.
	GPUResource string
	// AcceleratorLabel is the node label a step's accelerator model
	// (KFP's accelerator type, "NVIDIA_TESLA_T4") selects nodes by ("" =
	// DefaultAcceleratorLabel, set by NVIDIA's GPU feature discovery).
	AcceleratorLabel string
	// ServiceAccount runs the pods ("" = none: the namespace's default,
	// with no API token mounted).
	ServiceAccount string
	// DefaultImage runs steps that name no image; "" = such a spec is bad.
	DefaultImage string
	// ImagePullPolicy for every pod ("" = Kubernetes' default); a step's
	// own (KFP's imagePullPolicy) wins.
	ImagePullPolicy corev1.PullPolicy
	// GracePeriod is the pod's termination grace period on cancel and
	// timeout; 0 = DefaultGracePeriod.
	GracePeriod time.Duration
	// ImagePullTimeout is how long a pod may stay in ImagePullBackOff
	// before the execution fails; 0 = DefaultImagePullTimeout.
	ImagePullTimeout time.Duration
	// KeepPods leaves finished pods in the cluster (for debugging); by
	// default a pod is deleted once its end is reported.
	KeepPods bool
	// Launcher runs the steps that move artifacts or output parameters
	// (nil = such steps are refused).
	Launcher *Launcher
	Logger   *slog.Logger     // nil = discard
	Clock    func() time.Time // nil = time.Now
}

// Targets tells the executor which Kubernetes namespace each Skiff
// namespace's pods go to (the namespace policy's kube_namespace).
type Targets interface {
	// Target is the Kubernetes namespace of skiffNamespace's pods; "" =
	// Config.Namespace.
	Target(skiffNamespace string) (string, error)
	// All lists every Kubernetes namespace Target may name now: adoption
	// and orphan removal look in each (and in Config.Namespace).
	All() ([]string, error)
}

// DefaultConfig returns a Config for client with the defaults.
func DefaultConfig(client kubernetes.Interface) Config {
	return Config{
		Client: client, Namespace: DefaultNamespace, Instance: DefaultInstance,
		GPUResource: DefaultGPUResource, AcceleratorLabel: DefaultAcceleratorLabel,
		GracePeriod: DefaultGracePeriod, ImagePullTimeout: DefaultImagePullTimeout,
		Logger: slog.Default(), Clock: time.Now,
	}
}

// Validate reports every bad field.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, fmt.Errorf("kube: config: %s: %s", field, fmt.Sprintf(format, a...)))
	}
	if c.Client == nil {
		bad("Client", "must not be nil")
	}
	if c.Namespace != "" {
		if m := validation.IsDNS1123Label(c.Namespace); len(m) > 0 {
			bad("Namespace", "%q: %s", c.Namespace, m[0])
		}
	}
	if c.Instance != "" {
		if m := validation.IsValidLabelValue(c.Instance); len(m) > 0 {
			bad("Instance", "%q: %s", c.Instance, m[0])
		}
	}
	if c.GPUResource != "" {
		if m := validation.IsQualifiedName(c.GPUResource); len(m) > 0 {
			bad("GPUResource", "%q: %s", c.GPUResource, m[0])
		}
	}
	if c.AcceleratorLabel != "" {
		if m := validation.IsQualifiedName(c.AcceleratorLabel); len(m) > 0 {
			bad("AcceleratorLabel", "%q: %s", c.AcceleratorLabel, m[0])
		}
	}
	if c.ServiceAccount != "" {
		if m := validation.IsDNS1123Subdomain(c.ServiceAccount); len(m) > 0 {
			bad("ServiceAccount", "%q: %s", c.ServiceAccount, m[0])
		}
	}
	switch c.ImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullNever, corev1.PullIfNotPresent:
	default:
		bad("ImagePullPolicy", "%q is not one of Always, Never, IfNotPresent", c.ImagePullPolicy)
	}
	if c.GracePeriod < 0 {
		bad("GracePeriod", "must not be negative, got %s", c.GracePeriod)
	}
	if c.Launcher != nil {
		if err := c.Launcher.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.ImagePullTimeout < 0 {
		bad("ImagePullTimeout", "must not be negative, got %s", c.ImagePullTimeout)
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Instance == "" {
		c.Instance = DefaultInstance
	}
	if c.GPUResource == "" {
		c.GPUResource = DefaultGPUResource
	}
	if c.AcceleratorLabel == "" {
		c.AcceleratorLabel = DefaultAcceleratorLabel
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	if c.ImagePullTimeout == 0 {
		c.ImagePullTimeout = DefaultImagePullTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// quantity parses a Kubernetes quantity for field.
func quantity(field, s string) (resource.Quantity, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return q, fmt.Errorf("%s: %q is not a quantity (e.g. 1Gi, 500m)", field, s)
	}
	return q, nil
}
