package scheduler

import (
	"encoding/json"
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
)

// resolve returns every input of task i (template t), or the reason one
// cannot be resolved. It is called only when every dep of i SUCCEEDED (or
// is final, for a task that ignores upstream failures).
func (r *Run) resolve(t *spec.Task, i int) (map[string]spec.Value, string) {
	if len(t.Inputs) == 0 {
		return nil, ""
	}
	m := make(map[string]spec.Value, len(t.Inputs))
	for j := range t.Inputs {
		in := &t.Inputs[j]
		var v spec.Value
		if in.UpstreamStatus {
			v = spec.Value{Param: r.upstreamStatus(i)}
		} else {
			var reason string
			if v, reason = r.resolveInput(i, in); reason != "" {
				return nil, reason
			}
		}
		m[in.Name] = v
	}
	return m, ""
}

// resolveInput resolves one input (a literal, a parameter or an upstream
// output, with its Field selected) of task i.
func (r *Run) resolveInput(i int, in *spec.Input) (spec.Value, string) {
	var v spec.Value
	switch {
	case in.From != nil:
		var reason string
		if v, reason = r.upstream(i, in); reason != "" {
			return v, reason
		}
	case in.Param != "":
		var ok bool
		if v, ok = r.param(i, in.Param); !ok {
			s, _, _ := r.loc(i)
			if s.broken != "" {
				return v, fmt.Sprintf("input %q: resume: %s", in.Name, s.broken)
			}
			return v, fmt.Sprintf("input %q: pipeline parameter %q has no value", in.Name, in.Param)
		}
		if k := in.Type.Kind(); k != 0 && (k == spec.KindParameter) != (v.Param != nil) {
			return v, fmt.Sprintf("input %q: parameter %q holds %s %s, want %s", in.Name, in.Param, article(kindOf(v)), kindOf(v), in.Type)
		}
	case in.Value != nil:
		v = spec.Value{Param: in.Value}
	default:
		return v, fmt.Sprintf("input %q: no value, param or from", in.Name)
	}
	if in.Field != "" {
		sel, err := spec.SelectField(v.Param, in.Field)
		if err == nil && in.AsText {
			sel = spec.TextValue(sel)
		}
		if err == nil {
			sel, err = spec.NormValue(in.Type, sel)
		}
		if err != nil {
			return v, fmt.Sprintf("input %q: field %s: %v", in.Name, in.Field, err)
		}
		v = spec.Value{Param: sel}
	} else if in.AsText && v.Param != nil {
		v.Param = spec.TextValue(v.Param)
	}
	return v, ""
}

func article(s string) string {
	if s != "" && s[0] == 'a' {
		return "an"
	}
	return "a"
}

func kindOf(v spec.Value) string {
	switch {
	case v.IsArtifactList():
		return "artifact list"
	case v.IsArtifact():
		return "artifact"
	}
	return "parameter"
}

// param is the value of parameter name as task i sees it: a pipeline
// parameter (or its default) for the plan's tasks; for a body's tasks the
// loop item, a group input, or the body parameter's default.
func (r *Run) param(i int, name string) (spec.Value, bool) {
	s, k, _ := r.loc(i)
	if s.owner < 0 {
		raw, ok := r.params[name]
		if !ok {
			if p := r.plan.Param(name); p != nil && p.Default != nil {
				raw, ok = p.Default, true
			}
		}
		return spec.Value{Param: raw}, ok
	}
	if s.loop && name == s.itemParam && k < s.items.len() {
		return s.items.at(k), true
	}
	if v, ok := s.inputs[name]; ok {
		return v, true
	}
	if p := s.plan.Param(name); p != nil && p.Default != nil {
		return spec.Value{Param: p.Default}, true
	}
	return spec.Value{}, false
}

// upstream resolves an input of task i read from another task's output and
// checks that its kind (parameter, artifact, artifact list) is the declared
// one.
func (r *Run) upstream(i int, in *spec.Input) (spec.Value, string) {
	ref := in.From
	s, k, _ := r.loc(i)
	src := s.abs(k, ref.TaskIndex)
	v, ok := r.outputs[src][ref.Output]
	if r.state[src] != spec.TaskSucceeded && in.Default != nil {
		return spec.Value{Param: in.Default}, ""
	}
	if !ok || r.state[src] != spec.TaskSucceeded || v.IsZero() {
		return v, fmt.Sprintf("input %q: upstream task %q produced no output %q", in.Name, ref.Task, ref.Output)
	}
	want := in.Type.Kind()
	if in.Field != "" {
		want = spec.KindParameter
	}
	switch got := kindOf(v); {
	case want == spec.KindArtifact && !v.IsArtifact(),
		want == spec.KindArtifactList && !v.IsArtifactList(),
		want == spec.KindParameter && v.Param == nil:
		return v, fmt.Sprintf("input %q: upstream task %q output %q is %s %s, want %s %s", in.Name, ref.Task, ref.Output, article(got), got, want, in.Type)
	}
	return v, ""
}

// upstreamStatus is the final status of task i's dependencies, as an exit
// handler receives it: {"state": SUCCEEDED|FAILED|CANCELED, "error": ...,
// "tasks": {name: state}}. The state is FAILED when any dependency failed,
// else CANCELED when one was canceled, else SUCCEEDED (skipped ones count
// as done).
func (r *Run) upstreamStatus(i int) json.RawMessage {
	st := struct {
		State string            `json:"state"`
		Error string            `json:"error,omitempty"`
		Tasks map[string]string `json:"tasks"`
	}{State: spec.TaskSucceeded.String(), Tasks: map[string]string{}}
	failed, canceled := "", false
	r.forDeps(i, func(d int) {
		s := r.state[d]
		name := r.Task(d).Name
		st.Tasks[name] = s.String()
		switch {
		case s == spec.TaskFailed && failed == "":
			failed = name
		case s == spec.TaskCanceled:
			canceled = true
		}
	})
	switch {
	case failed != "":
		st.State, st.Error = spec.TaskFailed.String(), fmt.Sprintf("task %s failed", failed)
	case canceled:
		st.State = spec.TaskCanceled.String()
	}
	b, _ := json.Marshal(st)
	return b
}
