package kfp

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
)

// task compiles one task of a DAG: a group when its component is a DAG, a
// step when it names an executor.
func (c *compiler) task(path, kname string, ts *PipelineTaskSpec, sc *scope) (spec.Task, bool) {
	t := spec.Task{Name: sc.names[kname]}
	if ts.TaskInfo != nil && ts.TaskInfo.Name != "" && ts.TaskInfo.Name != kname {
		t.Description = ts.TaskInfo.Name
	}
	if ts.ComponentRef == nil || ts.ComponentRef.Name == "" {
		c.fail(path+".componentRef.name", "required")
		return t, false
	}
	cname := ts.ComponentRef.Name
	comp := c.doc.Components[cname]
	if comp == nil {
		c.fail(path+".componentRef.name", fmt.Sprintf("unknown component %q", cname))
		return t, false
	}
	for i, d := range ts.DependentTasks {
		switch {
		case d == kname:
			c.fail(fmt.Sprintf("%s.dependentTasks[%d]", path, i), "a task cannot depend on itself")
		case sc.tasks[d] == nil:
			c.fail(fmt.Sprintf("%s.dependentTasks[%d]", path, i), fmt.Sprintf("unknown task %q in this DAG", d))
		default:
			t.After = append(t.After, sc.names[d])
		}
	}
	cpath := key("components", cname)
	switch {
	case comp.DAG != nil && comp.ExecutorLabel != "":
		c.fail(cpath, "set dag or executorLabel, not both")
		return t, false
	case comp.DAG != nil:
		if slices.Contains(c.stack, cname) {
			c.fail(cpath, "the component contains itself: "+strings.Join(append(c.stack, cname), " -> "))
			return t, false
		}
		c.stack = append(c.stack, cname)
		ok := c.group(path, cpath, &t, ts, comp, sc)
		c.stack = c.stack[:len(c.stack)-1]
		if !ok {
			return t, false
		}
	case comp.ExecutorLabel != "":
		if !c.step(path, cpath, kname, &t, ts, comp, sc) {
			return t, false
		}
	default:
		c.fail(cpath, "a component needs a dag or an executorLabel")
		return t, false
	}
	if ts.ParameterIterator != nil || ts.ArtifactIterator != nil {
		if comp.DAG == nil {
			c.fail(path, "an iterator needs a DAG component (the SDK's for-loop-N)")
			return t, false
		}
	}
	c.trigger(path, &t, ts)
	return t, true
}

// trigger compiles the task's triggerPolicy.
func (c *compiler) trigger(path string, t *spec.Task, ts *PipelineTaskSpec) {
	tp := ts.TriggerPolicy
	if tp == nil {
		return
	}
	switch tp.Strategy {
	case "", "ALL_UPSTREAM_TASKS_SUCCEEDED", "TRIGGER_STRATEGY_UNSPECIFIED":
	case "ALL_UPSTREAM_TASKS_COMPLETED":
		t.IgnoreUpstreamFailure = true
	default:
		c.fail(path+".triggerPolicy.strategy", fmt.Sprintf("unknown strategy %q (want ALL_UPSTREAM_TASKS_SUCCEEDED or ALL_UPSTREAM_TASKS_COMPLETED)", tp.Strategy))
	}
	if tp.Condition == "" {
		return
	}
	names := make(map[string]string, len(t.Inputs))
	for _, in := range t.Inputs {
		names[in.Name] = in.Name
	}
	when, err := translateCondition(tp.Condition, func(n string) (string, bool) {
		s, ok := names[identName(n)]
		return s, ok
	})
	if err == nil {
		err = spec.CompileCondition(when)
	}
	if err != nil {
		c.fail(path+".triggerPolicy.condition", err.Error())
		return
	}
	t.When = when
}

// group compiles a task whose component is a DAG: a sub-pipeline, a
// condition branch, an exit handler's group or a loop.
func (c *compiler) group(path, cpath string, t *spec.Task, ts *PipelineTaskSpec, comp *ComponentSpec, sc *scope) bool {
	bound := map[string]bool{}
	defs := comp.InputDefinitions
	if defs == nil {
		defs = &Definitions{}
	}
	if ts.Inputs != nil {
		for _, n := range sortedKeys(ts.Inputs.Parameters) {
			ip := key(path+".inputs.parameters", n)
			var typ spec.Type
			ps := defs.Parameters[n]
			if ps == nil {
				c.fail(ip, fmt.Sprintf("component %s has no input parameter %q", ts.ComponentRef.Name, n))
				continue
			}
			typ, ok := c.paramType(key(cpath+".inputDefinitions.parameters", n), ps)
			if !ok {
				continue
			}
			in, present, tmpl := c.paramSource(ip, ts.Inputs.Parameters[n], typ, sc)
			if tmpl {
				c.unsupported(ip+".runtimeValue.constant", "an f-string constant given to a sub-DAG (give it to a task of the sub-DAG)")
				continue
			}
			if present {
				in.Name = identName(n)
				in.AsText = asText(typ, in)
				t.Inputs = append(t.Inputs, in)
				bound[n] = true
			}
		}
		for _, n := range sortedKeys(ts.Inputs.Artifacts) {
			ip := key(path+".inputs.artifacts", n)
			if defs.Artifacts[n] == nil {
				c.fail(ip, fmt.Sprintf("component %s has no input artifact %q", ts.ComponentRef.Name, n))
				continue
			}
			in, present := c.artifactSource(ip, ts.Inputs.Artifacts[n], sc)
			if present {
				in.Name = identName(n)
				t.Inputs = append(t.Inputs, in)
				bound[n] = true
			}
		}
	}
	loop, item, itemType := c.loop(path, t, ts, defs)
	if item != "" {
		bound[item] = true
	}
	body := c.dag(cpath, comp, bound)
	if item != "" && body.Param(identName(item)) == nil {
		body.Params = append(body.Params, spec.Param{Name: identName(item), Type: itemType})
	}
	t.Body, t.ParallelFor = body, loop
	if ts.RetryPolicy != nil {
		c.warn(path+".retryPolicy", "a retry policy on a sub-DAG is ignored: Skiff retries steps")
	}
	return true
}

// loop compiles the task's iterator, if any: the Loop, the KFP name of
// the body input receiving each item and its type.
func (c *compiler) loop(path string, t *spec.Task, ts *PipelineTaskSpec, defs *Definitions) (*spec.Loop, string, spec.Type) {
	find := func(p, n string) (spec.Input, bool) {
		for _, in := range t.Inputs {
			if in.Name == identName(n) {
				in.Name = ""
				return in, true
			}
		}
		c.fail(p, fmt.Sprintf("the task has no input %q to iterate over", n))
		return spec.Input{}, false
	}
	var l spec.Loop
	var item string
	var itemType spec.Type
	switch it := ts.ParameterIterator; {
	case it != nil && ts.ArtifactIterator != nil:
		c.fail(path, "set parameterIterator or artifactIterator, not both")
		return nil, "", ""
	case it != nil:
		ip := path + ".parameterIterator"
		if it.ItemInput == "" || it.Items == nil {
			c.fail(ip, "itemInput and items are required")
			return nil, "", ""
		}
		item = it.ItemInput
		itemType = spec.TypeString
		switch {
		case it.Items.Raw != nil:
			var items []any
			if err := json.Unmarshal([]byte(*it.Items.Raw), &items); err != nil {
				c.fail(ip+".items.raw", "expected a JSON list: "+err.Error())
				return nil, "", ""
			}
			l.Items = spec.Input{Type: spec.TypeList, Value: json.RawMessage(*it.Items.Raw)}
			itemType = elemType(items)
		case it.Items.InputParameter != "":
			in, ok := find(ip+".items.inputParameter", it.Items.InputParameter)
			if !ok {
				return nil, "", ""
			}
			l.Items = in
		default:
			c.fail(ip+".items", "set raw or inputParameter")
			return nil, "", ""
		}
		if ps := defs.Parameters[item]; ps != nil {
			if typ, ok := paramTypes[irParamType(ps)]; ok {
				itemType = typ
			}
		}
	case ts.ArtifactIterator != nil:
		ai := ts.ArtifactIterator
		ip := path + ".artifactIterator"
		if ai.ItemInput == "" || ai.Items == nil || ai.Items.InputArtifact == "" {
			c.fail(ip, "itemInput and items.inputArtifact are required")
			return nil, "", ""
		}
		in, ok := find(ip+".items.inputArtifact", ai.Items.InputArtifact)
		if !ok {
			return nil, "", ""
		}
		l.Items = in
		item = ai.ItemInput
		itemType = spec.TypeArtifact
		if as := defs.Artifacts[item]; as != nil {
			itemType = artifactType(as.ArtifactType)
		}
	default:
		if ts.IteratorPolicy != nil {
			c.warn(path+".iteratorPolicy", "ignored: the task has no iterator")
		}
		return nil, "", ""
	}
	if ts.IteratorPolicy != nil {
		if n := ts.IteratorPolicy.ParallelismLimit; n < 0 {
			c.fail(path+".iteratorPolicy.parallelismLimit", "must not be negative")
		} else {
			l.Parallelism = n
		}
	}
	l.ItemParam = identName(item)
	return &l, item, itemType
}

// elemType is the parameter type common to every item of a raw list, or
// string when they differ.
func elemType(items []any) spec.Type {
	var t spec.Type
	for _, it := range items {
		var e spec.Type
		switch v := it.(type) {
		case string:
			e = spec.TypeString
		case bool:
			e = spec.TypeBool
		case float64:
			e = spec.TypeFloat
			if v == float64(int64(v)) {
				e = spec.TypeInt
			}
		case []any:
			e = spec.TypeList
		case map[string]any:
			e = spec.TypeObject
		default:
			return spec.TypeString
		}
		if t == spec.TypeInt && e == spec.TypeFloat || t == spec.TypeFloat && e == spec.TypeInt {
			e = spec.TypeFloat
		} else if t != "" && t != e {
			return spec.TypeString
		}
		t = e
	}
	if t == "" {
		return spec.TypeString
	}
	return t
}
