package engine

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/engine/spec/kfp"
	"github.com/skiffml/skiff/executors"
	"github.com/skiffml/skiff/store"
)

// buildKFPSpec builds the execution spec of a step compiled from KFP IR
// (Task.Protocol == spec.ProtocolKFP): package kfp builds its
// ExecutorInput, resolves its placeholders and says what to collect.
func (e *Engine) buildKFPSpec(r *activeRun, task, attempt int, id string, x executors.Executor, inputs map[string]spec.Value) (*executors.Spec, string, error) {
	t := r.sched.Task(task)
	root := x.Root(id)
	name := r.rec.Name
	if name == "" {
		name = r.plan.Name
	}
	rt := kfp.Runtime{
		Root: root, RunID: r.id, RunName: name, ExecutionID: id,
		PipelineRoot: path.Dir(root),
	}
	if x.Name() == "local" {
		rt.Workspace = workspaceDir(root, r.id)
	}
	inv, err := kfp.Prepare(t, inputs, rt)
	if err != nil {
		return nil, "", err
	}
	s := &executors.Spec{
		ID: id, RunID: r.id, Task: r.sched.Name(task), TaskIndex: task, Attempt: attempt, Namespace: store.RunNamespace(r.rec),
		Image: t.Image, Command: inv.Command, Args: inv.Args,
		Inputs: inv.Inputs, Outputs: inv.Outputs,
		Resources: inv.Resources, NodeSelector: t.NodeSelector, Timeout: t.Timeout.D(), Kubernetes: t.Kubernetes,
	}
	if x.Name() == "local" {
		// As kfp's local runner does, a local step inherits the engine's
		// environment (PYTHONPATH, PIP_INDEX_URL, proxies...); the task's
		// own env comes after and wins.
		s.Env = inheritedEnv(t.Env)
	}
	s.Env = append(s.Env, t.Env...)
	// The workspace is created with the start, off the loop.
	return s, inv.Workspace, nil
}

// workspaceDir is the workspace of run runID ({{$.workspace_path}}) with
// the local executor: .workspace-RUN_ID next to the executions' roots (in
// the data dir's work directory), shared by every step of the run and
// kept, like the roots, after it ends.
func workspaceDir(root, runID string) string {
	return filepath.Join(filepath.Dir(root), ".workspace-"+runID)
}

// inheritedEnv is the engine's environment less the variables env sets.
func inheritedEnv(env []spec.EnvVar) []spec.EnvVar {
	set := make(map[string]bool, len(env))
	for _, ev := range env {
		set[ev.Name] = true
	}
	var out []spec.EnvVar
	for _, kv := range os.Environ() {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || set[k] || strings.HasPrefix(k, "SKIFF_") {
			continue
		}
		out = append(out, spec.EnvVar{Name: k, Value: v})
	}
	return out
}
