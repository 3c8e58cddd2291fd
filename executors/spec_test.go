package executors

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

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

// TestSpec_JSONOmitsWhatIsUnset: a spec is stored with every assignment
// (and read by its worker): the fields a step leaves unset are not
// written, and a spec reads back as it was written.
func TestSpec_JSONOmitsWhatIsUnset(t *testing.T) {
	bare := Spec{ID: "r-0-1", RunID: "r", Task: "t", TaskIndex: 0, Attempt: 1, Command: []string{"true"}}
	b, err := json.Marshal(bare)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"ID":"r-0-1","RunID":"r","Task":"t","TaskIndex":0,"Attempt":1,"Command":["true"]}`; string(b) != want {
		t.Errorf("bare spec encodes as\n %s\nwant\n %s", b, want)
	}
	full := Spec{ID: "r-1-2", RunID: "r", Task: "u", TaskIndex: 1, Attempt: 2, Namespace: "ns", Image: "img:1",
		Command: []string{"sh"}, Args: []string{"-c", "x"}, Env: []spec.EnvVar{{Name: "A", Value: "b"}}, WorkingDir: "/w",
		Inputs:    []ArtifactInput{{Name: "in", Ref: spec.ArtifactRef{Digest: "sha256:" + strings.Repeat("a", 64)}}},
		Outputs:   []OutputSpec{{Name: "out", Type: spec.TypeString}},
		Resources: spec.Resources{MilliCPU: 500, GPU: 1}, NodeSelector: map[string]string{"k": "v"}, Timeout: time.Minute,
		Kubernetes: json.RawMessage(`{"nodeSelector":{}}`), PipelineFiles: "ws"}
	if b, err = json.Marshal(full); err != nil {
		t.Fatal(err)
	}
	var back Spec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, full) {
		t.Errorf("spec read back as\n %+v\nwant\n %+v", back, full)
	}
}
