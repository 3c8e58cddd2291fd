package kube

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Labels and annotations of every pod of this executor.
const (
	LabelManaged   = "skiff.io/managed" // "true"
	LabelInstance  = "skiff.io/instance"
	LabelExecution = "skiff.io/execution" // the id, or "h-" and its hash when the id is no label value
	LabelRun       = "skiff.io/run"
	LabelTask      = "skiff.io/task" // the task name made a label value
	LabelTaskIndex = "skiff.io/task-index"
	LabelAttempt   = "skiff.io/attempt"
	LabelNamespace = "skiff.io/namespace" // the run's Skiff namespace, when the spec names one

	AnnotationExecution = "skiff.io/execution" // the execution id as given
	AnnotationRun       = "skiff.io/run"
	AnnotationTask      = "skiff.io/task"
	AnnotationNamespace = "skiff.io/namespace"
)

// ContainerName is the name of the container that runs the step.
const ContainerName = "main"

// maxPodName keeps pod names valid as DNS labels (hostnames).
const maxPodName = validation.DNS1123LabelMaxLength

// PodName is the deterministic pod name of execution id: "skiff-", the id
// made DNS-1123-safe (lower case, [a-z0-9-]) and cut to fit, and a hash of
// the exact id, so two ids never share a name and a retry after a restart
// finds the pod its earlier try created.
func PodName(id string) string {
	sum := sha256.Sum256([]byte(id))
	suffix := hex.EncodeToString(sum[:])[:10]
	safe := dnsSafe(id)
	if room := maxPodName - len("skiff-") - 1 - len(suffix); len(safe) > room {
		safe = strings.TrimRight(safe[:room], "-")
	}
	if safe == "" {
		return "skiff-" + suffix
	}
	return "skiff-" + safe + "-" + suffix
}

// dnsSafe lower-cases s and replaces every other character than [a-z0-9]
// by "-", collapsing runs, without a leading or trailing "-".
func dnsSafe(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		} else {
			dash = true
		}
	}
	return b.String()
}

// labelValue returns s when it is a valid label value, else a value made
// from it: its safe form cut to fit, with a hash of s.
func labelValue(s string) string {
	if len(validation.IsValidLabelValue(s)) == 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	suffix := hex.EncodeToString(sum[:])[:10]
	safe := dnsSafe(s)
	if room := validation.LabelValueMaxLength - 1 - len(suffix); len(safe) > room {
		safe = strings.TrimRight(safe[:room], "-")
	}
	if safe == "" {
		return "h-" + suffix
	}
	return safe + "-" + suffix
}
