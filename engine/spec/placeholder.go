package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Placeholders are `{{ name }}` (spaces optional) inside a task's command,
// args, env values and workingDir. `{{{{` is a literal `{{`; any other text,
// a lone `}}` included, is copied as is.
//
//	{{inputs.NAME}}    an input: a parameter's value as text (ParamText) or
//	                   an artifact input's path
//	{{outputs.NAME}}   the path the step writes output NAME to
//	{{run.id}}         the run id
//	{{task.name}}      the task's name
//	{{task.attempt}}   the attempt number
//	{{execution.id}}   the execution (attempt) id
//	{{pipeline.name}}  the pipeline's name
//	{{pipeline.dir}}   the directory of the pipeline file on the machine
//	                   that submitted it
//	{{workdir}}        the execution's root (work) directory

// PlaceholderEnv holds what placeholders resolve to for one execution.
type PlaceholderEnv struct {
	Inputs       map[string]string // resolved text per input: ParamText of a parameter, or an artifact's path
	Outputs      map[string]string // path per output
	RunID        string
	TaskName     string
	ExecutionID  string
	PipelineName string
	PipelineDir  string // directory of the submitted pipeline file
	Root         string // the execution's work dir
	Attempt      int
}

// PlaceholderError reports a placeholder that is malformed, unknown or
// cannot be resolved.
type PlaceholderError struct {
	Placeholder string // the placeholder as written, braces included
	Msg         string
}

func (e *PlaceholderError) Error() string {
	return "placeholder " + e.Placeholder + ": " + e.Msg
}

// phKind is what a placeholder names.
type phKind uint8

const (
	phInput phKind = iota + 1
	phOutput
	phRunID
	phTaskName
	phAttempt
	phExecutionID
	phPipelineName
	phPipelineDir
	phWorkdir
)

var phContext = map[string]phKind{
	"run.id":        phRunID,
	"task.name":     phTaskName,
	"task.attempt":  phAttempt,
	"execution.id":  phExecutionID,
	"pipeline.name": phPipelineName,
	"pipeline.dir":  phPipelineDir,
	"workdir":       phWorkdir,
}

// segment is a piece of a template: literal text, or a placeholder.
type segment struct {
	text string // literal text, or the placeholder as written
	kind phKind // 0 for literal text
	name string // input or output name
}

// parseTemplate splits s into literal text and placeholders.
func parseTemplate(s string) ([]segment, error) {
	var segs []segment
	var lit strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		s = s[i:]
		if strings.HasPrefix(s, "{{{{") {
			lit.WriteString("{{")
			s = s[4:]
			continue
		}
		j := strings.Index(s[2:], "}}")
		if j < 0 {
			return nil, &PlaceholderError{Placeholder: shorten(s), Msg: "no closing }} (write {{{{ for a literal {{)"}
		}
		raw := s[:j+4]
		s = s[j+4:]
		seg, err := parsePlaceholder(raw)
		if err != nil {
			return nil, err
		}
		if lit.Len() > 0 {
			segs = append(segs, segment{text: lit.String()})
			lit.Reset()
		}
		segs = append(segs, seg)
	}
	if lit.Len() > 0 {
		segs = append(segs, segment{text: lit.String()})
	}
	return segs, nil
}

func parsePlaceholder(raw string) (segment, error) {
	body := strings.Trim(raw[2:len(raw)-2], " \t")
	seg := segment{text: raw}
	if k, ok := phContext[body]; ok {
		seg.kind = k
		return seg, nil
	}
	prefix, name, ok := strings.Cut(body, ".")
	switch {
	case ok && prefix == "inputs":
		seg.kind = phInput
	case ok && prefix == "outputs":
		seg.kind = phOutput
	default:
		return seg, &PlaceholderError{Placeholder: raw, Msg: "unknown placeholder; known: inputs.NAME, outputs.NAME, " + knownContext}
	}
	if !validIdent(name) {
		return seg, &PlaceholderError{Placeholder: raw, Msg: "invalid " + prefix[:len(prefix)-1] + " name " + strconv.Quote(name)}
	}
	seg.name = name
	return seg, nil
}

const knownContext = "run.id, task.name, task.attempt, execution.id, pipeline.name, pipeline.dir, workdir"

func shorten(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Expand replaces the placeholders in s with their values from env. A
// malformed, unknown or unresolvable placeholder (an input or output env
// does not hold, an empty context value) is a *PlaceholderError.
func Expand(s string, env *PlaceholderEnv) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	segs, err := parseTemplate(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, seg := range segs {
		if seg.kind == 0 {
			b.WriteString(seg.text)
			continue
		}
		v, err := env.resolve(seg)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func (env *PlaceholderEnv) resolve(seg segment) (string, error) {
	var v string
	var ok bool
	switch seg.kind {
	case phInput:
		if v, ok = env.Inputs[seg.name]; !ok {
			return "", &PlaceholderError{Placeholder: seg.text, Msg: "no input named " + strconv.Quote(seg.name)}
		}
		return v, nil
	case phOutput:
		if v, ok = env.Outputs[seg.name]; !ok {
			return "", &PlaceholderError{Placeholder: seg.text, Msg: "no output named " + strconv.Quote(seg.name)}
		}
		return v, nil
	case phAttempt:
		return strconv.Itoa(env.Attempt), nil
	case phRunID:
		v = env.RunID
	case phTaskName:
		v = env.TaskName
	case phExecutionID:
		v = env.ExecutionID
	case phPipelineName:
		v = env.PipelineName
	case phPipelineDir:
		v = env.PipelineDir
	case phWorkdir:
		v = env.Root
	}
	if v == "" {
		return "", &PlaceholderError{Placeholder: seg.text, Msg: "no value in this context"}
	}
	return v, nil
}

// ParamText renders a parameter value as placeholder text: a JSON string
// as its raw contents, anything else (numbers, bools, lists, objects, null)
// as compact JSON. Text that is not valid JSON is returned unchanged.
func ParamText(v json.RawMessage) string {
	t := bytes.TrimSpace(v)
	if len(t) > 0 && t[0] == '"' {
		var s string
		if err := json.Unmarshal(t, &s); err == nil {
			return s
		}
		return string(v)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, t); err != nil {
		return string(v)
	}
	return b.String()
}

// checkTemplate validates the placeholders of s against task t's declared
// inputs and outputs.
func checkTemplate(s string, t *Task) error {
	if !strings.Contains(s, "{{") {
		return nil
	}
	segs, err := parseTemplate(s)
	if err != nil {
		return err
	}
	for _, seg := range segs {
		switch seg.kind {
		case phInput:
			if !t.hasInput(seg.name) {
				return &PlaceholderError{Placeholder: seg.text, Msg: fmt.Sprintf("task %q has no input %q", t.Name, seg.name)}
			}
		case phOutput:
			if t.Output(seg.name) == nil {
				return &PlaceholderError{Placeholder: seg.text, Msg: fmt.Sprintf("task %q has no output %q", t.Name, seg.name)}
			}
		}
	}
	return nil
}

func (t *Task) hasInput(name string) bool {
	for i := range t.Inputs {
		if t.Inputs[i].Name == name {
			return true
		}
	}
	return false
}
