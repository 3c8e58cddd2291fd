package kfp

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// KFP placeholders are `{{$...}}` inside a container's command and args
// (and f-string constants and resource values):
//
//	{{$}}                                         the ExecutorInput as JSON
//	{{$.inputs.parameters['x']}}                  a parameter's value as text
//	{{$.inputs.artifacts['x']}}                   the artifact list as JSON
//	{{$.inputs.artifacts['x'].uri}}, .path        where the artifact is
//	{{$.inputs.artifacts['x'].metadata}}          its metadata as JSON
//	{{$.inputs.artifacts['x'].metadata['k']}}     one metadata value
//	{{$.outputs.parameters['x'].output_file}}     where to write a parameter
//	{{$.outputs.artifacts['x'].uri}}, .path       where to write an artifact
//	{{$.outputs.artifacts['x'].metadata}}         its metadata (empty)
//	{{$.outputs.output_file}}                     the ExecutorOutput file
//	{{$.pipeline_job_name}}, {{$.pipeline_job_resource_name}},
//	{{$.pipeline_job_uuid}}, {{$.pipeline_task_name}},
//	{{$.pipeline_task_uuid}}, {{$.pipeline_root}}  the run and the task
//	{{$.pipeline_persistent_resource_id}}          "" (no Vertex AI persistent resource)
//	{{$.workspace_path}}                          the run's workspace directory
//	{{$.json_escape[N]}}                          the ExecutorInput JSON,
//	                                              escaped as a JSON string N times
//
// A whole argument may also be a JSON object {"IfPresent": {"InputName":
// x, "Then": [...], "Else": [...]}} (the Then items when input x has a
// value, else the Else items) or {"Concat": [...]} (its items joined into
// one argument); items may nest these.

// phKind is what a placeholder names.
type phKind uint8

const (
	phExecutorInput phKind = iota + 1
	phInParam
	phInArtifact
	phOutParam
	phOutArtifact
	phOutputFile
	phJob
	phJSONEscape
	phWorkspace
)

// placeholder is a parsed `{{$...}}`.
type placeholder struct {
	kind phKind
	name string // input or output name; the pipeline_* name for phJob
	attr string // artifacts: "", "uri", "path", "metadata"
	key  string // metadata['key']
	n    int    // json_escape[n]
}

var jobPlaceholders = map[string]bool{
	"pipeline_job_name": true, "pipeline_job_resource_name": true, "pipeline_job_uuid": true,
	"pipeline_task_name": true, "pipeline_task_uuid": true, "pipeline_root": true,
	"pipeline_persistent_resource_id": true,
}

// workspacePath is the placeholder of the run's workspace directory.
const workspacePath = "{{$.workspace_path}}"

// errUnsupportedPH marks a well-formed placeholder Skiff does not resolve
// (pipeline_google_cloud_project_id, ...).
var errUnsupportedPH = errors.New("unsupported placeholder")

// parsePlaceholder parses the text between `{{` and `}}`.
func parsePlaceholder(expr string) (placeholder, error) {
	bad := func() (placeholder, error) {
		return placeholder{}, fmt.Errorf("malformed placeholder {{%s}}", expr)
	}
	if expr == "$" {
		return placeholder{kind: phExecutorInput}, nil
	}
	rest, ok := strings.CutPrefix(expr, "$.")
	if !ok {
		return bad()
	}
	if jobPlaceholders[rest] {
		return placeholder{kind: phJob, name: rest}, nil
	}
	if rest == "outputs.output_file" {
		return placeholder{kind: phOutputFile}, nil
	}
	if rest == "workspace_path" {
		return placeholder{kind: phWorkspace}, nil
	}
	if n, ok := strings.CutPrefix(rest, "json_escape["); ok {
		k, err := strconv.Atoi(strings.TrimSuffix(n, "]"))
		if !strings.HasSuffix(n, "]") || err != nil || k < 0 || k > 8 {
			return bad()
		}
		return placeholder{kind: phJSONEscape, n: k}, nil
	}
	var ph placeholder
	switch {
	case strings.HasPrefix(rest, "inputs.parameters["):
		ph.kind, rest = phInParam, rest[len("inputs.parameters"):]
	case strings.HasPrefix(rest, "inputs.artifacts["):
		ph.kind, rest = phInArtifact, rest[len("inputs.artifacts"):]
	case strings.HasPrefix(rest, "outputs.parameters["):
		ph.kind, rest = phOutParam, rest[len("outputs.parameters"):]
	case strings.HasPrefix(rest, "outputs.artifacts["):
		ph.kind, rest = phOutArtifact, rest[len("outputs.artifacts"):]
	default:
		if isIdent(rest) {
			return placeholder{}, fmt.Errorf("%w {{%s}}", errUnsupportedPH, expr)
		}
		return bad()
	}
	name, rest, ok := subscript(rest)
	if !ok {
		return bad()
	}
	ph.name = name
	switch ph.kind {
	case phInParam:
		if rest != "" {
			return bad()
		}
	case phOutParam:
		if rest != ".output_file" {
			return bad()
		}
	case phInArtifact, phOutArtifact:
		switch {
		case rest == "" && ph.kind == phInArtifact:
		case rest == ".uri" || rest == ".path" || rest == ".metadata":
			ph.attr = rest[1:]
		case ph.kind == phInArtifact && strings.HasPrefix(rest, ".metadata["):
			k, tail, ok := subscript(rest[len(".metadata"):])
			if !ok || tail != "" {
				return bad()
			}
			ph.attr, ph.key = "metadata", k
		default:
			return bad()
		}
	}
	return ph, nil
}

// subscript reads `['name']` or `["name"]` at the start of s.
func subscript(s string) (name, rest string, ok bool) {
	if len(s) < 4 || s[0] != '[' || (s[1] != '\'' && s[1] != '"') {
		return "", "", false
	}
	q := s[1]
	end := strings.IndexByte(s[2:], q)
	if end < 0 || 2+end+1 >= len(s) || s[2+end+1] != ']' {
		return "", "", false
	}
	return s[2 : 2+end], s[2+end+2:], true
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// scanPlaceholders calls f for each `{{$...}}` in s with the text between
// the braces, and returns s with each replaced by f's result.
func scanPlaceholders(s string, f func(expr string) (string, error)) (string, error) {
	if !strings.Contains(s, "{{$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "{{$")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.Index(s[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("unterminated placeholder %q", shorten(s[i:]))
		}
		// {{$}} ends at the first "}}"; a metadata key could hold "}" only
		// quoted, which the SDK never writes.
		r, err := f(s[i+2 : i+j])
		if err != nil {
			return "", err
		}
		b.WriteString(s[:i])
		b.WriteString(r)
		s = s[i+j+2:]
	}
}

func shorten(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// structured parses an argument that is an IfPresent or Concat object;
// ok is false for any other argument.
func structured(arg string) (any, bool) {
	t := strings.TrimSpace(arg)
	if !strings.HasPrefix(t, `{"IfPresent"`) && !strings.HasPrefix(t, `{"Concat"`) {
		return nil, false
	}
	var v map[string]any
	if json.Unmarshal([]byte(t), &v) != nil || len(v) != 1 {
		return nil, false
	}
	return v, true
}

// checkTemplate reports the first problem with the placeholders of an
// argument (malformed, unsupported, or naming an input or output the
// component does not declare).
func checkTemplate(arg string, known func(ph placeholder) error) error {
	if v, ok := structured(arg); ok {
		return walkStructured(v, func(s string) error { return checkTemplate(s, known) }, known)
	}
	_, err := scanPlaceholders(arg, func(expr string) (string, error) {
		ph, err := parsePlaceholder(expr)
		if err != nil {
			return "", err
		}
		return "", known(ph)
	})
	return err
}

// walkStructured checks an IfPresent/Concat tree: leaf strings with
// leaf, and IfPresent input names with known.
func walkStructured(v any, leaf func(string) error, known func(placeholder) error) error {
	switch x := v.(type) {
	case string:
		return leaf(x)
	case []any:
		for _, e := range x {
			if err := walkStructured(e, leaf, known); err != nil {
				return err
			}
		}
		return nil
	case map[string]any:
		if c, ok := x["Concat"]; ok && len(x) == 1 {
			l, ok := c.([]any)
			if !ok {
				return errors.New("Concat: expected a list")
			}
			return walkStructured(l, leaf, known)
		}
		if ip, ok := x["IfPresent"]; ok && len(x) == 1 {
			m, ok := ip.(map[string]any)
			name, _ := m["InputName"].(string)
			if !ok || name == "" {
				return errors.New("IfPresent: expected {InputName, Then, Else}")
			}
			for k := range m {
				if k != "InputName" && k != "Then" && k != "Else" {
					return fmt.Errorf("IfPresent: unknown field %q", k)
				}
			}
			if err := known(placeholder{kind: phInParam, name: name, attr: "ifPresent"}); err != nil {
				return err
			}
			if err := walkStructured(m["Then"], leaf, known); err != nil {
				return err
			}
			return walkStructured(m["Else"], leaf, known)
		}
		return errors.New("expected a string, a list, Concat or IfPresent")
	case nil:
		return nil
	}
	return fmt.Errorf("unexpected %T in a placeholder structure", v)
}
