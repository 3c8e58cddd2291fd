package kube

import (
	"encoding/json"
	"errors"
	"regexp"
	"testing"

	"github.com/skiffml/skiff/executors"
)

func regexpMust(s string) *regexp.Regexp { return regexp.MustCompile(s) }

// FuzzBuildPod: no settings text panics the parser or the pod builder;
// a refusal wraps ErrBadSpec; an accepted pod keeps Skiff's labels.
func FuzzBuildPod(f *testing.F) {
	f.Add(`{"secretAsVolume":[{"secretName":"a","mountPath":"/a"}]}`)
	f.Add(`{"tolerations":[{"tolerationJson":{"runtimeValue":{"constant":"{}"}}}]}`)
	f.Add(`{"nodeAffinity":[{"nodeAffinityJson":{"runtimeValue":{"constant":{}}}}]}`)
	f.Add(`{"activeDeadlineSeconds":"12"}`)
	f.Add(`null`)
	f.Add(`{"initContainers":[{"name":"i","image":"x","resources":{"limits":{"cpu":"1"}}}]}`)
	f.Fuzz(func(t *testing.T, kube string) {
		s := baseSpec()
		s.Kubernetes = json.RawMessage(kube)
		pod, err := BuildPod(Config{}, s)
		if err != nil {
			if !errors.Is(err, executors.ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
			return
		}
		if pod.Labels[LabelManaged] != "true" || pod.Annotations[AnnotationExecution] != s.ID {
			t.Fatalf("Skiff's labels lost: %v %v", pod.Labels, pod.Annotations)
		}
		if len(pod.Spec.Containers) != 1 || pod.Spec.Containers[0].Name != ContainerName {
			t.Fatalf("containers %+v", pod.Spec.Containers)
		}
	})
}
