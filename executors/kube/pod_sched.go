package kube

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// scheduling applies the node selector and tolerations.
func (b *podBuilder) scheduling() error {
	if ns := b.set.NodeSelector; ns != nil {
		labels := ns.Labels
		if ns.NodeSelectorJSON != nil {
			labels = nil
			if err := ns.NodeSelectorJSON.constantJSON("kubernetes.nodeSelector.nodeSelectorJson", &labels); err != nil {
				return err
			}
		}
		for _, k := range sortedKeys(labels) {
			f := "kubernetes.nodeSelector.labels." + k
			if msg := validation.IsQualifiedName(k); len(msg) > 0 {
				return fmt.Errorf("%s: %s", f, msg[0])
			}
			if msg := validation.IsValidLabelValue(labels[k]); len(msg) > 0 {
				return fmt.Errorf("%s: %q: %s", f, labels[k], msg[0])
			}
			b.nodeSelector()[k] = labels[k]
		}
	}
	for i, t := range b.set.Tolerations {
		f := fmt.Sprintf("kubernetes.tolerations[%d]", i)
		var tol corev1.Toleration
		if t.TolerationJSON != nil {
			if err := t.TolerationJSON.constantJSON(f+".tolerationJson", &tol); err != nil {
				return err
			}
		} else {
			tol = corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator),
				Value: t.Value, Effect: corev1.TaintEffect(t.Effect)}
			if t.TolerationSeconds != nil {
				secs := int64(*t.TolerationSeconds)
				tol.TolerationSeconds = &secs
			}
		}
		switch tol.Operator {
		case "", corev1.TolerationOpEqual, corev1.TolerationOpExists:
		default:
			return fmt.Errorf("%s.operator: %q is not Equal or Exists", f, tol.Operator)
		}
		switch tol.Effect {
		case "", corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return fmt.Errorf("%s.effect: %q is not NoSchedule, PreferNoSchedule or NoExecute", f, tol.Effect)
		}
		b.pod.Spec.Tolerations = append(b.pod.Spec.Tolerations, tol)
	}
	return nil
}

// affinity applies node and pod (anti-)affinity: a term with a weight is
// preferred, one without is required.
func (b *podBuilder) affinity() error {
	var na *corev1.NodeAffinity
	for i, t := range b.set.NodeAffinity {
		f := fmt.Sprintf("kubernetes.nodeAffinity[%d]", i)
		if na == nil {
			na = &corev1.NodeAffinity{}
		}
		if t.NodeAffinityJSON != nil {
			var whole corev1.NodeAffinity
			if err := t.NodeAffinityJSON.constantJSON(f+".nodeAffinityJson", &whole); err != nil {
				return err
			}
			if r := whole.RequiredDuringSchedulingIgnoredDuringExecution; r != nil {
				na.RequiredDuringSchedulingIgnoredDuringExecution = required(na)
				na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(
					na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, r.NodeSelectorTerms...)
			}
			na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
				whole.PreferredDuringSchedulingIgnoredDuringExecution...)
			continue
		}
		term := corev1.NodeSelectorTerm{}
		var err error
		if term.MatchExpressions, err = nodeRequirements(f+".matchExpressions", t.MatchExpressions); err != nil {
			return err
		}
		if term.MatchFields, err = nodeRequirements(f+".matchFields", t.MatchFields); err != nil {
			return err
		}
		if t.Weight != nil {
			if *t.Weight < 1 || *t.Weight > 100 {
				return fmt.Errorf("%s.weight: %d is not in 1..100", f, *t.Weight)
			}
			na.PreferredDuringSchedulingIgnoredDuringExecution = append(na.PreferredDuringSchedulingIgnoredDuringExecution,
				corev1.PreferredSchedulingTerm{Weight: *t.Weight, Preference: term})
			continue
		}
		na.RequiredDuringSchedulingIgnoredDuringExecution = required(na)
		na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms = append(
			na.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms, term)
	}
	var pa, anti *corev1.PodAffinity
	for i, t := range b.set.PodAffinity {
		f := fmt.Sprintf("kubernetes.podAffinity[%d]", i)
		if t.TopologyKey == "" {
			return fmt.Errorf("%s.topologyKey: required", f)
		}
		term := corev1.PodAffinityTerm{TopologyKey: t.TopologyKey, Namespaces: t.Namespaces}
		var err error
		if term.LabelSelector, err = labelSelector(f+".matchPodExpressions", t.MatchPodLabels, t.MatchPodExpressions); err != nil {
			return err
		}
		if len(t.MatchNamespaceLabels) > 0 || len(t.MatchNamespaceExpressions) > 0 {
			if term.NamespaceSelector, err = labelSelector(f+".matchNamespaceExpressions", t.MatchNamespaceLabels, t.MatchNamespaceExpressions); err != nil {
				return err
			}
		}
		target := &pa
		if t.Anti != nil && *t.Anti {
			target = &anti
		}
		if *target == nil {
			*target = &corev1.PodAffinity{}
		}
		if t.Weight != nil {
			if *t.Weight < 1 || *t.Weight > 100 {
				return fmt.Errorf("%s.weight: %d is not in 1..100", f, *t.Weight)
			}
			(*target).PreferredDuringSchedulingIgnoredDuringExecution = append((*target).PreferredDuringSchedulingIgnoredDuringExecution,
				corev1.WeightedPodAffinityTerm{Weight: *t.Weight, PodAffinityTerm: term})
		} else {
			(*target).RequiredDuringSchedulingIgnoredDuringExecution = append((*target).RequiredDuringSchedulingIgnoredDuringExecution, term)
		}
	}
	if na == nil && pa == nil && anti == nil {
		return nil
	}
	aff := &corev1.Affinity{NodeAffinity: na, PodAffinity: pa}
	if anti != nil {
		aff.PodAntiAffinity = &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution:  anti.RequiredDuringSchedulingIgnoredDuringExecution,
			PreferredDuringSchedulingIgnoredDuringExecution: anti.PreferredDuringSchedulingIgnoredDuringExecution,
		}
	}
	b.pod.Spec.Affinity = aff
	return nil
}

func required(na *corev1.NodeAffinity) *corev1.NodeSelector {
	if na.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		return na.RequiredDuringSchedulingIgnoredDuringExecution
	}
	return &corev1.NodeSelector{}
}

func nodeRequirements(field string, reqs []SelectorRequirement) ([]corev1.NodeSelectorRequirement, error) {
	var out []corev1.NodeSelectorRequirement
	for i, r := range reqs {
		op := corev1.NodeSelectorOperator(r.Operator)
		switch op {
		case corev1.NodeSelectorOpIn, corev1.NodeSelectorOpNotIn, corev1.NodeSelectorOpExists,
			corev1.NodeSelectorOpDoesNotExist, corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
		default:
			return nil, fmt.Errorf("%s[%d].operator: %q is not In, NotIn, Exists, DoesNotExist, Gt or Lt", field, i, r.Operator)
		}
		if r.Key == "" {
			return nil, fmt.Errorf("%s[%d].key: required", field, i)
		}
		out = append(out, corev1.NodeSelectorRequirement{Key: r.Key, Operator: op, Values: r.Values})
	}
	return out, nil
}

func labelSelector(field string, labels map[string]string, reqs []SelectorRequirement) (*metav1.LabelSelector, error) {
	sel := &metav1.LabelSelector{MatchLabels: labels}
	for i, r := range reqs {
		op := metav1.LabelSelectorOperator(r.Operator)
		switch op {
		case metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist:
		default:
			return nil, fmt.Errorf("%s[%d].operator: %q is not In, NotIn, Exists or DoesNotExist", field, i, r.Operator)
		}
		if r.Key == "" {
			return nil, fmt.Errorf("%s[%d].key: required", field, i)
		}
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{Key: r.Key, Operator: op, Values: r.Values})
	}
	return sel, nil
}

// pullSettings applies the image pull policy, secrets and deadline.
func (b *podBuilder) pullSettings() error {
	switch p := corev1.PullPolicy(b.set.ImagePullPolicy); p {
	case "":
	case corev1.PullAlways, corev1.PullNever, corev1.PullIfNotPresent:
		b.main.ImagePullPolicy = p
	default:
		return fmt.Errorf("kubernetes.imagePullPolicy: %q is not one of Always, Never, IfNotPresent", p)
	}
	for i, ps := range b.set.ImagePullSecret {
		f := fmt.Sprintf("kubernetes.imagePullSecret[%d]", i)
		n, err := name(f, ps.SecretName, ps.SecretNameParameter, "secretNameParameter")
		if err != nil {
			return err
		}
		b.pod.Spec.ImagePullSecrets = append(b.pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: n})
	}
	if d := b.set.ActiveDeadlineSeconds; d != nil {
		secs := int64(*d)
		switch {
		case secs < 0:
			return fmt.Errorf("kubernetes.activeDeadlineSeconds: must not be negative, got %d", secs)
		case secs == 0:
		case b.pod.Spec.ActiveDeadlineSeconds == nil || secs < *b.pod.Spec.ActiveDeadlineSeconds:
			b.pod.Spec.ActiveDeadlineSeconds = &secs
		}
	}
	return nil
}

func (b *podBuilder) securityContext() error {
	sc := b.set.SecurityContext
	if sc == nil {
		return nil
	}
	c := &corev1.SecurityContext{RunAsNonRoot: sc.RunAsNonRoot}
	if sc.RunAsUser != nil {
		if *sc.RunAsUser < 0 {
			return fmt.Errorf("kubernetes.securityContext.runAsUser: must not be negative, got %d", *sc.RunAsUser)
		}
		u := int64(*sc.RunAsUser)
		c.RunAsUser = &u
	}
	if sc.RunAsGroup != nil {
		if *sc.RunAsGroup < 0 {
			return fmt.Errorf("kubernetes.securityContext.runAsGroup: must not be negative, got %d", *sc.RunAsGroup)
		}
		g := int64(*sc.RunAsGroup)
		c.RunAsGroup = &g
	}
	b.main.SecurityContext = c
	return nil
}

// claims applies dynamic resource allocation claims.
func (b *podBuilder) claims() error {
	for i, rc := range b.set.PodResourceClaims {
		f := fmt.Sprintf("kubernetes.podResourceClaims[%d]", i)
		claim := corev1.PodResourceClaim{Name: fmt.Sprintf("kfp-claim-%d", i)}
		if rc.ResourceClaimJSON != nil {
			if err := rc.ResourceClaimJSON.constantJSON(f+".resourceClaimJson", &claim); err != nil {
				return err
			}
		} else if rc.ResourceClaimTemplateName != "" {
			n := rc.ResourceClaimTemplateName
			claim.ResourceClaimTemplateName = &n
		} else {
			return fmt.Errorf("%s.resourceClaimTemplateName: required", f)
		}
		if msg := validation.IsDNS1123Label(claim.Name); len(msg) > 0 {
			return fmt.Errorf("%s: claim name %q: %s", f, claim.Name, msg[0])
		}
		b.pod.Spec.ResourceClaims = append(b.pod.Spec.ResourceClaims, claim)
		b.main.Resources.Claims = append(b.main.Resources.Claims, corev1.ResourceClaim{Name: claim.Name})
	}
	return nil
}

// initContainers adds the step's init containers; their volume mounts
// must name volumes the pod has.
func (b *podBuilder) initContainers() error {
	names := map[string]bool{ContainerName: true}
	for i, ic := range b.set.InitContainers {
		f := fmt.Sprintf("kubernetes.initContainers[%d]", i)
		if msg := validation.IsDNS1123Label(ic.Name); len(msg) > 0 {
			return fmt.Errorf("%s.name: %q: %s", f, ic.Name, msg[0])
		}
		if names[ic.Name] || ic.Name == "kfp-launcher" {
			return fmt.Errorf("%s.name: %q is taken", f, ic.Name)
		}
		names[ic.Name] = true
		if ic.Image == "" {
			return fmt.Errorf("%s.image: required", f)
		}
		c := corev1.Container{Name: ic.Name, Image: ic.Image, Command: ic.Command, Args: ic.Args}
		for j, ev := range ic.Env {
			if ev.Name == "" {
				return fmt.Errorf("%s.env[%d].name: required", f, j)
			}
			c.Env = append(c.Env, corev1.EnvVar{Name: ev.Name, Value: ev.Value})
		}
		for j, vm := range ic.VolumeMounts {
			if !b.volumes[vm.VolumeName] {
				return fmt.Errorf("%s.volumeMounts[%d].volumeName: no volume %q in the pod", f, j, vm.VolumeName)
			}
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: vm.VolumeName, MountPath: vm.MountPath})
		}
		if rp := ic.RestartPolicy; rp != nil {
			if *rp != string(corev1.ContainerRestartPolicyAlways) {
				return fmt.Errorf("%s.restartPolicy: %q: only Always is supported", f, *rp)
			}
			always := corev1.ContainerRestartPolicyAlways
			c.RestartPolicy = &always
		}
		if r := ic.Resources; r != nil {
			for _, part := range []struct {
				field string
				in    map[string]string
				out   *corev1.ResourceList
			}{{"requests", r.Requests, &c.Resources.Requests}, {"limits", r.Limits, &c.Resources.Limits}} {
				for _, k := range sortedKeys(part.in) {
					q, err := quantity(fmt.Sprintf("%s.resources.%s.%s", f, part.field, k), part.in[k])
					if err != nil {
						return err
					}
					if *part.out == nil {
						*part.out = corev1.ResourceList{}
					}
					(*part.out)[corev1.ResourceName(k)] = q
				}
			}
		}
		b.pod.Spec.InitContainers = append(b.pod.Spec.InitContainers, c)
	}
	return nil
}
