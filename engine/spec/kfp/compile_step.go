package kfp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// step compiles a task that runs an executor (a container or an importer).
func (c *compiler) step(path, cpath, kname string, t *spec.Task, ts *PipelineTaskSpec, comp *ComponentSpec, sc *scope) bool {
	label := comp.ExecutorLabel
	var ex *ExecutorSpec
	if c.doc.DeploymentSpec != nil {
		ex = c.doc.DeploymentSpec.Executors[label]
	}
	epath := key("deploymentSpec.executors", label)
	if ex == nil {
		c.fail(cpath+".executorLabel", fmt.Sprintf("no executor %q in deploymentSpec.executors", label))
		return false
	}
	data := taskData{Pipeline: c.doc.PipelineInfo.Name, PipelineRoot: c.doc.DefaultPipelineRoot, Task: kname, Executor: label}
	nerr := len(c.errs)
	c.stepWorkspace = false
	c.stepInputs(path, cpath, t, ts, comp, sc, &data)
	c.stepOutputs(cpath, t, comp, &data)
	switch {
	case ex.Container != nil && ex.Importer != nil:
		c.fail(epath, "set container or importer, not both")
	case ex.Container != nil:
		ct := ex.Container
		if len(ct.Command) == 0 && ct.Image == "" {
			c.fail(epath+".container", "set command, image or both")
		}
		t.Image, t.Command, t.Args = ct.Image, ct.Command, ct.Args
		seen := map[string]bool{}
		for i, e := range ct.Env {
			if seen[e.Name] {
				c.fail(fmt.Sprintf("%s.container.env[%d].name", epath, i), fmt.Sprintf("duplicate variable %q", e.Name))
			}
			seen[e.Name] = true
			t.Env = append(t.Env, spec.EnvVar{Name: e.Name, Value: e.Value})
		}
		if ct.Resources != nil {
			res, dynamic, err := staticResources(ct.Resources)
			if err != nil {
				c.fail(epath+".container.resources."+err.field, err.msg)
			}
			t.Resources, data.DynamicResources = res, dynamic
		}
		data.Container = ct
		c.checkPlaceholders(epath+".container", ct, &data)
	case ex.Importer != nil:
		c.importer(epath+".importer", t, ex.Importer, &data)
	default:
		c.fail(epath, "an executor needs a container or an importer")
	}
	if ts.CachingOptions != nil {
		t.Cache = &spec.Cache{Enabled: ts.CachingOptions.EnableCache, Key: ts.CachingOptions.CacheKey}
	} else {
		t.Cache = &spec.Cache{Enabled: false}
	}
	if ts.RetryPolicy != nil {
		r, err := retry(ts.RetryPolicy)
		if err != nil {
			c.fail(path+".retryPolicy."+err.field, err.msg)
		}
		t.Retry = r
	}
	if c.stepWorkspace {
		if t.Cache.Enabled {
			c.warn(path+".cachingOptions.enableCache", "the step uses the workspace, which is not part of the cache key: a cache hit skips the step and what it would have written there")
		}
		data.Workspace = &WorkspaceConfig{}
		if c.workspace != nil {
			data.Workspace = c.workspace
		}
	}
	t.Kubernetes = c.kube[label]
	t.Protocol, t.KFP = spec.ProtocolKFP, mustJSON(data)
	return len(c.errs) == nerr
}

// stepInputs compiles a step's inputs: every input its component declares
// (from the task's binding, else the component's default; an optional one
// may stay unset) and the extra pipelinechannel inputs the SDK adds.
func (c *compiler) stepInputs(path, cpath string, t *spec.Task, ts *PipelineTaskSpec, comp *ComponentSpec, sc *scope, data *taskData) {
	defs := comp.InputDefinitions
	if defs == nil {
		defs = &Definitions{}
	}
	given := &TaskInputsSpec{}
	if ts.Inputs != nil {
		given = ts.Inputs
	}
	for _, n := range sortedKeys(defs.Parameters) {
		ps := defs.Parameters[n]
		pp := key(cpath+".inputDefinitions.parameters", n)
		if ps == nil {
			c.fail(pp, "expected a parameter, got null")
			continue
		}
		typ, ok := c.paramType(pp, ps)
		if !ok {
			continue
		}
		pi := paramIn{Name: n, Type: irParamType(ps), Declared: true}
		if src := given.Parameters[n]; src != nil {
			in, present, tmpl := c.paramSource(key(path+".inputs.parameters", n), src, typ, sc)
			if present {
				in.Name = identName(n)
				in.AsText = asText(typ, in)
				if in.From != nil && ps.DefaultValue != nil {
					// Its value when the producer failed and this task
					// ignores upstream failures, as the SDK documents.
					var err error
					if in.Default, err = c.normValue(pp+".defaultValue", typ, ps.DefaultValue); err != nil {
						c.fail(pp+".defaultValue", err.Error())
					}
				}
				t.Inputs = append(t.Inputs, in)
				pi.Input, pi.Template = in.Name, tmpl
				if src.TaskFinalStatus != nil {
					pi.StatusOf = src.TaskFinalStatus.ProducerTask
				}
			}
		}
		if pi.Input == "" && ps.DefaultValue != nil {
			v, err := c.normValue(pp+".defaultValue", typ, ps.DefaultValue)
			if err != nil {
				c.fail(pp+".defaultValue", err.Error())
				continue
			}
			t.Inputs = append(t.Inputs, spec.Input{Name: identName(n), Type: typ, Value: v})
			pi.Input = identName(n)
			var s string
			if json.Unmarshal(v, &s) == nil && hasPlaceholder(s) {
				pi.Template = true // resolved at dispatch, as KFP's driver does
				c.checkFString(pp+".defaultValue", s)
			}
		}
		data.Params = append(data.Params, pi)
	}
	for _, n := range sortedKeys(given.Parameters) {
		if defs.Parameters[n] != nil {
			continue
		}
		ip := key(path+".inputs.parameters", n)
		in, present, tmpl := c.paramSource(ip, given.Parameters[n], "", sc)
		if present {
			in.Name = identName(n)
			t.Inputs = append(t.Inputs, in)
			data.Params = append(data.Params, paramIn{Name: n, Input: in.Name, Template: tmpl})
		}
	}
	for _, n := range sortedKeys(defs.Artifacts) {
		as := defs.Artifacts[n]
		if as == nil {
			c.fail(key(cpath+".inputDefinitions.artifacts", n), "expected an artifact, got null")
			continue
		}
		ai := artifactIn{Name: n, Schema: schemaOf(as.ArtifactType), List: as.IsArtifactList}
		if src := given.Artifacts[n]; src != nil {
			in, present := c.artifactSource(key(path+".inputs.artifacts", n), src, sc)
			if present {
				in.Name = identName(n)
				t.Inputs = append(t.Inputs, in)
				ai.Input = in.Name
			}
		}
		data.Artifacts = append(data.Artifacts, ai)
	}
	for _, n := range sortedKeys(given.Artifacts) {
		if defs.Artifacts[n] == nil {
			c.fail(key(path+".inputs.artifacts", n), fmt.Sprintf("component %s has no input artifact %q", t.Name, n))
		}
	}
}

// stepOutputs declares a step's outputs.
func (c *compiler) stepOutputs(cpath string, t *spec.Task, comp *ComponentSpec, data *taskData) {
	defs := comp.OutputDefinitions
	if defs == nil {
		return
	}
	for _, n := range sortedKeys(defs.Parameters) {
		ps := defs.Parameters[n]
		pp := key(cpath+".outputDefinitions.parameters", n)
		if ps == nil {
			c.fail(pp, "expected a parameter, got null")
			continue
		}
		typ, ok := c.paramType(pp, ps)
		if !ok {
			continue
		}
		t.Outputs = append(t.Outputs, spec.Output{Name: identName(n), Type: typ})
		data.OutParams = append(data.OutParams, paramOut{Name: n, Output: identName(n), Type: irParamType(ps)})
	}
	for _, n := range sortedKeys(defs.Artifacts) {
		as := defs.Artifacts[n]
		ap := key(cpath+".outputDefinitions.artifacts", n)
		if as == nil {
			c.fail(ap, "expected an artifact, got null")
			continue
		}
		if as.IsArtifactList {
			c.fail(ap+".isArtifactList", "unsupported: a step that outputs a list of artifacts (loops collect lists; a step outputs one)")
			continue
		}
		t.Outputs = append(t.Outputs, spec.Output{Name: identName(n), Type: artifactType(as.ArtifactType)})
		data.OutArtifacts = append(data.OutArtifacts, artifactOut{Name: n, Output: identName(n), Schema: schemaOf(as.ArtifactType)})
	}
}

func schemaOf(s *ArtifactTypeSchema) ArtifactTypeSchema {
	if s == nil || s.SchemaTitle == "" {
		return ArtifactTypeSchema{SchemaTitle: "system.Artifact", SchemaVersion: "0.0.1"}
	}
	return *s
}

// importer compiles an importer executor.
func (c *compiler) importer(path string, t *spec.Task, im *ImporterSpec, data *taskData) {
	if len(data.OutArtifacts) != 1 {
		c.fail(path, "an importer's component must declare exactly one output artifact")
		return
	}
	imp := &importerData{Metadata: im.Metadata}
	switch u := im.ArtifactURI; {
	case u == nil:
		c.fail(path+".artifactUri", "required")
		return
	case u.RuntimeParameter != "":
		if !paramDeclared(data, u.RuntimeParameter) {
			c.fail(path+".artifactUri.runtimeParameter", fmt.Sprintf("the importer has no input parameter %q", u.RuntimeParameter))
			return
		}
		imp.URIParam = u.RuntimeParameter
	default:
		v, ok := constant(u)
		var s string
		if !ok || json.Unmarshal(v, &s) != nil {
			c.fail(path+".artifactUri", "expected a constant URI string or a runtimeParameter")
			return
		}
		imp.URI = s
		if s == "" {
			c.warn(path+".artifactUri", "empty URI: this task fails when it runs")
		} else if !localURI(s) {
			c.warn(path+".artifactUri", fmt.Sprintf("%s is a remote URI: Skiff imports local paths and file:// URIs, so this task fails when it runs", s))
		}
	}
	c.importerMetadata(path+".metadata", im.Metadata, data)
	if im.DownloadToWorkspace {
		c.warn(path+".downloadToWorkspace", "not placed in the workspace: Skiff imports the artifact into its artifact store, and each consuming step reads its own copy at its input path")
	}
	data.Importer = imp
	out := data.OutArtifacts[0]
	t.Command = []string{"cp", "-R", "--", "{{$.importer.uri}}", fmt.Sprintf("{{$.outputs.artifacts['%s'].path}}", out.Name)}
}

// importerMetadata checks an importer's metadata: a JSON object whose keys
// and string values may hold placeholders of the importer's inputs, which
// dispatch resolves.
func (c *compiler) importerMetadata(path string, raw json.RawMessage, data *taskData) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		c.fail(path, "expected an object")
		return
	}
	known := c.knownPlaceholder(data)
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case string:
			c.checkArg(p, x, known)
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", p, i), e)
			}
		case map[string]any:
			for _, k := range sortedKeys(x) {
				c.checkArg(key(p, k), k, known)
				walk(key(p, k), x[k])
			}
		}
	}
	walk(path, m)
}

func paramDeclared(data *taskData, name string) bool {
	for _, p := range data.Params {
		if p.Name == name && p.Declared {
			return true
		}
	}
	return false
}

// localURI reports whether an importer URI names a local file.
func localURI(s string) bool {
	return strings.HasPrefix(s, "/") || strings.HasPrefix(s, "file://")
}

// constant returns a runtimeValue's constant as JSON.
func constant(v *ValueOrRuntimeParameter) (json.RawMessage, bool) {
	switch {
	case v.Constant != nil:
		return v.Constant, true
	case v.ConstantValue != nil:
		cv := v.ConstantValue
		switch {
		case cv.StringValue != nil:
			return mustJSON(*cv.StringValue), true
		case cv.IntValue != nil:
			return json.RawMessage(*cv.IntValue), true
		case cv.DoubleValue != nil:
			return json.RawMessage(*cv.DoubleValue), true
		}
	}
	return nil, false
}

// paramSource compiles the source of a parameter input. typ is the
// declared type ("" for an undeclared input). present is false for an
// input left unset (an optional input of the enclosing DAG that its group
// does not bind); tmpl is true for an f-string constant.
func (c *compiler) paramSource(path string, src *InputParameterSpec, typ spec.Type, sc *scope) (in spec.Input, present, tmpl bool) {
	if src == nil {
		c.fail(path, "expected an input source, got null")
		return in, false, false
	}
	var n int
	for _, set := range []bool{src.TaskOutputParameter != nil, src.RuntimeValue != nil, src.ComponentInputParameter != "", src.TaskFinalStatus != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.fail(path, "set exactly one of taskOutputParameter, runtimeValue, componentInputParameter, taskFinalStatus")
		return in, false, false
	}
	switch {
	case src.ComponentInputParameter != "":
		p := src.ComponentInputParameter
		if !sc.params[p] {
			if defs := sc.comp.InputDefinitions; defs != nil && defs.Parameters[p] != nil {
				return in, false, false // unset optional input of the enclosing DAG
			}
			c.fail(path+".componentInputParameter", fmt.Sprintf("the enclosing component has no input parameter %q", p))
			return in, false, false
		}
		in.Param = identName(p)
	case src.TaskOutputParameter != nil:
		ref, ok := c.producer(path+".taskOutputParameter", src.TaskOutputParameter.ProducerTask, src.TaskOutputParameter.OutputParameterKey, false, sc)
		if !ok {
			return in, false, false
		}
		in.From = &ref
	case src.TaskFinalStatus != nil:
		p := src.TaskFinalStatus.ProducerTask
		if sc.tasks[p] == nil {
			c.fail(path+".taskFinalStatus.producerTask", fmt.Sprintf("unknown task %q in this DAG", p))
			return in, false, false
		}
		in.UpstreamStatus, in.Type = true, spec.TypeObject
		return in, true, false
	case src.RuntimeValue != nil:
		v, ok := constant(src.RuntimeValue)
		if !ok {
			c.fail(path+".runtimeValue", "expected a constant")
			return in, false, false
		}
		var s string
		if json.Unmarshal(v, &s) == nil && hasPlaceholder(s) {
			tmpl = true
			c.checkFString(path+".runtimeValue.constant", s)
		}
		if typ == "" || tmpl {
			typ = jsonType(v)
		}
		if !tmpl {
			nv, err := c.normValue(path+".runtimeValue.constant", typ, v)
			if err != nil {
				c.fail(path+".runtimeValue.constant", err.Error())
				return in, false, false
			}
			v = nv
		}
		in.Type, in.Value = typ, v
	}
	if sel := src.ParameterExpressionSelector; sel != "" {
		f, err := selectorField(sel)
		if err != nil {
			c.fail(path+".parameterExpressionSelector", err.Error())
			return in, false, false
		}
		if in.Value != nil {
			c.fail(path+".parameterExpressionSelector", "unsupported: a selector on a constant")
			return in, false, false
		}
		in.Field = f
		in.Type = typ
		if in.Type == "" {
			in.Type = spec.TypeString
		}
	}
	return in, true, tmpl
}

// asText reports whether input in, bound to a component input of type typ,
// takes any value as its text: a STRING input fed by another input or a
// task's output, as KFP's driver converts what reaches it.
func asText(typ spec.Type, in spec.Input) bool {
	return typ == spec.TypeString && in.Value == nil && !in.UpstreamStatus
}

// artifactSource compiles the source of an artifact input.
func (c *compiler) artifactSource(path string, src *InputArtifactSpec, sc *scope) (in spec.Input, present bool) {
	switch {
	case src == nil:
		c.fail(path, "expected an input source, got null")
	case src.TaskOutputArtifact != nil && src.ComponentInputArtifact != "":
		c.fail(path, "set taskOutputArtifact or componentInputArtifact, not both")
	case src.TaskOutputArtifact != nil:
		ref, ok := c.producer(path+".taskOutputArtifact", src.TaskOutputArtifact.ProducerTask, src.TaskOutputArtifact.OutputArtifactKey, true, sc)
		if ok {
			in.From = &ref
			return in, true
		}
	case src.ComponentInputArtifact != "":
		a := src.ComponentInputArtifact
		if ref, ok := sc.imported[a]; ok {
			in.From = &ref
			return in, true
		}
		if sc.params[a] {
			in.Param = identName(a)
			return in, true
		}
		if defs := sc.comp.InputDefinitions; defs != nil && defs.Artifacts[a] != nil {
			return in, false // unset optional input
		}
		c.fail(path+".componentInputArtifact", fmt.Sprintf("the enclosing component has no input artifact %q", a))
	default:
		c.fail(path, "set taskOutputArtifact or componentInputArtifact")
	}
	return in, false
}

// producer resolves a reference to a sibling task's output, checking that
// its component declares it.
func (c *compiler) producer(path, task, output string, artifact bool, sc *scope) (spec.Ref, bool) {
	ts := sc.tasks[task]
	if ts == nil {
		c.fail(path+".producerTask", fmt.Sprintf("unknown task %q in this DAG", task))
		return spec.Ref{}, false
	}
	if ts.ComponentRef != nil {
		if comp := c.doc.Components[ts.ComponentRef.Name]; comp != nil {
			var ok bool
			if d := comp.OutputDefinitions; d != nil {
				if artifact {
					ok = d.Artifacts[output] != nil
				} else {
					ok = d.Parameters[output] != nil
				}
			}
			if !ok {
				kind, field := "parameter", "outputParameterKey"
				if artifact {
					kind, field = "artifact", "outputArtifactKey"
				}
				c.fail(path+"."+field, fmt.Sprintf("task %q has no output %s %q", task, kind, output))
				return spec.Ref{}, false
			}
		}
	}
	return spec.Ref{Task: sc.names[task], Output: identName(output)}, true
}

// jsonType is the parameter type of a JSON value.
func jsonType(v json.RawMessage) spec.Type {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return spec.TypeString
	}
	switch v[0] {
	case '"':
		return spec.TypeString
	case '[':
		return spec.TypeList
	case '{':
		return spec.TypeObject
	case 't', 'f':
		return spec.TypeBool
	}
	if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		return spec.TypeInt
	}
	return spec.TypeFloat
}

// selectorRE matches the selectors the SDK writes: parseJson(string_value)
// followed by keys or indices.
var (
	selectorRE    = regexp.MustCompile(`^parseJson\(string_value\)((?:\[(?:"[^"]*"|'[^']*'|\d+)\])+)$`)
	selectorKeyRE = regexp.MustCompile(`\[(?:"([^"]*)"|'([^']*)'|(\d+))\]`)
)

// selectorField turns a parameterExpressionSelector into an Input.Field
// path.
func selectorField(sel string) (string, error) {
	m := selectorRE.FindStringSubmatch(strings.TrimSpace(sel))
	if m == nil {
		return "", fmt.Errorf("unsupported: selector %q (Skiff reads parseJson(string_value)[\"key\"]...)", sel)
	}
	var parts []string
	for _, k := range selectorKeyRE.FindAllStringSubmatch(m[1], -1) {
		p := k[1] + k[2] + k[3]
		if p == "" || strings.Contains(p, ".") {
			return "", fmt.Errorf("unsupported: selector key %q (empty, or holding a '.')", p)
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "."), nil
}

// checkPlaceholders checks every placeholder a container uses: well
// formed, supported, and naming inputs and outputs the task has.
func (c *compiler) checkPlaceholders(path string, ct *ContainerSpec, data *taskData) {
	known := c.knownPlaceholder(data)
	for i, s := range ct.Command {
		c.checkArg(fmt.Sprintf("%s.command[%d]", path, i), s, known)
	}
	for i, s := range ct.Args {
		c.checkArg(fmt.Sprintf("%s.args[%d]", path, i), s, known)
	}
}

// checkArg reports the first problem with the placeholders of s, at path.
func (c *compiler) checkArg(path, s string, known func(placeholder) error) {
	if err := checkTemplate(s, known); errors.Is(err, errUnsupportedPH) {
		c.unsupported(path, err.Error())
	} else if err != nil {
		c.fail(path, err.Error())
	}
}

// knownPlaceholder returns the check of a placeholder of a step: one that
// names an input or output must name one the step declares.
func (c *compiler) knownPlaceholder(data *taskData) func(placeholder) error {
	return func(ph placeholder) error {
		var ok bool
		switch ph.kind {
		case phInParam:
			ok = slices.ContainsFunc(data.Params, func(p paramIn) bool { return p.Name == ph.name })
			if ph.attr == "ifPresent" {
				ok = ok || slices.ContainsFunc(data.Artifacts, func(a artifactIn) bool { return a.Name == ph.name })
			}
		case phInArtifact:
			ok = slices.ContainsFunc(data.Artifacts, func(a artifactIn) bool { return a.Name == ph.name })
		case phOutParam:
			ok = slices.ContainsFunc(data.OutParams, func(p paramOut) bool { return p.Name == ph.name })
		case phOutArtifact:
			ok = slices.ContainsFunc(data.OutArtifacts, func(a artifactOut) bool { return a.Name == ph.name })
		default:
			c.sawPlaceholder(ph)
			return nil
		}
		if !ok {
			return fmt.Errorf("names %q, which the component does not declare", ph.name)
		}
		return nil
	}
}

// checkFString checks the placeholders of an f-string constant.
func (c *compiler) checkFString(path, s string) {
	c.checkArg(path, s, func(ph placeholder) error { c.sawPlaceholder(ph); return nil })
}

// sawPlaceholder notes the placeholders that ask for more than the step's
// own inputs and outputs: the workspace.
func (c *compiler) sawPlaceholder(ph placeholder) {
	if ph.kind == phWorkspace {
		c.stepWorkspace, c.usedWorkspace = true, true
	}
}
