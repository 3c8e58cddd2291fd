package kube

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffml/skiff/executors"
)

// rootVolume is the emptyDir holding the execution's work dir (PodRoot).
const rootVolume = "skiff-root"

// BuildPod returns the pod that runs s: cfg is the executor's config (its
// zero fields take the defaults). It does no I/O. A spec or kubernetes
// setting it cannot apply is an error wrapping executors.ErrBadSpec that
// names the field.
func BuildPod(cfg Config, s *executors.Spec) (*corev1.Pod, error) {
	cfg = cfg.withDefaults()
	if err := executors.CheckSpec(s); err != nil {
		return nil, err
	}
	set, err := ParseSettings(s.Kubernetes)
	if err != nil {
		return nil, executors.BadSpec("%v", err)
	}
	b := &podBuilder{cfg: cfg, s: s, set: set, volumes: map[string]bool{}}
	pod, err := b.build()
	if err != nil {
		return nil, executors.BadSpec("%v", err)
	}
	return pod, nil
}

type podBuilder struct {
	cfg     Config
	s       *executors.Spec
	set     *Settings
	volumes map[string]bool // names taken
	pod     *corev1.Pod
	main    *corev1.Container
}

func (b *podBuilder) build() (*corev1.Pod, error) {
	s := b.s
	image := s.Image
	if image == "" {
		image = b.cfg.DefaultImage
	}
	switch {
	case s.ID == "":
		return nil, fmt.Errorf("id: must not be empty")
	case image == "":
		return nil, fmt.Errorf("image: empty, and the kube executor has no default image")
	case len(s.Command) > 0 && s.Command[0] == "":
		return nil, fmt.Errorf("command[0]: must not be empty")
	case s.WorkingDir != "" && !strings.HasPrefix(s.WorkingDir, "/"):
		return nil, fmt.Errorf("workingDir: %q must be an absolute path", s.WorkingDir)
	}
	grace := int64(math.Ceil(b.cfg.GracePeriod.Seconds()))
	b.main = &corev1.Container{
		Name: ContainerName, Image: image, Command: s.Command, Args: s.Args,
		WorkingDir:      s.WorkingDir,
		ImagePullPolicy: b.cfg.ImagePullPolicy,
		VolumeMounts:    []corev1.VolumeMount{{Name: rootVolume, MountPath: PodRoot}},
	}
	if b.main.WorkingDir == "" {
		b.main.WorkingDir = PodRoot
	}
	for _, ev := range s.Env {
		b.main.Env = append(b.main.Env, corev1.EnvVar{Name: ev.Name, Value: ev.Value})
	}
	b.volumes[rootVolume] = true
	b.pod = &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: PodName(s.ID), Namespace: b.cfg.Namespace,
			Labels: map[string]string{
				LabelManaged: "true", LabelInstance: b.cfg.Instance,
				LabelExecution: labelValue(s.ID), LabelRun: labelValue(s.RunID),
				LabelTask: labelValue(s.Task), LabelTaskIndex: strconv.Itoa(s.TaskIndex),
				LabelAttempt: strconv.Itoa(s.Attempt),
			},
			Annotations: map[string]string{
				AnnotationExecution: s.ID, AnnotationRun: s.RunID, AnnotationTask: s.Task,
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: &grace,
			Volumes: []corev1.Volume{{Name: rootVolume,
				VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if s.Namespace != "" {
		b.pod.Labels[LabelNamespace] = labelValue(s.Namespace)
		b.pod.Annotations[AnnotationNamespace] = s.Namespace
	}
	if sa := b.cfg.ServiceAccount; sa != "" {
		b.pod.Spec.ServiceAccountName = sa
	} else {
		no := false
		b.pod.Spec.AutomountServiceAccountToken = &no
	}
	if s.Timeout > 0 {
		secs := int64(math.Ceil(s.Timeout.Seconds()))
		b.pod.Spec.ActiveDeadlineSeconds = &secs
	}
	if err := b.resources(); err != nil {
		return nil, err
	}
	for _, step := range []func() error{
		b.metadata, b.secrets, b.configMaps, b.fieldPaths, b.pvcs, b.emptyDirs,
		b.ephemeral, b.sharedMemory, b.scheduling, b.affinity, b.pullSettings,
		b.securityContext, b.claims, b.initContainers, b.launcher,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	b.pod.Spec.Containers = []corev1.Container{*b.main}
	return b.pod, nil
}

// resources maps the spec's resources: CPU and memory requests (memory
// also as the limit), GPUs as the limit of the GPU resource, an
// accelerator model as a node selector.
func (b *podBuilder) resources() error {
	r := b.s.Resources
	req, lim := corev1.ResourceList{}, corev1.ResourceList{}
	if r.MilliCPU > 0 {
		req[corev1.ResourceCPU] = *resource.NewMilliQuantity(r.MilliCPU, resource.DecimalSI)
	}
	if r.MemoryBytes > 0 {
		q := *resource.NewQuantity(r.MemoryBytes, resource.BinarySI)
		req[corev1.ResourceMemory], lim[corev1.ResourceMemory] = q, q
	}
	acc := strings.TrimSpace(r.Accelerator)
	gpuRes := b.cfg.GPUResource
	if strings.Contains(acc, "/") {
		if m := validation.IsQualifiedName(acc); len(m) > 0 {
			return fmt.Errorf("resources.accelerator: %q is not a resource name: %s", acc, m[0])
		}
		gpuRes = acc
	} else if acc != "" {
		v := acc
		if len(validation.IsValidLabelValue(v)) > 0 {
			return fmt.Errorf("resources.accelerator: %q cannot be a node label value", acc)
		}
		b.nodeSelector()[b.cfg.AcceleratorLabel] = v
	}
	if r.GPU > 0 {
		lim[corev1.ResourceName(gpuRes)] = *resource.NewQuantity(int64(r.GPU), resource.DecimalSI)
	}
	if len(req) > 0 {
		b.main.Resources.Requests = req
	}
	if len(lim) > 0 {
		b.main.Resources.Limits = lim
	}
	return nil
}

func (b *podBuilder) nodeSelector() map[string]string {
	if b.pod.Spec.NodeSelector == nil {
		b.pod.Spec.NodeSelector = map[string]string{}
	}
	return b.pod.Spec.NodeSelector
}

// metadata adds the step's pod labels and annotations; Skiff's own keys
// are reserved.
func (b *podBuilder) metadata() error {
	m := b.set.PodMetadata
	if m == nil {
		return nil
	}
	for _, k := range sortedKeys(m.Labels) {
		v, f := m.Labels[k], "kubernetes.podMetadata.labels."+k
		if err := checkMetaKey(f, k); err != nil {
			return err
		}
		if msg := validation.IsValidLabelValue(v); len(msg) > 0 {
			return fmt.Errorf("%s: %q: %s", f, v, msg[0])
		}
		b.pod.Labels[k] = v
	}
	for _, k := range sortedKeys(m.Annotations) {
		if err := checkMetaKey("kubernetes.podMetadata.annotations."+k, k); err != nil {
			return err
		}
		b.pod.Annotations[k] = m.Annotations[k]
	}
	return nil
}

func checkMetaKey(field, k string) error {
	if msg := validation.IsQualifiedName(k); len(msg) > 0 {
		return fmt.Errorf("%s: %s", field, msg[0])
	}
	if strings.HasPrefix(k, "skiff.io/") {
		return fmt.Errorf("%s: the skiff.io/ prefix is reserved for Skiff's own labels", field)
	}
	return nil
}

// addVolume adds v, mounted at path in the main container, checking that
// its name is free and the path absolute.
func (b *podBuilder) addVolume(field string, v corev1.Volume, mount corev1.VolumeMount) error {
	if msg := validation.IsDNS1123Label(v.Name); len(msg) > 0 {
		return fmt.Errorf("%s: volume name %q: %s", field, v.Name, msg[0])
	}
	if b.volumes[v.Name] {
		return fmt.Errorf("%s: volume name %q is used twice", field, v.Name)
	}
	if !strings.HasPrefix(mount.MountPath, "/") {
		return fmt.Errorf("%s.mountPath: %q must be an absolute path", field, mount.MountPath)
	}
	for _, m := range b.main.VolumeMounts {
		if m.MountPath == mount.MountPath {
			return fmt.Errorf("%s.mountPath: %q is mounted twice", field, mount.MountPath)
		}
	}
	b.volumes[v.Name] = true
	mount.Name = v.Name
	b.pod.Spec.Volumes = append(b.pod.Spec.Volumes, v)
	b.main.VolumeMounts = append(b.main.VolumeMounts, mount)
	return nil
}

func (b *podBuilder) addEnv(field string, ev corev1.EnvVar) error {
	if ev.Name == "" || strings.ContainsAny(ev.Name, "=\x00") {
		return fmt.Errorf("%s: %q is not a variable name", field, ev.Name)
	}
	b.main.Env = append(b.main.Env, ev)
	return nil
}

func (b *podBuilder) secrets() error {
	for i, sv := range b.set.SecretAsVolume {
		f := fmt.Sprintf("kubernetes.secretAsVolume[%d]", i)
		n, err := name(f, sv.SecretName, sv.SecretNameParameter, "secretNameParameter")
		if err != nil {
			return err
		}
		v := corev1.Volume{Name: fmt.Sprintf("kfp-secret-%d", i), VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: n, Optional: sv.Optional}}}
		if err := b.addVolume(f, v, corev1.VolumeMount{MountPath: sv.MountPath}); err != nil {
			return err
		}
	}
	for i, se := range b.set.SecretAsEnv {
		f := fmt.Sprintf("kubernetes.secretAsEnv[%d]", i)
		n, err := name(f, se.SecretName, se.SecretNameParameter, "secretNameParameter")
		if err != nil {
			return err
		}
		for j, ke := range se.KeyToEnv {
			kf := fmt.Sprintf("%s.keyToEnv[%d]", f, j)
			if ke.SecretKey == "" {
				return fmt.Errorf("%s.secretKey: required", kf)
			}
			ev := corev1.EnvVar{Name: ke.EnvVar, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: n}, Key: ke.SecretKey, Optional: se.Optional}}}
			if err := b.addEnv(kf+".envVar", ev); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *podBuilder) configMaps() error {
	for i, cv := range b.set.ConfigMapAsVolume {
		f := fmt.Sprintf("kubernetes.configMapAsVolume[%d]", i)
		n, err := name(f, cv.ConfigMapName, cv.ConfigMapNameParameter, "configMapNameParameter")
		if err != nil {
			return err
		}
		v := corev1.Volume{Name: fmt.Sprintf("kfp-configmap-%d", i), VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: n}, Optional: cv.Optional}}}
		if err := b.addVolume(f, v, corev1.VolumeMount{MountPath: cv.MountPath}); err != nil {
			return err
		}
	}
	for i, ce := range b.set.ConfigMapAsEnv {
		f := fmt.Sprintf("kubernetes.configMapAsEnv[%d]", i)
		n, err := name(f, ce.ConfigMapName, ce.ConfigMapNameParameter, "configMapNameParameter")
		if err != nil {
			return err
		}
		for j, ke := range ce.KeyToEnv {
			kf := fmt.Sprintf("%s.keyToEnv[%d]", f, j)
			if ke.ConfigMapKey == "" {
				return fmt.Errorf("%s.configMapKey: required", kf)
			}
			ev := corev1.EnvVar{Name: ke.EnvVar, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: n}, Key: ke.ConfigMapKey, Optional: ce.Optional}}}
			if err := b.addEnv(kf+".envVar", ev); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *podBuilder) fieldPaths() error {
	for i, fp := range b.set.FieldPathAsEnv {
		f := fmt.Sprintf("kubernetes.fieldPathAsEnv[%d]", i)
		if fp.FieldPath == "" {
			return fmt.Errorf("%s.fieldPath: required", f)
		}
		ev := corev1.EnvVar{Name: fp.Name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fp.FieldPath}}}
		if err := b.addEnv(f+".name", ev); err != nil {
			return err
		}
	}
	return nil
}

func (b *podBuilder) pvcs() error {
	for i, pm := range b.set.PVCMount {
		f := fmt.Sprintf("kubernetes.pvcMount[%d]", i)
		if pm.ComponentInputParameter != "" || len(pm.TaskOutputParameter) > 0 {
			return fmt.Errorf("%s: a claim named by a pipeline input or a task output is not supported by the kube executor: give a constant", f)
		}
		n, err := name(f, pm.Constant, pm.PVCNameParameter, "pvcNameParameter")
		if err != nil {
			return err
		}
		v := corev1.Volume{Name: fmt.Sprintf("kfp-pvc-%d", i), VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: n}}}
		if err := b.addVolume(f, v, corev1.VolumeMount{MountPath: pm.MountPath, SubPath: pm.SubPath}); err != nil {
			return err
		}
	}
	return nil
}

func (b *podBuilder) emptyDirs() error {
	for i, ed := range b.set.EmptyDirMounts {
		f := fmt.Sprintf("kubernetes.emptyDirMounts[%d]", i)
		src := &corev1.EmptyDirVolumeSource{}
		if ed.Medium != nil {
			switch m := corev1.StorageMedium(*ed.Medium); m {
			case corev1.StorageMediumDefault, corev1.StorageMediumMemory:
				src.Medium = m
			default:
				return fmt.Errorf("%s.medium: %q is not \"\" or Memory", f, *ed.Medium)
			}
		}
		if ed.SizeLimit != nil {
			q, err := quantity(f+".sizeLimit", *ed.SizeLimit)
			if err != nil {
				return err
			}
			src.SizeLimit = &q
		}
		v := corev1.Volume{Name: ed.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: src}}
		if err := b.addVolume(f, v, corev1.VolumeMount{MountPath: ed.MountPath}); err != nil {
			return err
		}
	}
	return nil
}

func (b *podBuilder) ephemeral() error {
	for i, ev := range b.set.GenericEphemeralVolume {
		f := fmt.Sprintf("kubernetes.genericEphemeralVolume[%d]", i)
		if ev.Size == "" {
			return fmt.Errorf("%s.size: required", f)
		}
		size, err := quantity(f+".size", ev.Size)
		if err != nil {
			return err
		}
		tmpl := &corev1.PersistentVolumeClaimTemplate{Spec: corev1.PersistentVolumeClaimSpec{
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: size}}}}
		for j, m := range ev.AccessModes {
			switch am := corev1.PersistentVolumeAccessMode(m); am {
			case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
				tmpl.Spec.AccessModes = append(tmpl.Spec.AccessModes, am)
			default:
				return fmt.Errorf("%s.accessModes[%d]: %q is not an access mode", f, j, m)
			}
		}
		if !ev.DefaultStorageClass {
			if ev.StorageClassName == "" {
				return fmt.Errorf("%s.storageClassName: required unless defaultStorageClass is true", f)
			}
			sc := ev.StorageClassName
			tmpl.Spec.StorageClassName = &sc
		}
		if md := ev.Metadata; md != nil {
			tmpl.ObjectMeta.Labels, tmpl.ObjectMeta.Annotations = md.Labels, md.Annotations
		}
		v := corev1.Volume{Name: ev.VolumeName, VolumeSource: corev1.VolumeSource{
			Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: tmpl}}}
		if err := b.addVolume(f, v, corev1.VolumeMount{MountPath: ev.MountPath}); err != nil {
			return err
		}
	}
	return nil
}

func (b *podBuilder) sharedMemory() error {
	sm := b.set.EnabledSharedMemory
	if sm == nil {
		return nil
	}
	f := "kubernetes.enabledSharedMemory"
	src := &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}
	if sm.Size != "" {
		q, err := quantity(f+".size", sm.Size)
		if err != nil {
			return err
		}
		src.SizeLimit = &q
	}
	n := sm.VolumeName
	if n == "" {
		n = "shm"
	}
	return b.addVolume(f, corev1.Volume{Name: n, VolumeSource: corev1.VolumeSource{EmptyDir: src}},
		corev1.VolumeMount{MountPath: "/dev/shm"})
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
