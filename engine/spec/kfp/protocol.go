package kfp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
)

// ExecutorOutputFile is where, under the execution's root, a step writes
// its ExecutorOutput JSON (outputs.outputFile of the ExecutorInput).
const ExecutorOutputFile = "executor_output.json"

// Runtime is what the engine knows of one execution of a KFP step.
type Runtime struct {
	Root         string // the execution's root as the step sees it
	RunID        string // {{$.pipeline_job_uuid}}
	RunName      string // {{$.pipeline_job_name}}
	ExecutionID  string // {{$.pipeline_task_uuid}}
	PipelineRoot string // {{$.pipeline_root}} when the IR sets no defaultPipelineRoot
	// Workspace is the run's workspace directory as the step sees it
	// ({{$.workspace_path}}): a directory shared by every step of the run.
	// "" when the executor gives none: a step that uses the workspace
	// fails (ErrNoWorkspace).
	Workspace string
}

// Invocation is a KFP step resolved for one execution: what to run and
// how to collect its outputs.
type Invocation struct {
	Command   []string
	Args      []string
	Resources spec.Resources
	Inputs    []executors.ArtifactInput
	Outputs   []executors.OutputSpec
	// ExecutorInput is the JSON the step receives as {{$}}.
	ExecutorInput json.RawMessage
	// Workspace is Runtime.Workspace when the step uses it ("" when not):
	// the directory must exist before the step starts.
	Workspace string
}

// The ExecutorInput as KFP writes it (protojson names).
type (
	executorInput struct {
		Inputs  eiInputs  `json:"inputs"`
		Outputs eiOutputs `json:"outputs"`
	}
	eiInputs struct {
		ParameterValues map[string]json.RawMessage `json:"parameterValues,omitempty"`
		Artifacts       map[string]artifactList    `json:"artifacts,omitempty"`
	}
	eiOutputs struct {
		Parameters map[string]outputParameter `json:"parameters,omitempty"`
		Artifacts  map[string]artifactList    `json:"artifacts,omitempty"`
		OutputFile string                     `json:"outputFile"`
	}
	outputParameter struct {
		OutputFile string `json:"outputFile"`
	}
	artifactList struct {
		Artifacts []runtimeArtifact `json:"artifacts"`
	}
	runtimeArtifact struct {
		Name     string             `json:"name"`
		Type     ArtifactTypeSchema `json:"type"`
		URI      string             `json:"uri"`
		Metadata json.RawMessage    `json:"metadata"` // a JSON object, {} for none
	}
)

// Prepare resolves a KFP step (Task.Protocol == spec.ProtocolKFP) for one
// execution: it builds the ExecutorInput from the resolved inputs, resolves
// every placeholder of the command and args, and lists the artifacts to
// materialise and the outputs to collect (parameters from their output
// files, overridden by the ExecutorOutput file; artifacts from their
// paths). Artifact URIs are paths under rt.Root, as kfp's local runner
// makes them (uri == path).
func Prepare(t *spec.Task, inputs map[string]spec.Value, rt Runtime) (*Invocation, error) {
	var d taskData
	if err := json.Unmarshal(t.KFP, &d); err != nil {
		return nil, fmt.Errorf("kfp data of task %s: %w", t.Name, err)
	}
	r, err := newResolver(&d, inputs, rt)
	if err != nil {
		return nil, err
	}
	inv := &Invocation{Resources: t.Resources, ExecutorInput: r.eiJSON}
	for _, a := range d.Artifacts {
		if a.Input == "" {
			continue
		}
		v := inputs[a.Input]
		if v.Artifact != nil {
			inv.Inputs = append(inv.Inputs, executors.ArtifactInput{Name: a.Input, Ref: *v.Artifact})
		}
		for i, ref := range v.Artifacts {
			inv.Inputs = append(inv.Inputs, executors.ArtifactInput{Name: listItemName(a.Input, i), Ref: ref})
		}
	}
	for _, p := range d.OutParams {
		inv.Outputs = append(inv.Outputs, executors.OutputSpec{Name: p.Output, Type: paramTypes[p.Type], ExecutorOutput: ExecutorOutputFile, Key: p.Name, KFPText: true})
	}
	for _, a := range d.OutArtifacts {
		inv.Outputs = append(inv.Outputs, executors.OutputSpec{Name: a.Output, Type: artifactType(&a.Schema), ExecutorOutput: ExecutorOutputFile, Key: a.Name, StepRoot: rt.Root})
	}
	switch {
	case d.Importer != nil:
		if err := r.importCommand(inv); err != nil {
			return nil, err
		}
	case d.Container != nil:
		if inv.Command, err = r.args("command", d.Container.Command); err != nil {
			return nil, err
		}
		if inv.Args, err = r.args("args", d.Container.Args); err != nil {
			return nil, err
		}
		if d.DynamicResources {
			if inv.Resources, err = r.resources(d.Container.Resources); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("kfp data of task %s: no container or importer", t.Name)
	}
	if r.usesWorkspace {
		inv.Workspace = rt.Workspace
	}
	return inv, nil
}

// resolver resolves placeholders for one execution.
type resolver struct {
	d      *taskData
	rt     Runtime
	params map[string]json.RawMessage // every input parameter with a value, by KFP name
	ei     executorInput
	eiJSON json.RawMessage
	// usesWorkspace: a placeholder resolved to the workspace.
	usesWorkspace bool
}

func newResolver(d *taskData, inputs map[string]spec.Value, rt Runtime) (*resolver, error) {
	r := &resolver{d: d, rt: rt, params: map[string]json.RawMessage{}}
	ei := &r.ei
	ei.Inputs.ParameterValues = map[string]json.RawMessage{}
	ei.Inputs.Artifacts = map[string]artifactList{}
	ei.Outputs.Parameters = map[string]outputParameter{}
	ei.Outputs.Artifacts = map[string]artifactList{}
	ei.Outputs.OutputFile = path.Join(rt.Root, ExecutorOutputFile)
	for _, p := range d.Params {
		if p.Input == "" || p.Template {
			continue
		}
		v, ok := inputs[p.Input]
		if !ok || v.Param == nil {
			return nil, fmt.Errorf("input parameter %q has no value", p.Name)
		}
		val := v.Param
		if p.StatusOf != "" {
			val = r.finalStatus(p.StatusOf, v.Param)
		}
		r.params[p.Name] = val
	}
	// f-strings read the other inputs, and the pipeline_* values.
	for _, p := range d.Params {
		if p.Input == "" || !p.Template {
			continue
		}
		var tmpl string
		if err := json.Unmarshal(inputs[p.Input].Param, &tmpl); err != nil {
			return nil, fmt.Errorf("input parameter %q: f-string constant is not a string", p.Name)
		}
		s, err := r.text(tmpl)
		if err != nil {
			return nil, fmt.Errorf("input parameter %q: %w", p.Name, err)
		}
		r.params[p.Name] = mustJSON(s)
	}
	for _, p := range d.Params {
		if v, ok := r.params[p.Name]; ok && p.Declared {
			ei.Inputs.ParameterValues[p.Name] = v
		}
	}
	for _, a := range d.Artifacts {
		if a.Input == "" {
			continue
		}
		v := inputs[a.Input]
		var l artifactList
		switch {
		case v.Artifact != nil:
			l.Artifacts = []runtimeArtifact{{Name: a.Name, Type: a.Schema, URI: executors.InputPath(rt.Root, a.Input), Metadata: metadataOf(*v.Artifact)}}
		case v.IsArtifactList():
			l.Artifacts = []runtimeArtifact{}
			for i, ref := range v.Artifacts {
				l.Artifacts = append(l.Artifacts, runtimeArtifact{Name: a.Name, Type: a.Schema,
					URI: executors.InputPath(rt.Root, listItemName(a.Input, i)), Metadata: metadataOf(ref)})
			}
		default:
			return nil, fmt.Errorf("input artifact %q has no artifact", a.Name)
		}
		ei.Inputs.Artifacts[a.Name] = l
	}
	for _, p := range d.OutParams {
		ei.Outputs.Parameters[p.Name] = outputParameter{OutputFile: executors.OutputPath(rt.Root, p.Output)}
	}
	for _, a := range d.OutArtifacts {
		ei.Outputs.Artifacts[a.Name] = artifactList{Artifacts: []runtimeArtifact{{Name: a.Name, Type: a.Schema,
			URI: executors.OutputPath(rt.Root, a.Output), Metadata: emptyMetadata}}}
	}
	r.eiJSON = mustJSON(ei)
	return r, nil
}

// finalStates maps Skiff's final task states to the state KFP's backend
// puts in a PipelineTaskFinalStatus: its driver gives the producer's ML
// Metadata execution state (COMPLETE, FAILED, CANCELED), and KFP's own
// backend test (pipeline_with_input_status_state) checks COMPLETE. The
// SDK's docstring (SUCCEEDED, FAILED, CANCELLED) describes Vertex AI, as
// does kfp.local: see docs/kfp-compatibility.md.
var finalStates = map[string]string{"SUCCEEDED": "COMPLETE", "FAILED": "FAILED", "CANCELED": "CANCELED"}

// finalStatus maps Skiff's upstream status {state, error, tasks} to KFP's
// PipelineTaskFinalStatus.
func (r *resolver) finalStatus(task string, raw json.RawMessage) json.RawMessage {
	var st struct {
		State string `json:"state"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &st)
	if s, ok := finalStates[st.State]; ok {
		st.State = s
	}
	errObj := map[string]any{}
	if st.Error != "" {
		errObj["code"] = 2 // google.rpc.Code UNKNOWN, as KFP reports a failed task
		errObj["message"] = st.Error
	}
	return mustJSON(map[string]any{
		"state":                   st.State,
		"pipelineJobResourceName": r.jobValue("pipeline_job_resource_name"),
		"pipelineTaskName":        task,
		"error":                   errObj,
	})
}

func (r *resolver) jobValue(name string) string {
	switch name {
	case "pipeline_job_name":
		return r.rt.RunName
	case "pipeline_job_resource_name":
		// KFP's backend gives the run's Kubernetes name, the pipeline's
		// name and a suffix; Skiff's suffix is the run id.
		return r.d.Pipeline + "-" + r.rt.RunID
	case "pipeline_job_uuid":
		return r.rt.RunID
	case "pipeline_task_name":
		return r.d.Task
	case "pipeline_task_uuid":
		return r.rt.ExecutionID
	case "pipeline_root":
		if r.d.PipelineRoot != "" {
			return r.d.PipelineRoot
		}
		return r.rt.PipelineRoot
	case "pipeline_persistent_resource_id":
		return "" // as KFP, unless a Vertex AI persistent resource runs the job
	}
	return ""
}

// text resolves every placeholder in s.
func (r *resolver) text(s string) (string, error) {
	return scanPlaceholders(s, func(expr string) (string, error) {
		ph, err := parsePlaceholder(expr)
		if err != nil {
			return "", err
		}
		return r.value(ph)
	})
}

// value is the text a placeholder stands for.
func (r *resolver) value(ph placeholder) (string, error) {
	ei := &r.ei
	switch ph.kind {
	case phExecutorInput:
		return string(r.eiJSON), nil
	case phJSONEscape:
		s := string(r.eiJSON)
		for i := 0; i < ph.n; i++ {
			b := mustJSON(s)
			s = string(b[1 : len(b)-1])
		}
		return s, nil
	case phJob:
		return r.jobValue(ph.name), nil
	case phOutputFile:
		return ei.Outputs.OutputFile, nil
	case phWorkspace:
		if r.rt.Workspace == "" {
			return "", ErrNoWorkspace
		}
		r.usesWorkspace = true
		return r.rt.Workspace, nil
	case phInParam:
		v, ok := r.params[ph.name]
		if !ok {
			return "", fmt.Errorf("{{$.inputs.parameters['%s']}}: the input has no value (use IfPresent for an optional input)", ph.name)
		}
		return spec.ValueText(v), nil
	case phOutParam:
		p, ok := ei.Outputs.Parameters[ph.name]
		if !ok {
			return "", fmt.Errorf("{{$.outputs.parameters['%s'].output_file}}: no such output parameter", ph.name)
		}
		return p.OutputFile, nil
	case phInArtifact, phOutArtifact:
		l, ok := ei.Inputs.Artifacts[ph.name]
		where := "inputs"
		if ph.kind == phOutArtifact {
			l, ok = ei.Outputs.Artifacts[ph.name]
			where = "outputs"
		}
		if !ok {
			return "", fmt.Errorf("{{$.%s.artifacts['%s']}}: no such artifact, or the input has none", where, ph.name)
		}
		if ph.attr == "" {
			// The list itself, as Vertex AI gives it (a component reads it
			// with json.loads and indexes each item's "uri"); KFP's own
			// launcher leaves this placeholder unresolved.
			return string(mustJSON(l.Artifacts)), nil
		}
		if len(l.Artifacts) != 1 {
			return "", fmt.Errorf("{{$.%s.artifacts['%s'].%s}}: the input is a list of %d artifacts", where, ph.name, ph.attr, len(l.Artifacts))
		}
		a := l.Artifacts[0]
		switch {
		case ph.attr == "uri" || ph.attr == "path":
			return a.URI, nil
		case ph.key == "":
			return string(a.Metadata), nil
		}
		v, err := metadataValue(a.Metadata, ph.key)
		if err != nil {
			return "", fmt.Errorf("{{$.%s.artifacts['%s'].metadata['%s']}}: %w", where, ph.name, ph.key, err)
		}
		return v, nil
	}
	return "", errors.New("unknown placeholder")
}

// emptyMetadata is the metadata of an artifact that has none.
var emptyMetadata = json.RawMessage(`{}`)

// metadataOf is an artifact's metadata as the ExecutorInput carries it.
func metadataOf(ref spec.ArtifactRef) json.RawMessage {
	if len(ref.Metadata) == 0 {
		return emptyMetadata
	}
	return ref.Metadata
}

// metadataValue is the text of key k of an artifact's metadata: a string
// as is, any other value as JSON; a key the metadata lacks is "null", as
// kfp's local runner resolves it.
func metadataValue(meta json.RawMessage, k string) (string, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(meta, &m); err != nil {
		return "", fmt.Errorf("the artifact's metadata is not a JSON object: %w", err)
	}
	v, ok := m[k]
	if !ok {
		return "null", nil
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s, nil
	}
	return string(v), nil
}

// args resolves a command or args list: each element's placeholders, and
// IfPresent and Concat elements.
func (r *resolver) args(field string, in []string) ([]string, error) {
	out := make([]string, 0, len(in))
	for i, a := range in {
		var res []string
		var err error
		if v, ok := structured(a); ok {
			res, err = r.elem(v)
		} else {
			var s string
			s, err = r.text(a)
			res = []string{s}
		}
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", field, i, err)
		}
		out = append(out, res...)
	}
	return out, nil
}

// elem resolves one node of an IfPresent/Concat tree into arguments.
func (r *resolver) elem(v any) ([]string, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if sv, ok := structured(x); ok {
			return r.elem(sv)
		}
		s, err := r.text(x)
		return []string{s}, err
	case []any:
		var out []string
		for _, e := range x {
			res, err := r.elem(e)
			if err != nil {
				return nil, err
			}
			out = append(out, res...)
		}
		return out, nil
	case map[string]any:
		if c, ok := x["Concat"]; ok && len(x) == 1 {
			res, err := r.elem(c)
			if err != nil {
				return nil, err
			}
			return []string{strings.Join(res, "")}, nil
		}
		if ip, ok := x["IfPresent"].(map[string]any); ok && len(x) == 1 {
			name, _ := ip["InputName"].(string)
			if r.present(name) {
				return r.elem(ip["Then"])
			}
			return r.elem(ip["Else"])
		}
	}
	return nil, fmt.Errorf("malformed IfPresent/Concat element %s", shorten(string(mustJSON(v))))
}

// present reports whether input name has a value.
func (r *resolver) present(name string) bool {
	if _, ok := r.params[name]; ok {
		return true
	}
	_, ok := r.ei.Inputs.Artifacts[name]
	return ok
}

// resources resolves resources given as placeholders.
func (r *resolver) resources(rs *ResourceSpec) (spec.Resources, error) {
	c := *rs
	for _, f := range []*string{&c.ResourceCPULimit, &c.ResourceCPURequest, &c.ResourceMemoryLimit, &c.ResourceMemoryRequest} {
		s, err := r.text(*f)
		if err != nil {
			return spec.Resources{}, fmt.Errorf("resources: %w", err)
		}
		*f = s
	}
	if c.Accelerator != nil {
		a := *c.Accelerator
		var err error
		if a.ResourceCount, err = r.text(a.ResourceCount); err == nil {
			a.ResourceType, err = r.text(a.ResourceType)
		}
		if err != nil {
			return spec.Resources{}, fmt.Errorf("resources: %w", err)
		}
		c.Accelerator = &a
	}
	res, _, ferr := staticResources(&c)
	if ferr != nil {
		return spec.Resources{}, fmt.Errorf("resources.%s: %s", ferr.field, ferr.msg)
	}
	return res, nil
}

// importSource is the local path an importer copies from.
func (r *resolver) importSource(im *importerData) (string, error) {
	uri := im.URI
	if im.URIParam != "" {
		v, ok := r.params[im.URIParam]
		if !ok || json.Unmarshal(v, &uri) != nil {
			return "", fmt.Errorf("importer: input %q holds no URI string", im.URIParam)
		}
	}
	switch {
	case uri == "":
		return "", errors.New("importer: empty artifact URI")
	case strings.HasPrefix(uri, "file://"):
		uri = strings.TrimPrefix(uri, "file://")
	case !strings.HasPrefix(uri, "/"):
		scheme, _, _ := strings.Cut(uri, "://")
		if scheme == uri {
			return "", fmt.Errorf("importer: %q is not an absolute path or a file:// URI", uri)
		}
		return "", fmt.Errorf("importer: remote artifact URI %s: %s:// is not supported; import a local path or file:// URI", uri, scheme)
	}
	if !path.IsAbs(uri) || slices.Contains(strings.Split(uri, "/"), "..") {
		return "", fmt.Errorf("importer: %q is not a clean absolute path", uri)
	}
	return uri, nil
}

// importCommand sets what an importer step runs: a copy of the artifact
// to its output path and, when the importer gives metadata, an
// ExecutorOutput file that carries it to the artifact, as a step's does.
func (r *resolver) importCommand(inv *Invocation) error {
	d := r.d
	src, err := r.importSource(d.Importer)
	if err != nil {
		return err
	}
	out := d.OutArtifacts[0]
	dst := executors.OutputPath(r.rt.Root, out.Output)
	inv.Command = []string{"cp", "-R", "--", src, dst}
	inv.Outputs[0].ExecutorOutput = ""
	meta, err := r.importMetadata(d.Importer.Metadata)
	if err != nil || meta == nil {
		return err
	}
	eo := mustJSON(map[string]any{"artifacts": map[string]artifactList{
		out.Name: {Artifacts: []runtimeArtifact{{Name: out.Name, Type: out.Schema, URI: dst, Metadata: meta}}},
	}})
	inv.Command = []string{"sh", "-c", `cp -R -- "$1" "$2" && printf '%s' "$3" > "$4"`, "importer", src, dst, string(eo), r.ei.Outputs.OutputFile}
	inv.Outputs[0].ExecutorOutput = ExecutorOutputFile
	return nil
}

// importMetadata is an importer's metadata with the placeholders of its
// keys and string values resolved, as kfp's local runner resolves them
// (each to text); nil when there is none.
func (r *resolver) importMetadata(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers stay as written
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("importer: metadata: expected a JSON object: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	v, err := r.resolveJSON(m)
	if err != nil {
		return nil, fmt.Errorf("importer: metadata: %w", err)
	}
	return mustJSON(v), nil
}

// resolveJSON resolves the placeholders of every string in v, a decoded
// JSON value, object keys included.
func (r *resolver) resolveJSON(v any) (any, error) {
	switch x := v.(type) {
	case string:
		return r.text(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			var err error
			if out[i], err = r.resolveJSON(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			rk, err := r.text(k)
			if err != nil {
				return nil, err
			}
			if out[rk], err = r.resolveJSON(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return v, nil
}

// listItemName is where item i of an artifact list input is materialised,
// under inputs/.
func listItemName(input string, i int) string { return input + "/" + strconv.Itoa(i) }
