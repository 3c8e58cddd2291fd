package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/skiffml/skiff/engine"
	"github.com/skiffml/skiff/engine/spec"
	"github.com/skiffml/skiff/store"
)

// planStep is one command step of a plan, at any depth.
type planStep struct {
	path  string // tasks[2].tasks[0]
	name  string // the task's name in its body
	names []string
}

// planSteps lists every command step of root (the tasks of every group's
// body, at every depth) with the executors it may run on: the one the
// engine picks (root.ExecutorName: the task's own, else the root plan's,
// else def) and, for a task naming none, any default set by an enclosing
// body, so that the check never depends on which default wins.
func planSteps(root, p *spec.Plan, path, def string, inherited []string, out []planStep) []planStep {
	if p != root && p.Executor != "" {
		inherited = append(slices.Clip(inherited), p.Executor)
	}
	for i := range p.Tasks {
		t := &p.Tasks[i]
		tp := fmt.Sprintf("%stasks[%d]", path, i)
		if t.IsGroup() {
			out = planSteps(root, t.Body, tp+".", def, inherited, out)
			continue
		}
		names := []string{root.ExecutorName(t, def)}
		if t.Executor == "" {
			names = append(names, inherited...)
		}
		out = append(out, planStep{path: tp, name: t.Name, names: names})
	}
	return out
}

// checkExecutors rejects a plan whose steps (at every depth) use an
// executor the engine lacks or namespace ns may not use. def is the
// executor of steps that name none.
func (s *Server) checkExecutors(ns string, plan *spec.Plan, def string) error {
	var pol *store.NamespacePolicy
	for _, st := range planSteps(plan, plan, "", def, nil, nil) {
		for _, name := range st.names {
			if name == "" {
				continue // no default known: nothing is disabled (see Config.Validate); the engine picks its own
			}
			disabled := s.disabledExecutor(name)
			if _, ok := s.cfg.Engine.Executor(name); !ok && disabled == "" {
				return badRequest("pipeline_spec: %s.executor: %q: %v", st.path, name, engine.ErrUnknownExecutor)
			}
			if disabled == "" {
				continue
			}
			if pol == nil {
				p, err := s.cfg.Store.GetNamespacePolicy(ns)
				if err != nil {
					return err
				}
				pol = &p
			}
			// Allowed only under its exact name: a policy naming "local"
			// does not allow "LOCAL", nor the reverse.
			if !slices.Contains(pol.AllowedExecutors, name) || name != disabled {
				return apiErr(codePermissionDenied,
					"pipeline_spec: %s (%s) runs on executor %q, which is disabled for namespace %q: it runs commands on the server's host. "+
						"An admin can enable it with 'skiff server policy --namespace %s --allow-executor %s'",
					st.path, st.name, name, ns, ns, disabled)
			}
		}
	}
	return nil
}

// disabledExecutor returns the disabled executor name matches, ignoring
// case (so that a differently spelled name never slips past the policy),
// or "".
func (s *Server) disabledExecutor(name string) string {
	for _, d := range s.cfg.DisabledExecutors {
		if strings.EqualFold(strings.TrimSpace(name), d) {
			return d
		}
	}
	return ""
}

// defaultExecutor is the executor of a run's steps that name none.
func (s *Server) defaultExecutor(run *store.Run) string {
	if run != nil && run.DefaultExecutor != "" {
		return run.DefaultExecutor
	}
	return s.cfg.DefaultExecutor
}

// checkRunExecutors checks a stored run's plan against its namespace's
// policy as it is now (before a retry runs its tasks again).
func (s *Server) checkRunExecutors(run store.Run) error {
	var plan spec.Plan
	if err := json.Unmarshal(run.Plan, &plan); err != nil {
		return apiErr(codeFailedPrecondition, "run %s: its plan cannot be read: %v", run.ID, err)
	}
	return s.checkExecutors(store.RunNamespace(run), &plan, s.defaultExecutor(&run))
}
