package kfp

import (
	"bytes"

	"github.com/skiffml/skiff/engine/spec"
)

// irKeys are top-level keys only a KFP PipelineSpec has.
var irKeys = []string{"pipelineInfo", "deploymentSpec", "root", "components", "schemaVersion", "sdkVersion"}

// IsIR reports whether data looks like a compiled KFP pipeline (its first
// document has one of the PipelineSpec's top-level keys) rather than a
// Skiff YAML pipeline.
func IsIR(data []byte) bool {
	docs, err := spec.YAMLDocuments(data)
	if err != nil || len(docs) == 0 {
		return looksLikeIR(data)
	}
	m, ok := docs[0].(map[string]any)
	if !ok {
		return false
	}
	return IsIRDoc(m)
}

// IsIRDoc is IsIR for a decoded document.
func IsIRDoc(doc map[string]any) bool {
	for _, k := range irKeys {
		if _, ok := doc[k]; ok {
			return true
		}
	}
	return false
}

// looksLikeIR guesses from the text of a file that does not parse.
func looksLikeIR(data []byte) bool {
	for _, k := range irKeys {
		if bytes.Contains(data, []byte("\n"+k+":")) || bytes.HasPrefix(data, []byte(k+":")) || bytes.Contains(data, []byte(`"`+k+`"`)) {
			return true
		}
	}
	return false
}

// Load compiles a pipeline of either format: a compiled KFP pipeline (IR
// YAML or JSON, with an optional PlatformSpec) or a Skiff YAML pipeline.
// file is where data was read from ("" for none): Skiff sub-pipeline files
// are read relative to it. The plan is finalized. Warnings come from KFP
// pipelines only.
func Load(data []byte, file string, opts Options) (*spec.Plan, []Warning, error) {
	if !IsIR(data) {
		var p *spec.Plan
		var err error
		if file != "" {
			p, err = spec.ParseSkiffData(data, file)
		} else {
			p, err = spec.ParseSkiff(data)
		}
		return p, nil, err
	}
	doc, warns, err := Parse(data, opts)
	if err != nil {
		return nil, warns, err
	}
	plan, cwarns, err := Compile(doc, opts)
	return plan, append(warns, cwarns...), err
}
