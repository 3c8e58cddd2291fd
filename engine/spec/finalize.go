package spec

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

var quote = strconv.Quote

const maxNameLen = 63

// validName reports whether s is a valid pipeline or task name: lower-case
// letters, digits, '-' and '_', starting with a letter or digit.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_') {
			continue
		}
		return false
	}
	return true
}

// validIdent reports whether s is a valid parameter, input or output name:
// letters, digits, '_' and '-', starting with a letter or '_'.
func validIdent(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c == '-' || c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// validEnvName reports whether s is a valid environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

const (
	nameRule  = "must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
	identRule = "must be 1-63 characters of letters, digits, '_' and '-', starting with a letter or '_'"
)

// finalizer holds the results of validation until every check passed, so
// that a plan that fails Finalize is left unchanged.
type finalizer struct {
	p      *Plan
	prefix string         // path of this plan in the document: "" or "tasks[2]." for a body
	errs   *errList       // shared with the enclosing plan's finalizer
	subs   []*finalizer   // the bodies of group tasks, applied with this plan
	index  map[string]int // task name -> first index
	deps   [][]int
	inputs [][]Input // per task: checked inputs, sorted, types inferred, refs indexed
	params []Param   // defaults normalised
	outs   []PlanOutput
	gouts  map[int][]Output // outputs of group tasks, from their bodies
	loops  []loopItems      // checked loop items
	bodies []bodyOf         // checked bodies of group tasks
}

// Finalize validates p, from any compiler, and fills its computed fields:
// Task.Deps, Ref.TaskIndex, the types of inputs that left them to their
// source, and Version when zero. Inputs, outputs and env are sorted by
// name and literal values normalised. Every problem found is reported in
// one *ValidationError whose paths follow the Skiff YAML document; p is
// changed only when Finalize succeeds. Executor names are not checked here.
func (p *Plan) Finalize() error {
	var errs errList
	f := &finalizer{p: p, errs: &errs, index: make(map[string]int, len(p.Tasks))}
	if p.Version < 0 || p.Version > PlanVersion {
		f.add("version", fmt.Sprintf("unsupported plan version %d (this binary reads up to %d)", p.Version, PlanVersion))
	}
	f.check()
	if err := errs.err(); err != nil {
		return err
	}
	f.apply()
	return nil
}

func (f *finalizer) add(path, msg string) { f.errs.add(f.prefix+path, msg) }

// check validates f.p (the root plan or a group's body).
func (f *finalizer) check() {
	p := f.p
	if f.prefix != "" && p.Name == "" {
		// A body is named after its group (apply fills it).
	} else if !validName(p.Name) {
		if p.Name == "" {
			f.add("name", "required")
		} else {
			f.add("name", fmt.Sprintf("invalid name %s: %s", quote(p.Name), nameRule))
		}
	}
	f.checkParams()
	if len(p.Tasks) == 0 {
		f.add("tasks", "a pipeline needs at least one task")
	}
	for i := range p.Tasks {
		t := &p.Tasks[i]
		path := index("tasks", i)
		switch {
		case !validName(t.Name):
			if t.Name == "" {
				f.add(path+".name", "required")
			} else {
				f.add(path+".name", fmt.Sprintf("invalid name %s: %s", quote(t.Name), nameRule))
			}
		default:
			if j, dup := f.index[t.Name]; dup {
				f.add(path+".name", fmt.Sprintf("duplicate task name %s (also tasks[%d])", quote(t.Name), j))
			} else {
				f.index[t.Name] = i
			}
		}
	}
	f.deps = make([][]int, len(p.Tasks))
	f.inputs = make([][]Input, len(p.Tasks))
	f.gouts = make(map[int][]Output)
	for i := range p.Tasks {
		if t := &p.Tasks[i]; t.IsGroup() {
			f.gouts[i] = groupOutputs(t)
		}
	}
	for i := range p.Tasks {
		f.checkTask(i)
	}
	f.checkOutputs()
	if len(*f.errs) == 0 {
		if cyc := findCycle(p.Tasks, f.deps); cyc != nil {
			f.add("tasks", "cycle "+strings.Join(cyc, " -> "))
		}
	}
}

func (f *finalizer) apply() {
	p := f.p
	if p.Version == 0 {
		p.Version = PlanVersion
	}
	p.Params = f.params
	p.Outputs = f.outs
	for _, sub := range f.subs {
		sub.apply()
	}
	for _, b := range f.bodies {
		p.Tasks[b.task].Body = b.body
	}
	for _, l := range f.loops {
		loop := *p.Tasks[l.task].ParallelFor
		loop.Items = l.items
		p.Tasks[l.task].ParallelFor = &loop
	}
	for i := range p.Tasks {
		t := &p.Tasks[i]
		t.Inputs = f.inputs[i]
		t.Deps = f.deps[i]
		if t.IsGroup() {
			t.Outputs = f.gouts[i]
			if t.Body.Name == "" {
				t.Body.Name = t.Name
			}
		}
		slices.SortStableFunc(t.Outputs, func(a, b Output) int { return strings.Compare(a.Name, b.Name) })
		slices.SortStableFunc(t.Env, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	}
}

func (f *finalizer) checkParams() {
	p := f.p
	seen := make(map[string]bool, len(p.Params))
	if p.Params != nil {
		f.params = make([]Param, len(p.Params))
	}
	for i, prm := range p.Params {
		path := key("parameters", prm.Name)
		f.params[i] = prm
		if !validIdent(prm.Name) {
			f.add(path, fmt.Sprintf("invalid parameter name: %s", identRule))
			continue
		}
		if seen[prm.Name] {
			f.add(path, "duplicate parameter name")
			continue
		}
		seen[prm.Name] = true
		switch {
		case prm.Type == "":
			f.add(path+".type", "required")
			continue
		case prm.Type.Kind() == KindArtifact || prm.Type.Kind() == KindArtifactList:
			if f.prefix != "" && prm.Default == nil {
				break // a body's parameter may carry an artifact from its group
			}
			if f.prefix != "" {
				f.add(path+".default", "an artifact parameter takes no default")
			} else {
				f.add(path+".type", fmt.Sprintf("%s is an artifact type; pipeline parameters take %s", prm.Type, paramTypes))
			}
			continue
		case !prm.Type.Valid():
			f.add(path+".type", fmt.Sprintf("unknown type %s; parameters take %s", quote(string(prm.Type)), paramTypes))
			continue
		}
		if prm.Default != nil {
			v, err := normValue(prm.Type, prm.Default)
			if err != nil {
				f.add(path+".default", err.Error())
				continue
			}
			f.params[i].Default = v
		}
	}
}

const (
	paramTypes    = "string, int, float, bool, list, object"
	artifactTypes = "Artifact, Dataset, Model, Metrics, ClassificationMetrics, HTML, Markdown"
)

func (f *finalizer) checkTask(i int) {
	t := &f.p.Tasks[i]
	path := index("tasks", i)
	switch {
	case t.IsGroup():
		f.checkGroupFields(path, t)
	case t.ParallelFor != nil:
		f.add(path+".parallelFor", "a loop needs a body (tasks)")
	case len(t.Command) == 0 && t.Image == "":
		f.add(path, "set command, image or both")
	}
	outs := make(map[string]bool, len(t.Outputs))
	for _, o := range t.Outputs {
		op := key(path+".outputs", o.Name)
		switch {
		case !validIdent(o.Name):
			f.add(op, "invalid output name: "+identRule)
		case outs[o.Name]:
			f.add(op, "duplicate output name")
		case o.Type == "":
			f.add(op, "type required")
		case !o.Type.Valid():
			f.add(op, fmt.Sprintf("unknown type %s; use one of %s, %s", quote(string(o.Type)), paramTypes, artifactTypes))
		}
		outs[o.Name] = true
	}
	deps := make([]int, 0, len(t.Inputs)+len(t.After))
	f.inputs[i] = make([]Input, 0, len(t.Inputs))
	seen := make(map[string]bool, len(t.Inputs))
	for _, in := range t.Inputs {
		ip := key(path+".inputs", in.Name)
		switch {
		case !validIdent(in.Name):
			f.add(ip, "invalid input name: "+identRule)
			continue
		case seen[in.Name]:
			f.add(ip, "duplicate input name")
			continue
		}
		seen[in.Name] = true
		in, dep, ok := f.checkInput(ip, i, in)
		if !ok {
			continue
		}
		if dep >= 0 {
			deps = append(deps, dep)
		}
		f.inputs[i] = append(f.inputs[i], in)
	}
	if len(f.inputs[i]) == 0 {
		f.inputs[i] = nil
	}
	slices.SortStableFunc(f.inputs[i], func(a, b Input) int { return strings.Compare(a.Name, b.Name) })
	for j, a := range t.After {
		k, ok := f.index[a]
		switch {
		case a == t.Name:
			f.add(index(path+".after", j), "a task cannot run after itself")
		case !ok:
			f.add(index(path+".after", j), "unknown task "+quote(a))
		default:
			deps = append(deps, k)
		}
	}
	if t.ParallelFor != nil && t.IsGroup() {
		if dep := f.checkLoop(path, i, t); dep >= 0 {
			deps = append(deps, dep)
		}
	}
	slices.Sort(deps)
	deps = slices.Compact(deps)
	if len(deps) > 0 {
		f.deps[i] = slices.Clip(deps)
	}
	if t.IsGroup() {
		f.checkBody(path, i, t)
	}
	f.checkEnv(path, t)
	if t.Protocol == "" {
		f.checkTemplates(path, t)
	} else if t.Protocol != ProtocolKFP {
		f.add(path+".protocol", fmt.Sprintf("unknown protocol %s", quote(t.Protocol)))
	}
	f.checkPolicies(path, t)
	if t.When != "" {
		if err := CompileCondition(t.When); err != nil {
			f.add(path+".when", err.Error())
		} else {
			f.checkConditionInputs(path, t)
		}
	}
}

// checkInput checks one input and returns it with its type inferred and its
// reference indexed, and the index of the task it depends on (or -1).
func (f *finalizer) checkInput(ip string, ti int, in Input) (Input, int, bool) {
	var srcs []string
	if in.Value != nil {
		srcs = append(srcs, "value")
	}
	if in.Param != "" {
		srcs = append(srcs, "param")
	}
	if in.From != nil {
		srcs = append(srcs, "from")
	}
	if in.UpstreamStatus {
		srcs = append(srcs, "upstreamStatus")
	}
	switch {
	case len(srcs) == 0:
		f.add(ip, "no source: set one of value, param or from")
		return in, -1, false
	case len(srcs) > 1:
		f.add(ip, fmt.Sprintf("several sources (%s): set exactly one of value, param or from", strings.Join(srcs, ", ")))
		return in, -1, false
	case in.Type != "" && !in.Type.Valid():
		f.add(ip+".type", fmt.Sprintf("unknown type %s; use one of %s, %s", quote(string(in.Type)), paramTypes, artifactTypes))
		return in, -1, false
	case in.Field != "" && in.Param == "" && in.From == nil:
		f.add(ip+".field", "selects inside a param or from source only")
		return in, -1, false
	case in.Field != "" && in.Type == "":
		f.add(ip+".type", "required with field")
		return in, -1, false
	case in.Field != "" && in.Type.Kind() != KindParameter:
		f.add(ip+".field", fmt.Sprintf("selects a parameter value, not %s %s", in.Type.Kind(), in.Type))
		return in, -1, false
	}
	if in.Field != "" {
		if err := checkFieldPath(in.Field); err != nil {
			f.add(ip+".field", err.Error())
			return in, -1, false
		}
	}
	switch {
	case in.UpstreamStatus:
		if in.Type == "" {
			in.Type = TypeObject
		}
		if in.Type != TypeObject {
			f.add(ip+".type", fmt.Sprintf("an upstreamStatus input is an object, not %s", in.Type))
			return in, -1, false
		}
		return in, -1, true
	case in.Value != nil:
		if in.Type == "" {
			f.add(ip+".type", "required with a literal value")
			return in, -1, false
		}
		if in.Type.Kind() == KindArtifact {
			f.add(ip+".value", fmt.Sprintf("a literal value cannot feed artifact input of type %s; use from", in.Type))
			return in, -1, false
		}
		v, err := normValue(in.Type, in.Value)
		if err != nil {
			f.add(ip+".value", err.Error())
			return in, -1, false
		}
		in.Value = v
		return in, -1, true
	case in.Param != "":
		prm := f.p.Param(in.Param)
		if prm == nil {
			f.add(ip, "unknown pipeline parameter "+quote(in.Param))
			return in, -1, false
		}
		if in.Type == "" {
			in.Type = prm.Type
		}
		if !prm.Type.Valid() {
			return in, -1, false // reported at the parameter
		}
		if in.Field != "" {
			if !selectable(prm.Type) {
				f.add(ip+".field", fmt.Sprintf("pipeline parameter %s is %s: only object, list and string (JSON text) values have fields", quote(in.Param), prm.Type))
				return in, -1, false
			}
			return in, -1, true
		}
		if !Assignable(prm.Type, in.Type) {
			f.add(ip, fmt.Sprintf("type mismatch: pipeline parameter %s is %s, input is %s", quote(in.Param), prm.Type, in.Type))
			return in, -1, false
		}
		return in, -1, true
	}
	ref := *in.From
	k, ok := f.index[ref.Task]
	switch {
	case ref.Task == f.p.Tasks[ti].Name:
		f.add(ip, fmt.Sprintf("from %s.%s: a task cannot take its own output", ref.Task, ref.Output))
		return in, -1, false
	case !ok:
		f.add(ip, fmt.Sprintf("from %s.%s: unknown task %s", ref.Task, ref.Output, quote(ref.Task)))
		return in, -1, false
	}
	out := f.taskOutput(k, ref.Output)
	if out == nil {
		f.add(ip, fmt.Sprintf("from %s.%s: task %s has no output %s", ref.Task, ref.Output, quote(ref.Task), quote(ref.Output)))
		return in, -1, false
	}
	if in.Type == "" {
		in.Type = out.Type
	}
	if !out.Type.Valid() {
		return in, -1, false // reported at the output
	}
	if in.Field != "" && !selectable(out.Type) {
		f.add(ip+".field", fmt.Sprintf("%s.%s is %s: only object, list and string (JSON text) values have fields", ref.Task, ref.Output, out.Type))
		return in, -1, false
	}
	if in.Field == "" && !Assignable(out.Type, in.Type) {
		f.add(ip, fmt.Sprintf("type mismatch: %s.%s is %s, input is %s", ref.Task, ref.Output, out.Type, in.Type))
		return in, -1, false
	}
	ref.TaskIndex = k
	in.From = &ref
	return in, k, true
}

func (f *finalizer) checkEnv(path string, t *Task) {
	seen := make(map[string]bool, len(t.Env))
	for _, e := range t.Env {
		ep := key(path+".env", e.Name)
		switch {
		case !validEnvName(e.Name):
			f.add(ep, "invalid environment variable name")
		case seen[e.Name]:
			f.add(ep, "duplicate environment variable")
		}
		seen[e.Name] = true
	}
}

func (f *finalizer) checkTemplates(path string, t *Task) {
	// Paths are made only for an error: most templates are fine.
	check := func(p func() string, s string) {
		if err := checkTemplate(s, t); err != nil {
			f.add(p(), err.Error())
		}
	}
	for j, s := range t.Command {
		check(func() string { return index(path+".command", j) }, s)
	}
	for j, s := range t.Args {
		check(func() string { return index(path+".args", j) }, s)
	}
	for _, e := range t.Env {
		check(func() string { return key(path+".env", e.Name) }, e.Value)
	}
	check(func() string { return path + ".workingDir" }, t.WorkingDir)
}

func (f *finalizer) checkPolicies(path string, t *Task) {
	r := t.Resources
	if r.MilliCPU < 0 {
		f.add(path+".resources.cpu", "must not be negative")
	}
	if r.MemoryBytes < 0 {
		f.add(path+".resources.memory", "must not be negative")
	}
	if r.GPU < 0 {
		f.add(path+".resources.gpu", "must not be negative")
	}
	if t.Timeout < 0 {
		f.add(path+".timeout", "must not be negative")
	}
	for _, k := range sortedKeys(t.NodeSelector) {
		if err := CheckLabel(k, t.NodeSelector[k]); err != nil {
			f.add(key(path+".nodeSelector", k), err.Error())
		}
	}
	if rt := t.Retry; rt != nil {
		if rt.Limit < 0 {
			f.add(path+".retry.limit", "must not be negative")
		}
		if rt.Backoff < 0 {
			f.add(path+".retry.backoff", "must not be negative")
		}
		if rt.MaxBackoff < 0 {
			f.add(path+".retry.maxBackoff", "must not be negative")
		}
		if rt.Factor != 0 && !(rt.Factor >= 1) {
			f.add(path+".retry.factor", fmt.Sprintf("must be at least 1, got %g", rt.Factor))
		}
		if rt.MaxBackoff > 0 && rt.MaxBackoff < rt.Backoff {
			f.add(path+".retry.maxBackoff", fmt.Sprintf("%s is less than backoff %s", rt.MaxBackoff, rt.Backoff))
		}
	}
	if c := t.Cache; c != nil && c.MaxStaleness < 0 {
		f.add(path+".cache.maxStaleness", "must not be negative")
	}
}

func (f *finalizer) checkOutputs() {
	p := f.p
	if p.Outputs != nil {
		f.outs = make([]PlanOutput, 0, len(p.Outputs))
	}
	seen := make(map[string]bool, len(p.Outputs))
	for _, o := range p.Outputs {
		op := key("outputs", o.Name)
		switch {
		case !validIdent(o.Name):
			f.add(op, "invalid output name: "+identRule)
			continue
		case seen[o.Name]:
			f.add(op, "duplicate output name")
			continue
		}
		seen[o.Name] = true
		if len(o.OneOf) > 0 {
			if o.From != (Ref{}) {
				f.add(op, "set from or oneOf, not both")
				continue
			}
			refs := make([]Ref, len(o.OneOf))
			ok := true
			for j, ref := range o.OneOf {
				typ, good := f.checkOutputRef(fmt.Sprintf("%s.oneOf[%d]", op, j), &ref)
				switch {
				case !good:
					ok = false
				case j == 0:
					o.Type = typ
				case typ != o.Type:
					f.add(fmt.Sprintf("%s.oneOf[%d]", op, j), fmt.Sprintf("type %s differs from oneOf[0]'s %s", typ, o.Type))
					ok = false
				}
				refs[j] = ref
			}
			if !ok {
				continue
			}
			o.OneOf = refs
		} else {
			typ, ok := f.checkOutputRef(op, &o.From)
			if !ok {
				continue
			}
			o.Type = typ
		}
		f.outs = append(f.outs, o)
	}
	slices.SortStableFunc(f.outs, func(a, b PlanOutput) int { return strings.Compare(a.Name, b.Name) })
}

// checkOutputRef checks a reference to a task output and indexes it.
func (f *finalizer) checkOutputRef(op string, ref *Ref) (Type, bool) {
	k, ok := f.index[ref.Task]
	if !ok {
		f.add(op, fmt.Sprintf("%s.%s: unknown task %s", ref.Task, ref.Output, quote(ref.Task)))
		return "", false
	}
	out := f.taskOutput(k, ref.Output)
	if out == nil {
		f.add(op, fmt.Sprintf("%s.%s: task %s has no output %s", ref.Task, ref.Output, quote(ref.Task), quote(ref.Output)))
		return "", false
	}
	ref.TaskIndex = k
	return out.Type, true
}

// findCycle returns the names of a dependency cycle, first name repeated
// at the end, in run order (each task feeds the next), or nil.
func findCycle(tasks []Task, deps [][]int) []string {
	const (
		white = iota
		grey
		black
	)
	color := make([]uint8, len(tasks))
	var stack []int
	var found []int
	var visit func(int) bool
	visit = func(u int) bool {
		color[u] = grey
		stack = append(stack, u)
		for _, v := range deps[u] {
			switch color[v] {
			case grey:
				at := slices.Index(stack, v)
				found = append(slices.Clone(stack[at:]), v)
				return true
			case white:
				if visit(v) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[u] = black
		return false
	}
	for i := range tasks {
		if color[i] == white && visit(i) {
			break
		}
	}
	if found == nil {
		return nil
	}
	// found follows "depends on" edges; reverse it to run order.
	names := make([]string, len(found))
	for i, k := range found {
		names[len(found)-1-i] = tasks[k].Name
	}
	return names
}
