package spec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestFinalize_KubernetesSettingsBelongToSteps: a step may carry Kubernetes
// settings; a group, which runs no container, may not.
func TestFinalize_KubernetesSettingsBelongToSteps(t *testing.T) {
	kube := json.RawMessage(`{"tolerations":[{"key":"gpu"}]}`)
	step := &Plan{Name: "p", Tasks: []Task{{Name: "a", Command: []string{"true"}, Kubernetes: kube}}}
	if err := step.Finalize(); err != nil {
		t.Fatalf("a step with Kubernetes settings: %v", err)
	}
	group := &Plan{Name: "p", Tasks: []Task{{Name: "g", Kubernetes: kube,
		Body: &Plan{Tasks: []Task{{Name: "a", Command: []string{"true"}}}}}}}
	err := group.Finalize()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("a group with Kubernetes settings: %v, want a *ValidationError", err)
	}
	for _, fe := range ve.Errors {
		if strings.HasSuffix(fe.Path, ".kubernetes") && strings.Contains(fe.Msg, "remove kubernetes") {
			return
		}
	}
	t.Errorf("errors %v lack one at kubernetes", ve.Errors)
}
