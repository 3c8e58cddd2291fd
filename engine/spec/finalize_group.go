package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// taskOutput returns output name of task k of the plan being checked; a
// group's outputs come from its body.
func (f *finalizer) taskOutput(k int, name string) *Output {
	t := &f.p.Tasks[k]
	if !t.IsGroup() {
		return t.Output(name)
	}
	for j, o := range f.gouts[k] {
		if o.Name == name {
			return &f.gouts[k][j]
		}
	}
	return nil
}

// groupOutputs derives a group task's outputs from its body's outputs,
// sorted by name: each has the type of the body task output it names (the
// first of a oneOf), a list of it for a loop. Unresolvable ones are left
// out; checking the body reports them.
func groupOutputs(t *Task) []Output {
	var outs []Output
	for _, o := range t.Body.Outputs {
		ref := o.From
		if len(o.OneOf) > 0 {
			ref = o.OneOf[0]
		}
		typ := bodyOutputType(t.Body, ref)
		if typ == "" || !validIdent(o.Name) {
			continue
		}
		if t.ParallelFor != nil {
			typ = ListOf(typ)
		}
		outs = append(outs, Output{Name: o.Name, Type: typ})
	}
	slices.SortStableFunc(outs, func(a, b Output) int { return strings.Compare(a.Name, b.Name) })
	return slices.CompactFunc(outs, func(a, b Output) bool { return a.Name == b.Name })
}

// bodyOutputType is the type of output ref.Output of body task ref.Task,
// or "".
func bodyOutputType(body *Plan, ref Ref) Type {
	k := body.TaskIndex(ref.Task)
	if k < 0 {
		return ""
	}
	t := &body.Tasks[k]
	if !t.IsGroup() {
		if o := t.Output(ref.Output); o != nil {
			return o.Type
		}
		return ""
	}
	for _, o := range groupOutputs(t) {
		if o.Name == ref.Output {
			return o.Type
		}
	}
	return ""
}

// checkGroupFields rejects the fields of a command step on a group.
func (f *finalizer) checkGroupFields(path string, t *Task) {
	bad := func(field string, set bool) {
		if set {
			f.add(path+"."+field, "a group (a task with a body) runs its tasks, not a command: remove "+field)
		}
	}
	bad("command", len(t.Command) > 0)
	bad("args", len(t.Args) > 0)
	bad("image", t.Image != "")
	bad("env", len(t.Env) > 0)
	bad("workingDir", t.WorkingDir != "")
	bad("executor", t.Executor != "")
	bad("retry", t.Retry != nil)
	bad("cache", t.Cache != nil)
	bad("timeout", t.Timeout != 0)
	bad("resources", t.Resources != (Resources{}))
	bad("nodeSelector", len(t.NodeSelector) > 0)
	bad("protocol", t.Protocol != "")
	bad("kubernetes", len(t.Kubernetes) > 0)
	bad("outputs", len(t.Outputs) > 0 && !slices.Equal(t.Outputs, groupOutputs(t)))
}

// checkLoop checks a ParallelFor and returns the index of the task its
// items come from, or -1.
func (f *finalizer) checkLoop(path string, ti int, t *Task) int {
	lp := path + ".parallelFor"
	l := t.ParallelFor
	if l.Parallelism < 0 {
		f.add(lp+".parallelism", "must not be negative")
	}
	if l.ItemParam == "" {
		f.add(lp+".itemParam", "required: the body parameter that receives each item")
	} else if t.Body.Param(l.ItemParam) == nil {
		f.add(lp+".itemParam", fmt.Sprintf("the body has no parameter %s", quote(l.ItemParam)))
	}
	items := l.Items
	items.Name = "items"
	if items.UpstreamStatus {
		f.add(lp+".items", "iterates over a list: set value, param or from")
		return -1
	}
	in, dep, ok := f.checkInput(lp+".items", ti, items)
	if !ok {
		return -1
	}
	switch k := in.Type.Kind(); {
	case in.Type == TypeList, k == KindArtifactList:
	case in.Type == TypeString && (in.Param != "" || in.From != nil):
		// JSON text holding a list (KFP passes lists as strings at times).
	default:
		f.add(lp+".items", fmt.Sprintf("iterates over a list, not %s", in.Type))
		return -1
	}
	if in.Value != nil && in.Value[0] != '[' {
		f.add(lp+".items.value", "must be a list")
		return -1
	}
	if elem, isArt := in.Type.Elem(); isArt && l.ItemParam != "" {
		if prm := t.Body.Param(l.ItemParam); prm != nil && !Assignable(elem, prm.Type) {
			f.add(lp+".itemParam", fmt.Sprintf("items are %s artifacts, body parameter %s is %s", elem, quote(l.ItemParam), prm.Type))
		}
	}
	in.Name = ""
	f.loops = append(f.loops, loopItems{task: ti, items: in})
	return dep
}

// checkBody finalizes a group's body as a plan of its own and checks that
// the group's inputs bind its parameters.
func (f *finalizer) checkBody(path string, ti int, t *Task) {
	// A body parameter left untyped takes the type of the group input that
	// binds it (or of the loop's items); work on a copy so that t is
	// unchanged unless Finalize succeeds.
	bodyCopy := *t.Body
	body := &bodyCopy
	body.Params = slices.Clone(body.Params)
	for j := range body.Params {
		prm := &body.Params[j]
		if prm.Type != "" {
			continue
		}
		if l := t.ParallelFor; l != nil && prm.Name == l.ItemParam {
			if len(f.loops) > 0 && f.loops[len(f.loops)-1].task == ti {
				if elem, ok := f.loops[len(f.loops)-1].items.Type.Elem(); ok {
					prm.Type = elem
					continue
				}
			}
			f.add(path+".parallelFor.itemType", "required when the items come from a parameter or a task output: the type of each item ("+paramTypes+")")
			prm.Type = TypeObject // reported; keep checking the body
			continue
		}
		for _, in := range f.inputs[ti] {
			if in.Name == prm.Name {
				prm.Type = in.Type
			}
		}
	}
	f.bodies = append(f.bodies, bodyOf{task: ti, body: body})
	sub := &finalizer{p: body, prefix: f.prefix + path + ".", errs: f.errs, index: make(map[string]int, len(body.Tasks))}
	sub.check()
	f.subs = append(f.subs, sub)
	bound := make(map[string]bool, len(t.Inputs)+1)
	for _, in := range t.Inputs {
		bound[in.Name] = true
		prm := body.Param(in.Name)
		switch {
		case prm == nil:
			f.add(key(path+".inputs", in.Name), fmt.Sprintf("the body has no parameter %s to bind", quote(in.Name)))
		case in.Type != "" && prm.Type.Valid() && in.Field == "" && !Assignable(in.Type, prm.Type) && !(in.Type.Kind() == KindArtifact && prm.Type.Kind() == KindArtifact):
			f.add(key(path+".inputs", in.Name), fmt.Sprintf("type mismatch: input is %s, body parameter is %s", in.Type, prm.Type))
		}
	}
	if l := t.ParallelFor; l != nil && l.ItemParam != "" {
		if bound[l.ItemParam] {
			f.add(key(path+".inputs", l.ItemParam), "the loop item binds this body parameter")
		}
		bound[l.ItemParam] = true
	}
	for _, prm := range body.Params {
		if !bound[prm.Name] && prm.Default == nil {
			f.add(key(path+".parameters", prm.Name), "a body parameter needs a group input, the loop item or a default")
		}
	}
}

// bodyOf is a group's body as checked (its parameter types filled).
type bodyOf struct {
	task int
	body *Plan
}

// loopItems is a checked Loop.Items, applied with the plan.
type loopItems struct {
	task  int
	items Input
}

// checkFieldPath checks an Input.Field path.
func checkFieldPath(p string) error {
	for i, part := range strings.Split(p, ".") {
		if part == "" {
			return fmt.Errorf("empty part %d in %s: use dot-separated keys or list indices, e.g. cfg.lr", i, quote(p))
		}
	}
	return nil
}

// selectable reports whether a value of type t can have fields selected.
func selectable(t Type) bool { return t == TypeObject || t == TypeList || t == TypeString }

// SelectField returns the part of a JSON parameter value named by path (see
// Input.Field). A JSON string holding JSON text is parsed first.
func SelectField(raw []byte, path string) ([]byte, error) {
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(path, ".") {
		if s, ok := v.(string); ok {
			if v, err = decodeJSON([]byte(s)); err != nil {
				return nil, fmt.Errorf("field %s: %q is not JSON text", quote(part), s)
			}
		}
		switch c := v.(type) {
		case map[string]any:
			next, ok := c[part]
			if !ok {
				return nil, fmt.Errorf("no field %s", quote(part))
			}
			v = next
		case []any:
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n >= len(c) {
				return nil, fmt.Errorf("no element %s in a list of %d", quote(part), len(c))
			}
			v = c[n]
		default:
			return nil, fmt.Errorf("no field %s in %s", quote(part), describe(v))
		}
	}
	return encodeJSON(v)
}

// decodeJSON decodes one JSON value, numbers as json.Number.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		return nil, fmt.Errorf("invalid JSON %s", shorten(string(raw)))
	}
	return v, nil
}

func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// NormValue checks that raw is a JSON value of parameter type t and returns
// it in canonical form; errors read like "expected int, got string "a"".
func NormValue(t Type, raw json.RawMessage) (json.RawMessage, error) { return normValue(t, raw) }
