package kfp

import (
	"errors"
	"strings"
	"testing"

	"github.com/skiffml/skiff/engine/spec"
)

// minimalIR is a one-step pipeline that echoes its parameter.
const minimalIR = `
pipelineInfo: {name: echo}
components:
  comp-echo:
    executorLabel: exec-echo
    inputDefinitions:
      parameters:
        msg: {parameterType: STRING}
deploymentSpec:
  executors:
    exec-echo:
      container:
        image: alpine
        command: [echo, "{{$.inputs.parameters['msg']}}"]
root:
  dag:
    tasks:
      echo:
        componentRef: {name: comp-echo}
        taskInfo: {name: echo}
        inputs:
          parameters:
            msg: {componentInputParameter: message}
  inputDefinitions:
    parameters:
      message: {parameterType: STRING, defaultValue: hi}
schemaVersion: 2.1.0
sdkVersion: kfp-2.14.6
`

func fieldErrors(t *testing.T, err error) []spec.FieldError {
	t.Helper()
	var ve *spec.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *spec.ValidationError", err, err)
	}
	return ve.Errors
}

// requireFieldError fails t unless err is a *spec.ValidationError with an
// error at path whose message holds msg.
func requireFieldError(t *testing.T, err error, path, msg string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted, want an error")
	}
	if errs := fieldErrors(t, err); !hasError(errs, path, msg) {
		t.Fatalf("errors %v lack %s: %s", errs, path, msg)
	}
}

func hasError(errs []spec.FieldError, path, msg string) bool {
	for _, e := range errs {
		if e.Path == path && strings.Contains(e.Msg, msg) {
			return true
		}
	}
	return false
}

func TestParse_RejectsNamingThePath(t *testing.T) {
	cases := []struct {
		name, edit, path, msg string
	}{
		{"unknown top-level field", "bogus: 1\n", "bogus", "unknown field"},
		{"unknown container field", "", "deploymentSpec.executors.exec-echo.container.imag", "unknown field"},
		{"unsupported resolver", "", "deploymentSpec.executors.exec-echo.resolver", "unsupported: resolver executors"},
		{"wrong kind", "", "root.dag.tasks.echo.dependentTasks", "expected a list"},
		{"no name", "", "pipelineInfo.name", "required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := minimalIR + tc.edit
			switch tc.name {
			case "unknown container field":
				doc = strings.Replace(doc, "image: alpine", "imag: alpine", 1)
			case "unsupported resolver":
				doc = strings.Replace(doc, "      container:\n", "      resolver: {outputArtifactQueries: {}}\n      container:\n", 1)
			case "wrong kind":
				doc = strings.Replace(doc, "taskInfo: {name: echo}", "taskInfo: {name: echo}\n        dependentTasks: x", 1)
			case "no name":
				doc = strings.Replace(doc, "pipelineInfo: {name: echo}", "pipelineInfo: {displayName: echo}", 1)
			}
			_, _, err := Parse([]byte(doc), Options{})
			requireFieldError(t, err, tc.path, tc.msg)
		})
	}
}

func TestParse_LenientWarnsAndDrops(t *testing.T) {
	doc := strings.Replace(minimalIR, "image: alpine", "image: alpine\n        futureField: 3", 1) + `---
platforms:
  kubernetes:
    deploymentSpec:
      executors:
        exec-echo:
          futureSetting: 1
          secretAsEnv:
          - secretName: s
            keyToEnv: [{secretKey: k, envVar: K}]
`
	if _, _, err := Parse([]byte(doc), Options{}); err == nil {
		t.Fatal("strict parse accepted unknown fields")
	} else if errs := fieldErrors(t, err); len(errs) != 2 ||
		!hasError(errs, "platforms.kubernetes.deploymentSpec.executors.exec-echo.futureSetting", "unknown field") ||
		!hasError(errs, "deploymentSpec.executors.exec-echo.container.futureField", "unknown field") {
		t.Fatalf("errors: %v, want the two unknown fields only", errs)
	}
	plan, warns, err := Load([]byte(doc), "", Options{Lenient: true})
	if err != nil {
		t.Fatalf("lenient load: %v", err)
	}
	var ignored int
	for _, w := range warns {
		if strings.HasSuffix(w.Msg, "(ignored)") {
			ignored++
		}
	}
	if len(warns) != 3 || ignored != 2 {
		t.Fatalf("warnings = %v, want the two ignored fields and the kept secret", warns)
	}
	if plan.Name != "echo" || len(plan.Tasks) != 1 {
		t.Fatalf("plan = %+v", plan)
	}
	if got, want := string(plan.Tasks[0].Kubernetes), `{"secretAsEnv":[{"keyToEnv":[{"envVar":"K","secretKey":"k"}],"secretName":"s"}]}`; got != want {
		t.Errorf("Kubernetes = %s, want %s", got, want)
	}
}

func TestParse_DocumentCount(t *testing.T) {
	if _, _, err := Parse([]byte(""), Options{}); err == nil {
		t.Error("empty file parsed")
	}
	three := minimalIR + "---\nplatforms: {}\n---\nplatforms: {}\n"
	if _, _, err := Parse([]byte(three), Options{}); err == nil || !strings.Contains(err.Error(), "3 YAML documents") {
		t.Errorf("three documents: %v", err)
	}
	if _, _, err := Parse([]byte("platforms: {}\n---\n"+minimalIR), Options{}); err == nil || !strings.Contains(err.Error(), "PipelineSpec must come first") {
		t.Errorf("platform first: %v", err)
	}
}

func TestLoad_DetectsTheFormat(t *testing.T) {
	plan, _, err := Load([]byte(minimalIR), "", Options{})
	if err != nil || plan.Tasks[0].Protocol != spec.ProtocolKFP {
		t.Fatalf("IR: %v, %+v", err, plan)
	}
	skiff := "name: s\ntasks:\n  - name: a\n    command: [echo, hi]\n"
	plan, _, err = Load([]byte(skiff), "", Options{})
	if err != nil || plan.Tasks[0].Protocol != "" {
		t.Fatalf("Skiff YAML: %v, %+v", err, plan)
	}
	if IsIR([]byte(skiff)) || !IsIR([]byte(minimalIR)) {
		t.Error("IsIR is wrong")
	}
}

func TestLoad_RootParametersAreTypedAndRequired(t *testing.T) {
	doc := strings.Replace(minimalIR, "message: {parameterType: STRING, defaultValue: hi}", "message: {parameterType: STRING}\n      n: {parameterType: NUMBER_INTEGER, defaultValue: 3}", 1)
	plan, _, err := Load([]byte(doc), "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plan.ResolveParams(map[string]string{}); err == nil || !strings.Contains(err.Error(), "parameters.message") {
		t.Errorf("missing required parameter: %v", err)
	}
	if _, err := plan.ResolveParams(map[string]string{"message": "x", "n": "abc"}); err == nil || !strings.Contains(err.Error(), "parameters.n") {
		t.Errorf("wrong type: %v", err)
	}
	vals, err := plan.ResolveParams(map[string]string{"message": "x"})
	if err != nil || string(vals["n"]) != "3" {
		t.Errorf("default: %v, %s", err, vals["n"])
	}
}
