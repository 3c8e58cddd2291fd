package kfp

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// Skiff names are at most 63 characters: task names of a-z, 0-9, '-' and
// '_' (starting with a letter or digit), input, output and parameter
// names of letters, digits, '_' and '-' (starting with a letter or '_').
// KFP names are kept when they fit; others are mapped to a name that does,
// with a hash of the original so that distinct KFP names stay distinct.
// The KFP name itself travels in Task.KFP and is what the step sees.
const maxName = 63

// identName maps a KFP input, output or parameter name to a Skiff one.
func identName(s string) string {
	ok := s != "" && len(s) <= maxName
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c == '-' || c >= '0' && c <= '9')
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.WriteByte('_')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
		} else {
			b.WriteByte('_')
		}
	}
	return withHash(b.String(), s)
}

// taskName maps a KFP task name to a Skiff one.
func taskName(s string) string {
	ok := s != "" && len(s) <= maxName
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
	}
	if ok {
		return s
	}
	var b strings.Builder
	b.WriteByte('t')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			b.WriteByte(c + 'a' - 'A')
		case c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			b.WriteByte(c)
		default:
			b.WriteByte('-')
		}
	}
	return withHash(b.String(), s)
}

// withHash appends "-" and 8 hex digits of the hash of orig to base,
// truncating base to keep within maxName.
func withHash(base, orig string) string {
	sum := sha256.Sum256([]byte(orig))
	h := hex.EncodeToString(sum[:4])
	if len(base) > maxName-9 {
		base = base[:maxName-9]
	}
	return base + "-" + h
}

// Parameter types of the IR.
const (
	irString  = "STRING"
	irInt     = "NUMBER_INTEGER"
	irDouble  = "NUMBER_DOUBLE"
	irBool    = "BOOLEAN"
	irList    = "LIST"
	irStruct  = "STRUCT"
	irStatus  = "TASK_FINAL_STATUS"
	irUnknown = "PARAMETER_TYPE_ENUM_UNSPECIFIED"
)

var paramTypes = map[string]spec.Type{
	irString: spec.TypeString, irInt: spec.TypeInt, irDouble: spec.TypeFloat,
	irBool: spec.TypeBool, irList: spec.TypeList, irStruct: spec.TypeObject,
	irStatus: spec.TypeObject,
	// schema 2.0.0 primitive types
	"INT": spec.TypeInt, "DOUBLE": spec.TypeFloat,
}

// irParamType is the IR type of a parameter spec: parameterType, or the
// schema 2.0.0 type mapped to its newer name.
func irParamType(p *ParameterSpec) string {
	switch {
	case p.ParameterType != "":
		return p.ParameterType
	case p.Type == "INT":
		return irInt
	case p.Type == "DOUBLE":
		return irDouble
	}
	return p.Type
}

var artifactTypes = map[string]spec.Type{
	"system.Artifact":              spec.TypeArtifact,
	"system.Dataset":               spec.TypeDataset,
	"system.Model":                 spec.TypeModel,
	"system.Metrics":               spec.TypeMetrics,
	"system.ClassificationMetrics": spec.TypeClassificationMetrics,
	"system.HTML":                  spec.TypeHTML,
	"system.Markdown":              spec.TypeMarkdown,
}

// artifactType maps an artifact type schema to a Skiff type: the system
// types to theirs, any other (google.VertexModel, system.SlicedClassification
// Metrics, ...) to the generic Artifact.
func artifactType(s *ArtifactTypeSchema) spec.Type {
	if s == nil {
		return spec.TypeArtifact
	}
	if t, ok := artifactTypes[s.SchemaTitle]; ok {
		return t
	}
	return spec.TypeArtifact
}
