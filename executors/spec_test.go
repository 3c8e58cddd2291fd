package executors

import (
	"errors"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

func TestCheckSpec_NamesTheBadField(t *testing.T) {
	cases := map[string]struct {
		s    *Spec
		want string
	}{
		"nil":              {nil, "nil spec"},
		"negative timeout": {&Spec{Timeout: -1}, "timeout"},
		"negative cpu":     {&Spec{Resources: spec.Resources{MilliCPU: -1}}, "resources"},
		"escaping input":   {&Spec{Inputs: []ArtifactInput{{Name: "../x"}}}, "inputs[0].name"},
		"absolute output":  {&Spec{Outputs: []OutputSpec{{Name: "/etc/x", Type: spec.TypeInt}}}, "outputs[0].name"},
		"unknown type":     {&Spec{Outputs: []OutputSpec{{Name: "x", Type: "Blob"}}}, "outputs[0].type"},
		"bad env name":     {&Spec{Env: []spec.EnvVar{{Name: "A=B"}}}, "env[0].name"},
	}
	for name, tc := range cases {
		err := CheckSpec(tc.s)
		if !errors.Is(err, ErrBadSpec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrBadSpec naming %q", name, err, tc.want)
		}
	}
	if err := CheckSpec(&Spec{ID: "x", Outputs: []OutputSpec{{Name: "o", Type: spec.TypeModel}}}); err != nil {
		t.Errorf("good spec: %v", err)
	}
}
