package launch

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// The launcher's environment: what the pod's main container gets.
const (
	EnvSpec  = "SKIFF_LAUNCH_SPEC"  // Spec as JSON
	EnvToken = "SKIFF_LAUNCH_TOKEN" // the execution's token
	EnvAPI   = "SKIFF_LAUNCH_API"   // the Skiff API's base URL
	// EnvTermination is where the report's reference is written
	// (default DefaultTerminationPath, Kubernetes' termination message).
	EnvTermination = "SKIFF_LAUNCH_TERMINATION"
)

// DefaultTerminationPath is Kubernetes' default termination message file.
const DefaultTerminationPath = "/dev/termination-log"

// Spec is what the launcher runs: the step's command with its root laid
// out under Root.
type Spec struct {
	Execution      string                    `json:"execution"`
	Root           string                    `json:"root"`
	Command        []string                  `json:"command"`
	Args           []string                  `json:"args,omitempty"`
	Inputs         []executors.ArtifactInput `json:"inputs,omitempty"`
	Outputs        []executors.OutputSpec    `json:"outputs,omitempty"`
	MaxOutputBytes int64                     `json:"max_output_bytes,omitempty"`
}

// ParseSpec reads the JSON of a Spec and checks it; errors name the field.
func ParseSpec(data []byte) (*Spec, error) {
	var s Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("launch: %s: %w", EnvSpec, err)
	}
	switch {
	case s.Execution == "":
		return nil, fmt.Errorf("launch: %s: execution: required", EnvSpec)
	case !path.IsAbs(s.Root) || path.Clean(s.Root) == "/":
		return nil, fmt.Errorf("launch: %s: root: %q must be an absolute path other than /", EnvSpec, s.Root)
	case len(s.Command) == 0 || s.Command[0] == "":
		return nil, fmt.Errorf("launch: %s: command: required", EnvSpec)
	}
	es := &executors.Spec{ID: s.Execution, Inputs: s.Inputs, Outputs: s.Outputs}
	if err := executors.CheckSpec(es); err != nil {
		return nil, fmt.Errorf("launch: %s: %w", EnvSpec, err)
	}
	for i, in := range s.Inputs {
		if !in.EmptyDir && !validDigest(in.Ref.Digest) {
			return nil, fmt.Errorf("launch: %s: inputs[%d].ref.digest: %q is not sha256:<64 hex>", EnvSpec, i, in.Ref.Digest)
		}
	}
	return &s, nil
}

func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Report is what the launcher reports of its execution, stored as a blob
// by the API and read by the executor through the termination message.
type Report struct {
	Execution string                `json:"execution"`
	ExitCode  int                   `json:"exit_code"`
	Reason    string                `json:"reason,omitempty"` // why it failed, when it did
	Outputs   map[string]spec.Value `json:"outputs,omitempty"`
	Logs      *spec.ArtifactRef     `json:"logs,omitempty"`
}

// Digests lists every blob the report names.
func (r *Report) Digests() []string {
	var ds []string
	for _, v := range r.Outputs {
		if v.Artifact != nil {
			ds = append(ds, v.Artifact.Digest)
		}
		for _, a := range v.Artifacts {
			ds = append(ds, a.Digest)
		}
	}
	if r.Logs != nil {
		ds = append(ds, r.Logs.Digest)
	}
	return ds
}

// ReportReceipt is the API's answer to a report: where it is stored and
// the signature the executor checks.
type ReportReceipt struct {
	Digest    string `json:"digest"`
	Signature string `json:"signature"`
}

const terminationPrefix = "skiff-report "

// Termination is the termination message naming a stored report.
func (r ReportReceipt) Termination() string {
	return terminationPrefix + r.Digest + " " + r.Signature
}

// ParseTermination reads a termination message written by Termination.
func ParseTermination(msg string) (ReportReceipt, bool) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(msg), terminationPrefix)
	d, sig, ok2 := strings.Cut(rest, " ")
	if !ok || !ok2 || !validDigest(d) || sig == "" || strings.ContainsAny(sig, " \n") {
		return ReportReceipt{}, false
	}
	return ReportReceipt{Digest: d, Signature: sig}, true
}
