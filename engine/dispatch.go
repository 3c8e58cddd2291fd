package engine

import (
	"fmt"
	"path"
	"strconv"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// leftoverKiller is implemented by executors that can find and stop what an
// earlier engine process left running (e.g. a process group).
type leftoverKiller interface {
	KillLeftover(id string) error
}

// buildSpec resolves a task's placeholders and inputs into an execution
// spec for executor x. It does no I/O: a directory the step needs before
// it starts (a KFP run's workspace) is returned for the start to create
// ("" = none).
func (e *Engine) buildSpec(r *activeRun, task, attempt int, id string, x executors.Executor, inputs map[string]spec.Value) (*executors.Spec, string, error) {
	t := r.sched.Task(task)
	if t.Protocol == spec.ProtocolKFP {
		return e.buildKFPSpec(r, task, attempt, id, x, inputs)
	}
	s, err := e.buildSkiffSpec(r, task, attempt, id, x, inputs)
	return s, "", err
}

// buildSkiffSpec builds the execution spec of a step written in Skiff YAML.
func (e *Engine) buildSkiffSpec(r *activeRun, task, attempt int, id string, x executors.Executor, inputs map[string]spec.Value) (*executors.Spec, error) {
	t := r.sched.Task(task)
	root := x.Root(id)
	env := &spec.PlaceholderEnv{
		Inputs:       make(map[string]string, len(t.Inputs)),
		Outputs:      make(map[string]string, len(t.Outputs)),
		RunID:        r.id,
		TaskName:     t.Name,
		ExecutionID:  id,
		PipelineName: r.plan.Name,
		PipelineDir:  r.rec.PipelineDir,
		Root:         root,
		Attempt:      attempt,
	}
	s := &executors.Spec{
		ID: id, RunID: r.id, Task: r.sched.Name(task), TaskIndex: task, Attempt: attempt, Namespace: store.RunNamespace(r.rec),
		Image: t.Image, Resources: t.Resources, NodeSelector: t.NodeSelector, Timeout: t.Timeout.D(), Kubernetes: t.Kubernetes,
	}
	if _, _, ok := store.ParseWorkspaceRoot(r.rec.PipelineDir); ok {
		s.PipelineFiles = r.rec.PipelineDir
	}
	for _, in := range t.Inputs {
		v, ok := inputs[in.Name]
		if !ok {
			return nil, fmt.Errorf("input %q has no value", in.Name)
		}
		switch {
		case v.Artifact != nil:
			env.Inputs[in.Name] = executors.InputPath(root, in.Name)
			s.Inputs = append(s.Inputs, executors.ArtifactInput{Name: in.Name, Ref: *v.Artifact})
		case v.IsArtifactList():
			// A directory with one entry per artifact, in list order.
			env.Inputs[in.Name] = executors.InputPath(root, in.Name)
			s.Inputs = append(s.Inputs, executors.ArtifactInput{Name: in.Name, EmptyDir: true})
			for k, a := range v.Artifacts {
				s.Inputs = append(s.Inputs, executors.ArtifactInput{Name: path.Join(in.Name, strconv.Itoa(k)), Ref: a})
			}
		default:
			env.Inputs[in.Name] = spec.ParamText(v.Param)
		}
	}
	for _, out := range t.Outputs {
		env.Outputs[out.Name] = executors.OutputPath(root, out.Name)
		s.Outputs = append(s.Outputs, executors.OutputSpec{Name: out.Name, Type: out.Type})
	}
	var err error
	expand := func(field string, in []string) []string {
		if in == nil || err != nil {
			return nil
		}
		out := make([]string, len(in))
		for i, v := range in {
			out[i], err = spec.Expand(v, env)
			if err != nil {
				err = fmt.Errorf("%s[%d]: %w", field, i, err)
				return nil
			}
		}
		return out
	}
	s.Command = expand("command", t.Command)
	s.Args = expand("args", t.Args)
	for _, ev := range t.Env {
		if err != nil {
			break
		}
		var v string
		v, err = spec.Expand(ev.Value, env)
		if err != nil {
			err = fmt.Errorf("env.%s: %w", ev.Name, err)
		}
		s.Env = append(s.Env, spec.EnvVar{Name: ev.Name, Value: v})
	}
	if err == nil && t.WorkingDir != "" {
		s.WorkingDir, err = spec.Expand(t.WorkingDir, env)
	}
	if err != nil {
		return nil, fmt.Errorf("resolve placeholders: %w", err)
	}
	return s, nil
}
