package kfp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// Compile turns a parsed pipeline into a finalized Skiff plan. Every
// problem is reported in one *spec.ValidationError whose paths name the IR
// field (`root.dag.tasks.train.inputs.parameters.lr: ...`); warnings list
// what runs differently from Kubeflow (and, with opts.Lenient, what was
// ignored).
func Compile(doc *Document, opts Options) (*spec.Plan, []Warning, error) {
	c := &compiler{doc: doc.Pipeline, opts: opts}
	if n := c.countTasks(doc.Pipeline.Root, map[*ComponentSpec]int64{}); n > MaxTasks {
		return nil, nil, spec.TooLarge("root", "the pipeline ", &spec.LimitError{Limit: "compiled task", Max: MaxTasks, Unit: "tasks",
			Hint: "every task of every sub-DAG, counted each time its component is used"})
	}
	c.platformSettings(doc.Platform)
	plan := c.plan()
	if c.usedWorkspace && c.workspace == nil {
		c.warn("", workspacePath+" is used but the PlatformSpec sets no pipelineConfig.workspace, which Kubeflow expects: Skiff gives the run a workspace anyway")
	}
	if len(c.errs) > 0 {
		return nil, c.warns, &spec.ValidationError{Errors: c.errs}
	}
	if err := plan.Finalize(); err != nil {
		return nil, c.warns, fmt.Errorf("the compiled plan is invalid (a Skiff bug; please report it): %w", err)
	}
	return plan, c.warns, nil
}

// MaxTasks bounds the tasks a compiled pipeline expands to, at every
// depth: a sub-DAG component is compiled again for each task using it, so
// a small file could otherwise expand into a huge plan.
const MaxTasks = 10_000

// countTasks returns how many tasks comp compiles to, at every depth (at
// most MaxTasks+1), without compiling them: each component is counted once
// (memo), so that the count costs no more than the file's size. A component
// that contains itself counts as one task (compiling reports it).
func (c *compiler) countTasks(comp *ComponentSpec, memo map[*ComponentSpec]int64) int64 {
	if comp == nil || comp.DAG == nil {
		return 1
	}
	if n, ok := memo[comp]; ok {
		return n
	}
	memo[comp] = 1 // in progress: a cycle counts once
	var n int64
	for _, ts := range comp.DAG.Tasks {
		n++
		if ts != nil && ts.ComponentRef != nil {
			if sub := c.doc.Components[ts.ComponentRef.Name]; sub != nil && sub.DAG != nil {
				n += c.countTasks(sub, memo)
			}
		}
		n = min(n, MaxTasks+1)
	}
	memo[comp] = n
	return n
}

// compiler compiles one PipelineSpec.
type compiler struct {
	doc   *PipelineSpec
	opts  Options
	errs  []spec.FieldError
	warns []Warning
	stack []string // components being compiled, to catch recursion

	kube      map[string]json.RawMessage // executor label -> its Kubernetes settings
	workspace *WorkspaceConfig           // pipelineConfig.workspace, or nil
	// stepWorkspace: a placeholder of the step being compiled names the
	// workspace; usedWorkspace: one of any step does.
	stepWorkspace, usedWorkspace bool
}

func (c *compiler) fail(path, msg string) {
	c.errs = append(c.errs, spec.FieldError{Path: path, Msg: msg})
}

func (c *compiler) warn(path, msg string) {
	c.warns = append(c.warns, Warning{Path: path, Msg: msg})
}

// unsupported reports a feature Skiff does not run: an error, or with
// Options.Lenient a warning.
func (c *compiler) unsupported(path, msg string) {
	if c.opts.Lenient {
		c.warn(path, "unsupported: "+msg+" (ignored)")
		return
	}
	c.fail(path, "unsupported: "+msg)
}

func (c *compiler) plan() *spec.Plan {
	p := c.doc
	name := p.PipelineInfo.Name
	root := c.dag("root", p.Root, nil)
	root.Name = taskName(name)
	root.Description = p.PipelineInfo.Description
	if root.Description == "" && p.PipelineInfo.DisplayName != "" && p.PipelineInfo.DisplayName != name {
		root.Description = p.PipelineInfo.DisplayName
	}
	return root
}

// scope is what the tasks of one DAG can refer to.
type scope struct {
	path     string              // IR path of the component
	comp     *ComponentSpec      // the DAG's component
	params   map[string]bool     // KFP names of the inputs this plan has as parameters
	imported map[string]spec.Ref // root artifact inputs: the task importing each
	tasks    map[string]*PipelineTaskSpec
	names    map[string]string // KFP task name -> Skiff task name
}

// dag compiles a component's DAG into a plan (the root, or a group's
// body). bound says which of its inputs the group binds; nil for the root,
// whose every input is a pipeline parameter.
func (c *compiler) dag(path string, comp *ComponentSpec, bound map[string]bool) *spec.Plan {
	plan := &spec.Plan{}
	sc := &scope{path: path, comp: comp, params: map[string]bool{}, imported: map[string]spec.Ref{},
		tasks: comp.DAG.Tasks, names: map[string]string{}}
	for _, n := range sortedKeys(comp.DAG.Tasks) {
		sc.names[n] = taskName(n)
	}
	c.dagParams(plan, sc, bound)
	if len(comp.DAG.Tasks) == 0 {
		c.fail(path+".dag.tasks", "a DAG needs at least one task")
	}
	for _, n := range sortedKeys(comp.DAG.Tasks) {
		ts := comp.DAG.Tasks[n]
		tp := key(path+".dag.tasks", n)
		if ts == nil {
			c.fail(tp, "expected a task, got null")
			continue
		}
		if t, ok := c.task(tp, n, ts, sc); ok {
			plan.Tasks = append(plan.Tasks, t)
		}
	}
	plan.Outputs = c.dagOutputs(path+".dag.outputs", comp.DAG.Outputs, sc)
	return plan
}

// dagParams declares the plan's parameters from the component's inputs.
func (c *compiler) dagParams(plan *spec.Plan, sc *scope, bound map[string]bool) {
	isRoot := bound == nil
	defs := sc.comp.InputDefinitions
	if defs == nil {
		return
	}
	for _, n := range sortedKeys(defs.Parameters) {
		ps := defs.Parameters[n]
		pp := key(sc.path+".inputDefinitions.parameters", n)
		if ps == nil {
			c.fail(pp, "expected a parameter, got null")
			continue
		}
		typ, ok := c.paramType(pp, ps)
		if !ok {
			continue
		}
		prm := spec.Param{Name: identName(n), Type: typ, Description: ps.Description}
		if ps.DefaultValue != nil {
			v, err := c.normValue(pp+".defaultValue", typ, ps.DefaultValue)
			if err != nil {
				c.fail(pp+".defaultValue", err.Error())
				continue
			}
			prm.Default = v
		}
		switch {
		case isRoot && irParamType(ps) == irStatus:
			continue // filled by the run, never given
		case isRoot && prm.Default == nil && ps.IsOptional:
			prm.Default = zeroValue(typ)
			c.warn(pp, fmt.Sprintf("optional parameter without a default: Skiff gives it %s when no value is given", prm.Default))
		case isRoot, bound[n], prm.Default != nil:
		default:
			continue // an optional input the group leaves unset
		}
		plan.Params = append(plan.Params, prm)
		sc.params[n] = true
	}
	for _, n := range sortedKeys(defs.Artifacts) {
		as := defs.Artifacts[n]
		ap := key(sc.path+".inputDefinitions.artifacts", n)
		if as == nil {
			c.fail(ap, "expected an artifact, got null")
			continue
		}
		typ := artifactType(as.ArtifactType)
		if as.IsArtifactList {
			typ = spec.ListOf(typ)
		}
		switch {
		case isRoot && as.IsOptional:
			c.warn(ap, "optional pipeline artifact input: a Skiff run never gives it")
		case isRoot && as.IsArtifactList:
			c.unsupported(ap, "a list of artifacts as a pipeline input")
		case isRoot:
			c.importRootArtifact(plan, sc, n, as)
		case bound[n]:
			plan.Params = append(plan.Params, spec.Param{Name: identName(n), Type: typ, Description: as.Description})
			sc.params[n] = true
		}
	}
}

// importRootArtifact turns a required pipeline artifact input into a
// string parameter (the artifact's local path or file:// URI) and a task
// that imports it, as a KFP importer would.
func (c *compiler) importRootArtifact(plan *spec.Plan, sc *scope, name string, as *ArtifactSpec) {
	tname := taskName("import-" + name)
	for i := 2; sc.names[tname] != "" || slices.ContainsFunc(plan.Tasks, func(t spec.Task) bool { return t.Name == tname }); i++ {
		tname = taskName(fmt.Sprintf("import-%s-%d", name, i))
	}
	pname := identName(name)
	typ := artifactType(as.ArtifactType)
	plan.Params = append(plan.Params, spec.Param{Name: pname, Type: spec.TypeString,
		Description: fmt.Sprintf("local path or file:// URI of the %s artifact %s", typ, name)})
	schema := ArtifactTypeSchema{SchemaTitle: "system.Artifact", SchemaVersion: "0.0.1"}
	if as.ArtifactType != nil {
		schema = *as.ArtifactType
	}
	data := taskData{Pipeline: c.doc.PipelineInfo.Name, PipelineRoot: c.doc.DefaultPipelineRoot, Task: tname,
		Importer:     &importerData{URIParam: "uri"},
		Params:       []paramIn{{Name: "uri", Input: "uri", Type: irString, Declared: true}},
		OutArtifacts: []artifactOut{{Name: "artifact", Output: "artifact", Schema: schema}}}
	t := spec.Task{
		Name: tname, Description: "imports the pipeline input " + name,
		Command:  importCommand,
		Inputs:   []spec.Input{{Name: "uri", Type: spec.TypeString, Param: pname}},
		Outputs:  []spec.Output{{Name: "artifact", Type: typ}},
		Protocol: spec.ProtocolKFP, KFP: mustJSON(data),
		Cache: &spec.Cache{Enabled: false},
	}
	plan.Tasks = append(plan.Tasks, t)
	sc.imported[name] = spec.Ref{Task: tname, Output: "artifact"}
}

// importCommand is what an importer task shows as its command; dispatch
// resolves the URI and the output path.
var importCommand = []string{"cp", "-R", "--", "{{$.importer.uri}}", "{{$.outputs.artifacts['artifact'].path}}"}

// dagOutputs compiles a DAG's outputs.
func (c *compiler) dagOutputs(path string, outs *DAGOutputsSpec, sc *scope) []spec.PlanOutput {
	if outs == nil {
		return nil
	}
	var res []spec.PlanOutput
	ref := func(p, task, out string) (spec.Ref, bool) {
		if _, ok := sc.tasks[task]; !ok {
			c.fail(p, fmt.Sprintf("unknown task %q in this DAG", task))
			return spec.Ref{}, false
		}
		return spec.Ref{Task: sc.names[task], Output: identName(out)}, true
	}
	for _, n := range sortedKeys(outs.Parameters) {
		o := outs.Parameters[n]
		op := key(path+".parameters", n)
		po := spec.PlanOutput{Name: identName(n)}
		switch {
		case o == nil:
			c.fail(op, "expected an output, got null")
			continue
		case o.ValueFromParameter != nil:
			r, ok := ref(op+".valueFromParameter.producerSubtask", o.ValueFromParameter.ProducerSubtask, o.ValueFromParameter.OutputParameterKey)
			if !ok {
				continue
			}
			po.From = r
		case o.ValueFromOneof != nil && len(o.ValueFromOneof.ParameterSelectors) > 0:
			for i, s := range o.ValueFromOneof.ParameterSelectors {
				r, ok := ref(fmt.Sprintf("%s.valueFromOneof.parameterSelectors[%d].producerSubtask", op, i), s.ProducerSubtask, s.OutputParameterKey)
				if ok {
					po.OneOf = append(po.OneOf, r)
				}
			}
		default:
			c.fail(op, "set valueFromParameter or valueFromOneof")
			continue
		}
		res = append(res, po)
	}
	for _, n := range sortedKeys(outs.Artifacts) {
		o := outs.Artifacts[n]
		op := key(path+".artifacts", n)
		if o == nil || len(o.ArtifactSelectors) == 0 {
			c.fail(op, "expected artifactSelectors")
			continue
		}
		po := spec.PlanOutput{Name: identName(n)}
		for i, s := range o.ArtifactSelectors {
			r, ok := ref(fmt.Sprintf("%s.artifactSelectors[%d].producerSubtask", op, i), s.ProducerSubtask, s.OutputArtifactKey)
			if ok {
				po.OneOf = append(po.OneOf, r)
			}
		}
		if len(po.OneOf) == 1 {
			po.From, po.OneOf = po.OneOf[0], nil
		}
		res = append(res, po)
	}
	return res
}

// paramType maps a parameter spec's type.
func (c *compiler) paramType(path string, ps *ParameterSpec) (spec.Type, bool) {
	it := irParamType(ps)
	if it == "" {
		c.fail(path+".parameterType", "required")
		return "", false
	}
	t, ok := paramTypes[it]
	if !ok {
		c.fail(path+".parameterType", fmt.Sprintf("unknown parameter type %q", it))
		return "", false
	}
	return t, true
}

// zeroValue is the empty value of a parameter type.
func zeroValue(t spec.Type) json.RawMessage {
	switch t {
	case spec.TypeString:
		return json.RawMessage(`""`)
	case spec.TypeInt, spec.TypeFloat:
		return json.RawMessage(`0`)
	case spec.TypeBool:
		return json.RawMessage(`false`)
	case spec.TypeList:
		return json.RawMessage(`[]`)
	}
	return json.RawMessage(`{}`)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain data is marshalled
	}
	return b
}

// hasPlaceholder reports whether s holds a KFP placeholder.
func hasPlaceholder(s string) bool { return strings.Contains(s, "{{$") }

// normValue checks a literal against its parameter type and normalises it.
// A number or bool written as a string ("0.3" for a NUMBER_DOUBLE), which
// Kubeflow accepts, is converted with a warning.
func (c *compiler) normValue(path string, t spec.Type, v json.RawMessage) (json.RawMessage, error) {
	nv, err := spec.NormValue(t, v)
	if err == nil {
		return nv, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil && (t == spec.TypeInt || t == spec.TypeFloat || t == spec.TypeBool) {
		if cv, cerr := spec.NormValue(t, json.RawMessage(strings.TrimSpace(s))); cerr == nil {
			c.warn(path, fmt.Sprintf("%s written as a string %q: read as %s", t, s, cv))
			return cv, nil
		}
	}
	return nil, err
}
