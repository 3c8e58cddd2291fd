package scheduler

import (
	"encoding/json"
	"fmt"

	"github.com/skiffml/skiff/engine/spec"
)

// resolve returns every input of t, or the reason one cannot be resolved.
// It is called only when every dep of t SUCCEEDED.
func (r *Run) resolve(t *spec.Task) (map[string]spec.Value, string) {
	if len(t.Inputs) == 0 {
		return nil, ""
	}
	m := make(map[string]spec.Value, len(t.Inputs))
	for i := range t.Inputs {
		in := &t.Inputs[i]
		var v spec.Value
		switch {
		case in.From != nil:
			var reason string
			if v, reason = r.upstream(in); reason != "" {
				return nil, reason
			}
		case in.Param != "":
			raw, ok := r.params[in.Param]
			if !ok {
				if p := r.plan.Param(in.Param); p != nil && p.Default != nil {
					raw, ok = p.Default, true
				}
			}
			if !ok {
				return nil, fmt.Sprintf("input %q: pipeline parameter %q has no value", in.Name, in.Param)
			}
			v = spec.Value{Param: raw}
		case in.UpstreamStatus:
			v = spec.Value{Param: r.upstreamStatus(t)}
		case in.Value != nil:
			v = spec.Value{Param: in.Value}
		default:
			return nil, fmt.Sprintf("input %q: no value, param or from", in.Name)
		}
		m[in.Name] = v
	}
	return m, ""
}

// upstream resolves an input read from another task's output and checks
// that its kind (parameter or artifact) is the declared one.
func (r *Run) upstream(in *spec.Input) (spec.Value, string) {
	ref := in.From
	v, ok := r.outputs[ref.TaskIndex][ref.Output]
	if !ok || r.state[ref.TaskIndex] != spec.TaskSucceeded || (v.Param == nil && v.Artifact == nil) {
		return v, fmt.Sprintf("input %q: upstream task %q produced no output %q", in.Name, ref.Task, ref.Output)
	}
	switch in.Type.Kind() {
	case spec.KindArtifact:
		if !v.IsArtifact() {
			return v, fmt.Sprintf("input %q: upstream task %q output %q is a parameter, want artifact %s", in.Name, ref.Task, ref.Output, in.Type)
		}
	case spec.KindParameter:
		if v.IsArtifact() {
			return v, fmt.Sprintf("input %q: upstream task %q output %q is an artifact, want parameter %s", in.Name, ref.Task, ref.Output, in.Type)
		}
	}
	return v, ""
}

// upstreamStatus is the final status of t's dependencies, as an exit
// handler receives it: {"state": SUCCEEDED|FAILED|CANCELED, "error": ...,
// "tasks": {name: state}}. The state is FAILED when any dependency failed,
// else CANCELED when one was canceled, else SUCCEEDED (skipped ones count
// as done).
func (r *Run) upstreamStatus(t *spec.Task) json.RawMessage {
	st := struct {
		State string            `json:"state"`
		Error string            `json:"error,omitempty"`
		Tasks map[string]string `json:"tasks"`
	}{State: spec.TaskSucceeded.String(), Tasks: map[string]string{}}
	failed, canceled := "", false
	for _, d := range t.Deps {
		s := r.state[d]
		st.Tasks[r.plan.Tasks[d].Name] = s.String()
		switch {
		case s == spec.TaskFailed && failed == "":
			failed = r.plan.Tasks[d].Name
		case s == spec.TaskCanceled:
			canceled = true
		}
	}
	switch {
	case failed != "":
		st.State, st.Error = spec.TaskFailed.String(), fmt.Sprintf("task %s failed", failed)
	case canceled:
		st.State = spec.TaskCanceled.String()
	}
	b, _ := json.Marshal(st)
	return b
}
